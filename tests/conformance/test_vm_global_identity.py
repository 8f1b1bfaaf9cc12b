# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-global-identity.js
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

CASES = [{"id": "window_from_inside", "api": "runInContext-sequence",
          "code": ["window = this; 0", "this === window"]}]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def test_context_stored_in_itself_is_the_global():
    # Node's assert.strictEqual(runInContext('this'), runInContext('window')) compares one object with
    # itself; here both come back as copies (README, "Differences from Node"), so the identity is
    # checked where it lives, inside the context.
    ctx = isolate.create_context()
    ctx["window"] = ctx
    assert isolate.run_in_context("this === window", ctx) is True
    assert isolate.run_in_context("window.window === this", ctx) is True


def test_a_context_is_not_a_value_of_another_context():
    with pytest.raises(isolate.UnencodableValueError):
        isolate.create_context()["other"] = isolate.create_context()


def test_global_stored_from_inside_is_the_global():
    ctx = isolate.create_context()
    isolate.run_in_context("window = this", ctx)
    assert isolate.run_in_context("this === window", ctx) is True
