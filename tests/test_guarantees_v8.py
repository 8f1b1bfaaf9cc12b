"""The supervisor's guarantees (tests/test_guarantees.py) on Pool(engine="v8").

The same test functions, collected here with a V8 pool as their ``pool``. V8 is
stopped by its own TerminateExecution first (workers/v8engine.py), then by the
same kill ladder. Skipped when the `v8` extra is not installed.
"""

from __future__ import annotations

import importlib.util

import pytest

import isolate

from test_guarantees import (  # noqa: F401 - collected here, on V8
    BOUND_S, _assert_serves, _timed, assert_killed_and_replaced,
    test_blocking_host_callback_does_not_hold_the_caller,
    test_busy_loop_is_interrupted_and_context_survives,
    test_promise_job_loop_is_inside_the_timeout,
    test_timeout_during_host_callback_is_uncatchable,
    test_worker_killed_from_outside_mid_call,
)

pytestmark = pytest.mark.skipif(importlib.util.find_spec("STPyV8") is None,
                                reason="the v8 extra is not installed (pip install 'isolate-vm[v8]')")


@pytest.fixture
def pool():
    with isolate.Pool(size=2, spare_workers=1, engine="v8") as p:
        yield p


# test_uninterruptible_native_op_is_killed_and_replaced, with an op V8 cannot stop:
# V8 joins `new Array(1e9)` of holes at once, but normalizes 32M characters in one ICU
# call (~1.5 s here) that TerminateExecution waits for; the kill at timeout + grace comes first.
@pytest.mark.timeout(30)
def test_uninterruptible_native_op_is_killed_and_replaced(pool):
    assert_killed_and_replaced(pool, "'\\u00e9'.repeat(2 ** 25).normalize('NFD').length")
