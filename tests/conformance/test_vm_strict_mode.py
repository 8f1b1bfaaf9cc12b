# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-strict-mode.js
# https://github.com/nodejs/node/issues/12300
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

CASES = [{"id": "strict_assign_sandbox_global", "api": "runInContext-sequence", "sandbox": {"x": 42},
          "code": ['"use strict"; x = 1', "x"]}]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def test_strict_assignment_to_a_sandbox_global():
    ctx = isolate.create_context({"x": 42})
    # x is defined on the sandbox, so the assignment should not throw.
    isolate.run_in_context('"use strict"; x = 1', ctx)
    assert ctx["x"] == 1
