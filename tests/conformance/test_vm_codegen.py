# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-codegen.js
#
# Left out: the WebAssembly parts (QuickJS has no WebAssembly; README:
# `code_generation={"wasm": False}` is accepted and has nothing to turn off),
# and `codeGeneration: null` (in Python `None` means "not given").
import pytest

import isolate
from isolate import create_context, run_in_context, run_in_new_context

import _node

pytestmark = pytest.mark.timeout(60)

CASES = [
    {"id": "eval_allowed_by_default", "api": "runInContext-sequence", "code": 'eval("1 + 1")', "sandbox": {}},
    {"id": "strings_false_eval_throws_eval_error", "api": "runInContext-sequence", "sandbox": {},
     "context_options": {"codeGeneration": {"strings": False}},
     "code": ['eval("x")', 'try { eval("x"); } catch (e) { e instanceof EvalError }',
              'try { new Function("return 1"); } catch (e) { e instanceof EvalError }'],
     "compare": "name"},
    {"id": "run_in_new_context_strings_false", "api": "runInNewContext", "code": 'eval("x")', "sandbox": {},
     "options": {"contextCodeGeneration": {"strings": False}}, "compare": "name"},
]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def test_default_context_allows_eval():
    ctx = create_context({})
    run_in_context('eval("");', ctx)
    run_in_new_context('eval("");', {}, {"contextCodeGeneration": None})


def test_strings_false_throws_the_contexts_eval_error():
    ctx = create_context({}, {"codeGeneration": {"strings": False}})
    with pytest.raises(isolate.JSEvalError) as info:
        run_in_context('eval("x")', ctx)
    assert info.value.name == "EvalError"
    assert run_in_context('try { eval("x") } catch (e) { e instanceof EvalError }', ctx) is True


def test_wasm_false_is_accepted():
    ctx = create_context({}, {"codeGeneration": {"wasm": False}})
    assert run_in_context("typeof WebAssembly", ctx) == "undefined"


def test_run_in_new_context_strings_false():
    with pytest.raises(isolate.JSError) as info:
        run_in_new_context('eval("x")', {}, {"contextCodeGeneration": {"strings": False}})
    assert info.value.name == "EvalError"


def test_code_generation_validation():
    with pytest.raises(isolate.InvalidArgTypeError) as info:
        create_context({}, {"codeGeneration": {"strings": 0}})
    assert info.value.code == "ERR_INVALID_ARG_TYPE"
    with pytest.raises(isolate.InvalidArgTypeError) as info:
        run_in_new_context('eval("x")', {}, {"contextCodeGeneration": {"wasm": 1}})
    assert info.value.code == "ERR_INVALID_ARG_TYPE"
    with pytest.raises(isolate.InvalidArgTypeError) as info:
        create_context({}, {"codeGeneration": 1})
    assert info.value.code == "ERR_INVALID_ARG_TYPE"
