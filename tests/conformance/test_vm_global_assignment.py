# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-global-assignment.js
# Regression test for https://github.com/nodejs/node/issues/10806
#
# Node's `window` is the global proxy (`vm.runInContext('this', ctx)`); from
# Python the live view of that global is the Context mapping.
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

CASES = [{"id": "assign_twice", "api": "runInContext-sequence", "sandbox": {},
          "code": ["this.open = function() {}; 0", "this.open = 123; this.open", "this.open = 123; this.open"]}]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def test_assigning_over_a_sandbox_function_twice():
    window = isolate.create_context({"open": lambda: None})
    other = 123
    assert window["open"] != other
    window["open"] = other
    assert window["open"] == other
    window["open"] = other
    assert window["open"] == other
    assert isolate.run_in_context("open", window) == other
