# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-global-restricted-property.js
#
# GlobalDeclarationInstantiation (ECMA-262, 3.d): a lexical declaration whose
# name is a non-configurable ("restricted") global property is a SyntaxError,
# raised in the context's own realm. A global function declaration makes
# such a binding too, though the sandbox's property is configurable. Node
# checks the error is the context's SyntaxError; here it crosses to Python
# as a JSError named SyntaxError (a script-level error cannot be caught by
# the script itself, and `eval` gives `let` a scope of its own).
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

DEFINE = "Object.defineProperty(this, 'foo', { value: 1, configurable: false }); 0"

CASES = [{"id": "restricted_global", "api": "runInContext-sequence", "sandbox": {}, "compare": "name",
          "code": [DEFINE, "let foo = 2;", "foo", "function bar() {}", "let bar;", "typeof bar"]}]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def _syntax_error_of_the_context(ctx, code):
    with pytest.raises(isolate.JSError) as info:
        isolate.run_in_context(code, ctx)
    assert info.value.name == "SyntaxError"


def test_let_over_a_restricted_global_is_a_syntax_error():
    ctx = isolate.create_context({})
    isolate.run_in_context(DEFINE, ctx)
    _syntax_error_of_the_context(ctx, "let foo = 2;")
    assert isolate.run_in_context("foo", ctx) == 1


def test_let_over_a_global_function_declaration_is_a_syntax_error():
    ctx = isolate.create_context({})
    isolate.run_in_context("function bar() {}", ctx)
    assert isolate.run_in_context("Object.getOwnPropertyDescriptor(globalThis, 'bar').configurable", ctx) is False
    _syntax_error_of_the_context(ctx, "let bar;")
    assert isolate.run_in_context("typeof bar", ctx) == "function"
