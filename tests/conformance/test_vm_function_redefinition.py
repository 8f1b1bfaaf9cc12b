# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-function-redefinition.js
# Refs: https://github.com/nodejs/node/issues/548
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

CASES = [{"id": "redefine", "api": "runInContext-sequence",
          "code": ["function test() { return 0; }", "function test() { return 1; }", "test()"]}]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def test_redefined_function_wins():
    context = isolate.create_context()
    isolate.run_in_context("function test() { return 0; }", context)
    isolate.run_in_context("function test() { return 1; }", context)
    assert isolate.run_in_context("test()", context) == 1
