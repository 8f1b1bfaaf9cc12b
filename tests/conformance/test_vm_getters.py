# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-getters.js
# Refs: https://github.com/nodejs/node/issues/2734, https://github.com/nodejs/node/issues/11803
#
# Node defines the getter on the sandbox from the host and compares the
# descriptor seen inside with the host's. A dict cannot hold a getter, so it
# is defined on the global by JS, and compared with what Node reports.
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

DEFINE = "Object.defineProperty(this, 'prop', { get() { return 'foo'; } }); 0"
CODE = 'Object.getOwnPropertyDescriptor(this, "prop");'

CASES = [{"id": "getter_descriptor", "api": "runInContext-sequence", "sandbox": {}, "code": [DEFINE, CODE]}]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def test_getter_descriptor_keys_and_values():
    context = isolate.create_context({})
    isolate.run_in_context(DEFINE, context)
    result = isolate.run_in_context(CODE, context)
    assert list(result) == ["get", "set", "enumerable", "configurable"]
    assert isinstance(result["get"], isolate.JSFunction)
    assert result["set"] is isolate.undefined
    assert result["enumerable"] is False and result["configurable"] is False
