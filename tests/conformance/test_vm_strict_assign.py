# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-strict-assign.js
# https://github.com/nodejs/node/issues/10223
#
# V8's message ("Cannot assign to read only property 'x'") is the engine's;
# QuickJS words it differently (README), so the error's name is compared.
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

CASES = [{"id": "strict_assign", "api": "runInContext-sequence", "compare": "name",
          "code": ['Object.defineProperty(this, "x", { value: 42 })', "x", "x = 0", "x", '"use strict"; x = 0', "x"]}]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def test_strict_assignment_to_a_read_only_global():
    ctx = isolate.create_context()
    # Define x with writable = false.
    isolate.run_in_context('Object.defineProperty(this, "x", { value: 42 })', ctx)
    assert ctx["x"] == 42
    assert isolate.run_in_context("x", ctx) == 42
    isolate.run_in_context("x = 0", ctx)  # does not throw but x...
    assert isolate.run_in_context("x", ctx) == 42  # ...should be unaltered
    with pytest.raises(isolate.JSTypeError):
        isolate.run_in_context('"use strict"; x = 0', ctx)
    assert isolate.run_in_context("x", ctx) == 42
