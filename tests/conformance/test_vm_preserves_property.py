# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-preserves-property.js
#
# Node defines the non-configurable, non-enumerable, read-only property on
# the sandbox from the host; a dict holds only plain enumerable data, so JS
# defines it on the global before the check.
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

DEFINE = ("Object.defineProperty(this, 'prop', "
          "{ configurable: false, enumerable: false, writable: false, value: 'val' }); 0")
CODE = 'Object.getOwnPropertyDescriptor(this, "prop")'

CASES = [{"id": "descriptor", "api": "runInContext-sequence", "sandbox": {}, "code": [DEFINE, CODE],
          "options": {"filename": "test"}}]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def test_property_attributes_are_preserved():
    o = isolate.create_context({})
    isolate.run_in_context(DEFINE, o)
    res = isolate.run_in_context(CODE, o, "test")
    assert isinstance(res, dict)
    assert res["value"] == "val"
    assert res["configurable"] is False
    assert res["enumerable"] is False
    assert res["writable"] is False
