# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-function-declaration.js
#
# `res === o.b`: functions come back to Python as handles, one proxy per
# crossing (README), so the identity is checked inside the context.
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

# Function declaration and expression should both be copied to the sandboxed context.
CODE = ("let a = function() {};\n"
        "function b(){}\n"
        "var c = function() {};\n"
        "var d = () => {};\n"
        "let e = () => {};\n"
        # Grab the global b function as the completion value, to ensure that
        # we are getting the global function, and not some other thing
        "(function(){return this})().b;\n")

CASES = [{"id": "declarations", "api": "runInContext-sequence", "sandbox": {}, "code": CODE,
          "options": {"filename": "test"}}]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def test_function_declarations_and_expressions_reach_the_sandbox():
    o = {"console": {}}
    isolate.create_context(o)
    res = isolate.run_in_context(CODE, o, "test")
    assert isinstance(res, isolate.JSFunction)
    assert res.name == "b"
    assert "a" not in o
    assert isinstance(o["b"], isolate.JSFunction)
    assert isinstance(o["c"], isolate.JSFunction)
    assert isinstance(o["d"], isolate.JSFunction)
    assert "e" not in o
    assert isolate.run_in_context("(function(){return this})().b === b", o) is True
