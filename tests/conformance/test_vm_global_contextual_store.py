# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-global-contextual-store.js
#
# An assignment to a global the sandbox has reaches the sandbox in strict mode
# too; an undeclared one is a contextual store, which only sloppy mode makes
# (strict mode throws a ReferenceError, and the sandbox gets nothing).
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

CASES = [{"id": "contextual_store", "api": "runInContext-sequence", "sandbox": {"x": 0}, "compare": "name",
          "code": ['"use strict"; x = 42', "y = 42", '"use strict"; z = 42', "typeof z"]}]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def test_strict_and_sloppy_stores_to_the_global():
    ctx = isolate.create_context({"x": 0})
    # A global the sandbox has is intercepted in strict mode.
    isolate.run_in_context('"use strict"; x = 42', ctx)
    assert ctx["x"] == 42
    # A contextual store (an undeclared name) only in sloppy mode.
    isolate.run_in_context("y = 42", ctx)
    assert ctx["y"] == 42
    with pytest.raises(isolate.JSReferenceError, match="z is not defined"):
        isolate.run_in_context('"use strict"; z = 42', ctx)
    assert "z" not in ctx
    assert isolate.run_in_context("Object.hasOwn(globalThis, 'z')", ctx) is False
