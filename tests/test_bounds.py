"""Every path that runs script code has a bound, and the bounds are the README's.

The guarantee: a call returns within ``queue_timeout + timeout + grace``.
Time waiting for a worker is bounded by ``queue_timeout`` (by default the
call's own timeout); property reads, the dict mirror and compiles are bounded
too, with the kill ladder behind each. Real workers; events, not sleeps.
"""

from __future__ import annotations

import threading
import time

import pytest

import isolate

GRACE_S = isolate.Limits().kill_grace_s
SLACK_S = 0.4   # scheduling on a loaded 2-core machine; the guarantee is about the order of magnitude


def _timed(fn):
    start = time.monotonic()
    try:
        return None, fn(), time.monotonic() - start
    except Exception as exc:  # noqa: BLE001 - the tests inspect it
        return exc, None, time.monotonic() - start


def _busy(pool, ctx, ready: threading.Event, timeout_ms: int):
    """Occupy ``ctx``'s worker with a script that runs until its timeout."""
    return pool.arun_in_context("ready(); while (true) {}", ctx, timeout=timeout_ms)


# -- time spent queued -------------------------------------------------------------------

@pytest.mark.timeout(30)
def test_a_timed_call_waits_in_the_queue_at_most_its_timeout_and_never_runs():
    with isolate.Pool(size=1) as pool:
        ready = threading.Event()
        a = pool.create_context({"ready": ready.set})
        b = pool.create_context({"touched": False})
        long_call = _busy(pool, a, ready, 3000)
        assert ready.wait(10)
        error, _, took = _timed(lambda: pool.run_in_context("touched = true", b, timeout=200))
        assert isinstance(error, isolate.ScriptTimeoutError), error
        assert error.stage == "queued" and error.code == "ERR_SCRIPT_EXECUTION_TIMEOUT"
        assert "never ran" in str(error)
        assert 0.2 <= took < 0.2 + SLACK_S, took
        with pytest.raises(isolate.ScriptTimeoutError):
            long_call.result(timeout=10)
        assert b["touched"] is False  # it never ran, even later


@pytest.mark.timeout(30)
def test_queue_timeout_per_call_and_per_pool():
    with isolate.Pool(size=1, queue_timeout=100) as pool:
        ready = threading.Event()
        a = pool.create_context({"ready": ready.set})
        b = pool.create_context()
        long_call = _busy(pool, a, ready, 600)
        assert ready.wait(10)
        # The pool's default applies to an untimed call too.
        error, _, took = _timed(lambda: pool.run_in_context("1", b))
        assert isinstance(error, isolate.ScriptTimeoutError) and error.stage == "queued", error
        assert took < 0.1 + SLACK_S
        # A call's own queue_timeout wins: this one waits for the long call, then runs.
        error, value, took = _timed(lambda: pool.run_in_context("2", b, timeout=50, queue_timeout=5000))
        assert error is None and value == 2, error
        with pytest.raises(isolate.ScriptTimeoutError):
            long_call.result(timeout=10)


@pytest.mark.timeout(30)
def test_queue_timeout_inf_waits_as_long_as_it_takes():
    with isolate.Pool(size=1) as pool:
        ready = threading.Event()
        a = pool.create_context({"ready": ready.set})
        long_call = _busy(pool, a, ready, 400)
        assert ready.wait(10)
        assert pool.run_in_new_context("3", timeout=50, queue_timeout=float("inf")) == 3
        with pytest.raises(isolate.ScriptTimeoutError):
            long_call.result(timeout=10)


@pytest.mark.timeout(30)
def test_a_context_less_call_takes_the_first_free_worker():
    # No head-of-line blocking: with one worker busy, a fresh-context call runs
    # on the other at once instead of waiting behind the long script.
    with isolate.Pool(size=2) as pool:
        ready = threading.Event()
        a = pool.create_context({"ready": ready.set})
        long_call = _busy(pool, a, ready, 2000)
        assert ready.wait(10)
        for _ in range(5):
            error, value, took = _timed(lambda: pool.run_in_new_context("4", timeout=100))
            assert error is None and value == 4, error
            assert took < 0.5, took
        with pytest.raises(isolate.ScriptTimeoutError):
            long_call.result(timeout=10)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("bad", [0, -1, 1.5, "10", True, float("nan"), 2**40])
def test_queue_timeout_is_validated(bad):
    with pytest.raises((isolate.InvalidArgTypeError, isolate.OutOfRangeError)) as info:
        isolate.run_in_new_context("1", queue_timeout=bad)
    assert info.value.code in ("ERR_INVALID_ARG_TYPE", "ERR_OUT_OF_RANGE")
    assert "queue_timeout" in str(info.value)


# -- property access runs script code ---------------------------------------------------------

LOOPING_GETTER = ("Object.defineProperty(globalThis, 'x', {get() { for (;;); }, "
                  "enumerable: false, configurable: true}); 0")


@pytest.mark.timeout(30)
def test_reading_a_global_whose_getter_loops_is_bounded_and_the_context_survives():
    with isolate.Pool(size=1) as pool:
        ctx = pool.create_context()
        pool.run_in_context(LOOPING_GETTER + "; var y = 5", ctx)
        bound = pool.limits.access_timeout_s
        error, _, took = _timed(lambda: ctx["x"])
        assert isinstance(error, isolate.ScriptTimeoutError) and error.stage == "interrupt", error
        assert took < bound + GRACE_S + SLACK_S, took
        assert ctx["y"] == 5
        assert pool.run_in_context("y + 1", ctx) == 6


@pytest.mark.timeout(30)
def test_a_handle_property_whose_getter_loops_is_bounded():
    with isolate.Pool(size=1) as pool:
        obj = pool.run_in_new_context("new (class { get k() { for (;;); } get j() { return 3 } })()")
        assert isinstance(obj, isolate.JSObject)
        error, _, took = _timed(lambda: obj["k"])
        assert isinstance(error, isolate.ScriptTimeoutError), error
        assert took < pool.limits.access_timeout_s + GRACE_S + SLACK_S
        assert obj["j"] == 3


@pytest.mark.timeout(30)
def test_a_proxy_whose_traps_loop_is_bounded_on_keys_and_has():
    with isolate.Pool(size=1) as pool:
        ctx = pool.create_context()
        # A Proxy of a class instance comes back as a handle (reading it as a
        # plain object would run its traps while encoding the result).
        proxy = pool.run_in_context(
            "new Proxy(new (class C {})(), {ownKeys() { for (;;); }, has() { for (;;); }, "
            "get(t, k) { if (typeof k === 'symbol') return undefined; for (;;); }})", ctx)
        assert isinstance(proxy, isolate.JSObject)
        for attempt in (lambda: proxy.keys(), lambda: proxy["a"]):
            error, _, took = _timed(attempt)
            assert isinstance(error, isolate.ScriptTimeoutError), error
            assert took < pool.limits.access_timeout_s + GRACE_S + SLACK_S
        assert pool.run_in_context("1 + 1", ctx) == 2


@pytest.mark.timeout(30)
def test_access_timeout_is_a_limit():
    limits = isolate.Limits(access_timeout_s=0.2)
    with isolate.Pool(size=1, limits=limits) as pool:
        ctx = pool.create_context()
        pool.run_in_context(LOOPING_GETTER, ctx)
        error, _, took = _timed(lambda: ctx["x"])
        assert isinstance(error, isolate.ScriptTimeoutError)
        assert took < 0.2 + GRACE_S + SLACK_S


# -- compiling runs no code, except a body that closes its wrapper --------------------------------

@pytest.mark.timeout(30)
def test_a_function_body_that_closes_its_wrapper_and_runs_native_work_is_a_bounded_syntax_error():
    limits = isolate.Limits(compile_timeout_s=0.5)
    with isolate.Pool(size=1, limits=limits) as pool:
        error, _, took = _timed(lambda: pool.compile_function(
            "}); new Array(1e9).join(''); (function () {"))
        assert isinstance(error, isolate.JSSyntaxError), error
        assert took < 0.5 + GRACE_S + SLACK_S + 0.5, took
        # The pool still compiles and runs.
        assert pool.compile_function("return a * 2", ["a"])(21) == 42
        assert pool.run_in_new_context("1 + 1") == 2


# -- one kill does not break the pool for good ----------------------------------------------------

@pytest.mark.timeout(60)
def test_the_main_context_lost_with_its_worker_is_reported_once_then_replaced():
    with isolate.Pool(size=1) as pool:
        pool.run_in_this_context("var kept = 1")
        with pytest.raises(isolate.ScriptTimeoutError) as info:
            pool.run_in_this_context("new Array(1e9).join('')", timeout=100)
        assert info.value.stage == "kill"
        # Things that only need a place to compile or run never fail for it.
        assert isolate.Script("1 + 2", pool=pool).run_in_new_context() == 3
        assert pool.compile_function("return 5")() == 5
        module = isolate.SourceTextModule("export const v = 6;", context=pool.create_context())
        module.link(lambda *a: None).result(10)
        module.evaluate().result(10)
        assert module.namespace["v"] == 6
        # Code that relies on the main context's state hears of its loss once...
        with pytest.raises(isolate.ContextLostError, match="main context"):
            pool.run_in_this_context("kept")
        # ...then a new main context serves (its state starts afresh).
        assert pool.run_in_this_context("typeof kept") == "undefined"
        assert pool.run_in_this_context("var again = 2; again") == 2


@pytest.mark.timeout(60)
def test_the_default_pool_survives_a_kill_of_its_main_context_worker():
    isolate.run_in_this_context("1")
    with pytest.raises(isolate.ScriptTimeoutError):
        isolate.run_in_this_context("new Array(1e9).join('')", timeout=100)
    script = isolate.Script("7")   # compiles anywhere: unaffected
    with pytest.raises(isolate.ContextLostError):
        script.run_in_this_context()  # the loss, reported once
    assert script.run_in_this_context() == 7
    assert isolate.run_in_this_context("8") == 8
    assert isolate.compile_function("return 9")() == 9


# -- nesting ---------------------------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_nesting_past_the_limit_is_nesting_too_deep_error():
    with isolate.Pool(size=1) as pool:
        ctx = pool.create_context()

        def down(n):
            return ctx["down"](n + 1)

        ctx["py"] = down
        pool.run_in_context("function down(n) { return py(n); }", ctx)
        with pytest.raises(isolate.NestingTooDeepError) as info:
            pool.run_in_context("down(0)", ctx)
        assert isinstance(info.value, RecursionError)
        assert info.value.code == "ERR_ISOLATE_NESTING_TOO_DEEP"
        assert pool.run_in_context("1 + 1", ctx) == 2
