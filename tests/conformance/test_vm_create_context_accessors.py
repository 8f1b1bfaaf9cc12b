# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-create-context-accessors.js
#
# Node defines the getter and the getter/setter pair on the sandbox before
# contextifying it; a Python dict cannot hold accessors, so they are defined
# on the context's global by JS (the setter's state lives in the context).
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

DEFINE = """
Object.defineProperty(this, 'getter', { get: function() { return 'ok'; } });
var val;
Object.defineProperty(this, 'setter', {
  set: function(_val) { val = _val; },
  get: function() { return `ok=${val}`; }
});
0
"""
CODE = 'setter = "test";[getter,setter]'

CASES = [{"id": "accessors", "api": "runInContext-sequence", "sandbox": {}, "code": [DEFINE, CODE]}]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def test_accessors_on_the_global():
    ctx = isolate.create_context({})
    isolate.run_in_context(DEFINE, ctx)
    result = isolate.run_in_context(CODE, ctx)
    assert result[0] == "ok"
    assert result[1] == "ok=test"
