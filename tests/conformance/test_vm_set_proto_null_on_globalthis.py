# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-set-proto-null-on-globalthis.js
# Regression test for https://github.com/nodejs/node/issues/47798
#
# Node sets `__proto__` on the context's global from the host; the Python
# view of that global is the Context mapping.
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

CASES = [{"id": "proto_null_from_inside", "api": "runInContext-sequence",
          "code": ["this.__proto__ = null; 0", "Object.getPrototypeOf(this)", "1 + 1"]}]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def test_setting_proto_null_on_the_global_does_not_crash():
    context = isolate.create_context()
    context["__proto__"] = None  # should not crash
    assert isolate.run_in_context("Object.getPrototypeOf(this)", context) is None
    assert isolate.run_in_context("1 + 1", context) == 2
