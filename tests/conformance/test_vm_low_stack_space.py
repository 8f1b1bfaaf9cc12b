# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-low-stack-space.js
#
# Node recurses until V8's RangeError and then calls into vm near the stack
# limit. The Python host's analog: recurse until RecursionError, then call
# isolate with what is left of the stack.
import pytest

import isolate

pytestmark = pytest.mark.timeout(60)


def test_run_in_this_context_near_the_recursion_limit():
    def a():
        try:
            return a()
        except RecursionError:
            # Raise as near to the recursion-based error as possible.
            return isolate.run_in_this_context("() => 42")()

    assert a() == 42
    assert isolate.run_in_this_context("40 + 2") == 42


def test_run_in_new_context_near_the_recursion_limit():
    def b():
        try:
            return b()
        except RecursionError:
            return isolate.run_in_new_context("() => 42")()

    assert b() == 42
    assert isolate.run_in_new_context("40 + 2") == 42
