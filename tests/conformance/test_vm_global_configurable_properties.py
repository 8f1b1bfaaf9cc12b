# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-global-configurable-properties.js
# https://github.com/nodejs/node/issues/47799
#
# Node calls Object.defineProperty on the global proxy from the host; Python
# has no defineProperty on a Context, so the same calls run inside.
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

CASES = [{"id": "redefine_configurable", "api": "runInContext-sequence",
          "code": ["Object.defineProperty(this, 'x', { value: '1', configurable: true }); x",
                   "Object.defineProperty(this, 'x', { value: '2', configurable: true }); x"]}]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def test_redefining_a_configurable_global():
    ctx = isolate.create_context()
    isolate.run_in_context("Object.defineProperty(this, 'x', { value: '1', configurable: true })", ctx)
    assert ctx["x"] == "1"
    isolate.run_in_context("Object.defineProperty(this, 'x', { value: '2', configurable: true })", ctx)
    assert ctx["x"] == "2"
