# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-inherited_properties.js
# Ref: https://github.com/nodejs/node/issues/5350
#
# Node's sandboxes inherit from a prototype (Object.create(base), and
# {__proto__: base}). A Python dict has no prototype, so the inherited
# properties are left out: what is ported is the behaviour of the own ones
# (no inherited key becomes own, and keys keep their order).
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

CASES = [
    {"id": "has_own_property_base", "api": "runInContext-sequence", "sandbox": {},
     "code": 'Object.hasOwnProperty(this, "propBase");'},
    {"id": "assign_new_and_existing", "api": "runInNewContext", "sandbox": {"z": 3}, "code": "x = 0; z = 4;"},
]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def test_own_keys_of_the_sandbox():
    context = isolate.create_context({})
    assert isolate.run_in_context('Object.hasOwnProperty(this, "propBase");', context) is False
    sandbox = {"z": 3}
    assert list(sandbox) == ["z"]
    assert isolate.run_in_new_context("x = 0; z = 4;", sandbox) == 4
    assert list(sandbox) == ["z", "x"]
