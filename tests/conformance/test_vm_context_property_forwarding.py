# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-context-property-forwarding.js
#
# Node's second and third parts define accessors on the sandbox object from
# the host; a Python dict cannot hold accessors, so they are defined on the
# context's global by JS first (the context-side view is the same).
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

CASES = [
    {"id": "forwarding", "api": "runInContext-sequence", "sandbox": {"x": 3}, "code": ["x;", "y = 4;"]},
    {"id": "indexed_getter_and_delete", "api": "runInContext-sequence", "sandbox": {},
     "code": ["Object.defineProperty(this, 1, { get() { return 5; }, enumerable: true, configurable: true }); 0",
              "const d = Object.getOwnPropertyDescriptor(this, 1); [typeof d.get, d.enumerable, d.configurable]",
              "this[1]", "delete this[1]", "this[1]"]},
    # https://github.com/nodejs/node/issues/33806
    {"id": "setter_throws", "api": "runInContext-sequence", "sandbox": {},
     "code": ["Object.defineProperty(this, 'prop', { get() { return undefined; },"
              " set(val) { throw new Error('test error'); }, configurable: true }); 0",
              "prop = 42"]},
]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def test_globals_forward_to_sandbox_and_context():
    sandbox = {"x": 3}
    ctx = isolate.create_context(sandbox)
    assert isolate.run_in_context("x;", ctx) == 3
    isolate.run_in_context("y = 4;", ctx)
    assert sandbox["y"] == 4
    assert ctx["y"] == 4


def test_indexed_getter_seen_and_deleted_from_the_host():
    ctx = isolate.create_context()
    isolate.run_in_context(
        "Object.defineProperty(this, 1, { get() { return 5; }, enumerable: true, configurable: true })", ctx)
    assert ctx["1"] == 5
    del ctx["1"]
    assert "1" not in ctx


def test_throwing_setter_reaches_the_caller():
    ctx = isolate.create_context()
    isolate.run_in_context("Object.defineProperty(this, 'prop', { get() { return undefined; },"
                           " set(val) { throw new Error('test error'); }, configurable: true })", ctx)
    with pytest.raises(isolate.JSError, match="test error"):
        isolate.run_in_context("prop = 42", ctx)
