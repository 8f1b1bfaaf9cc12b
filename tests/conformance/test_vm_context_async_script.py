# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-context-async-script.js
#
# Node passes its setTimeout into the sandbox and checks, once the timer has
# fired, that the callback's global write reached the contextified object. A
# Python host has no JS event loop: the host's `setTimeout` keeps the JS
# callback (a JSFunction) and the host calls it later, which is the same
# situation - code running in the context after the script returned.
import pytest

import isolate

pytestmark = pytest.mark.timeout(60)


def test_a_callback_run_later_updates_the_contextified_dict():
    timers = []
    sandbox = {"setTimeout": lambda fn, ms: timers.append(fn)}
    ctx = isolate.create_context(sandbox)
    isolate.run_in_context("setTimeout(function() { x = 3; }, 0);", ctx)
    assert len(timers) == 1
    timers.pop()()
    assert sandbox["x"] == 3
    assert ctx["x"] == 3
