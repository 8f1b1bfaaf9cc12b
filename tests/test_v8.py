"""Pool(engine="v8"): V8 in the workers (workers/v8engine.py), with the same guarantees.

Skipped when the `v8` extra (STPyV8) is not installed. The engine seam itself
(workers/engine_api.py) is exercised by every other test, on QuickJS.
"""

from __future__ import annotations

import importlib.util
import os
import signal

import pytest

import isolate
from isolate import Pool

V8_INSTALLED = importlib.util.find_spec("STPyV8") is not None
needs_v8 = pytest.mark.skipif(not V8_INSTALLED, reason="the v8 extra is not installed (pip install 'isolate-vm[v8]')")


@pytest.fixture(scope="module")
def v8pool():
    if not V8_INSTALLED:
        pytest.skip("the v8 extra is not installed (pip install 'isolate-vm[v8]')")
    with Pool(2, engine="v8", spare_workers=1) as pool:
        yield pool


def test_unknown_engine_is_a_typed_error():
    with pytest.raises(isolate.InvalidArgValueError) as info:
        Pool(1, engine="spidermonkey")
    assert info.value.code == "ERR_INVALID_ARG_VALUE"
    with pytest.raises(isolate.InvalidArgTypeError):
        Pool(1, engine=8)


def test_missing_extra_names_it(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "STPyV8" else real(name, *a))
    with pytest.raises(isolate.EngineUnavailableError) as info:
        Pool(1, engine="v8")
    assert info.value.code == "ERR_ISOLATE_ENGINE_UNAVAILABLE"
    assert "pip install 'isolate-vm[v8]'" in str(info.value)
    assert isinstance(info.value, isolate.UnsupportedError)


@needs_v8
def test_workers_run_v8(v8pool):
    assert all(w.info["engine"].startswith("V8 via STPyV8") for w in v8pool._workers)
    # V8's own messages, as Node has them (QuickJS words these differently).
    with pytest.raises(isolate.JSTypeError) as info:
        v8pool.run_in_new_context("null.x")
    assert info.value.message == "Cannot read properties of null (reading 'x')"


@needs_v8
def test_contexts_globals_functions_and_host_callables(v8pool):
    ctx = v8pool.create_context({"x": 2, "triple": lambda a: a * 3})
    assert v8pool.run_in_context("x * 21", ctx) == 42
    assert v8pool.run_in_context("triple(14)", ctx) == 42
    assert v8pool.run_in_context("var z = 6; globalThis.w = 7; z + w", ctx) == 13
    assert ctx["z"] == 6 and ctx["w"] == 7
    add = v8pool.run_in_context("(function (a, b) { return a + b })", ctx)
    assert add(40, 2) == 42
    # A host callable that calls back into the same context, nested.
    ctx2 = v8pool.create_context({"back": lambda: v8pool.run_in_context("x + 1", ctx2), "x": 41})
    assert v8pool.run_in_context("back()", ctx2) == 42


@needs_v8
def test_values_cross_exactly(v8pool):
    value = v8pool.run_in_new_context("[1n, undefined, -0, 'x\\ud800', 'é😀', new Map([[1, 2]]), {a: [1, {b: null}]}]")
    assert value[0] == isolate.BigInt(1)
    assert value[1] is isolate.undefined
    assert str(value[2]) == "-0.0"
    assert value[3] == "x\ud800" and value[4] == "é😀"
    assert value[6] == {"a": [1, {"b": None}]}
    assert v8pool.run_in_new_context("s.length", {"s": "é😀\ud800"}) == 4


@needs_v8
def test_script_compiled_once_runs_in_many_contexts(v8pool):
    script = isolate.Script("n * 2", filename="double.js", pool=v8pool) if "pool" in isolate.Script.__init__.__code__.co_varnames else None
    if script is None:
        pytest.skip("Script takes no pool here")
    assert [script.run_in_new_context({"n": i}) for i in range(3)] == [0, 2, 4]


@needs_v8
def test_stack_names_the_file(v8pool):
    with pytest.raises(isolate.JSTypeError) as info:
        v8pool.run_in_new_context("function g() { null.x }\ng()", filename="b.js")
    assert "at g (b.js:1:" in info.value.stack


@needs_v8
def test_known_difference_top_level_let_does_not_persist(v8pool):
    """Documented (README, engine table): V8 runs scripts through the bridge's eval,
    so top-level let/const/class stay in their script, as in an eval (var persists)."""
    ctx = v8pool.create_context()
    v8pool.run_in_context("let a = 1; var b = 2", ctx)
    assert v8pool.run_in_context("[typeof a, typeof b]", ctx) == ["undefined", "number"]


@needs_v8
def test_infinite_loop_stops_at_its_timeout(v8pool):
    ctx = v8pool.create_context()
    with pytest.raises(isolate.ScriptTimeoutError):
        v8pool.run_in_context("while (true) {}", ctx, timeout=100)
    # Uncatchable, and the context lives on.
    with pytest.raises(isolate.ScriptTimeoutError):
        v8pool.run_in_context("try { while (true) {} } catch (e) {} finally { globalThis.ran = 1 }", ctx, timeout=100)
    assert v8pool.run_in_context("typeof ran", ctx) == "undefined"
    assert v8pool.run_in_context("1 + 1", ctx) == 2


@needs_v8
def test_timeout_inside_a_host_call_is_not_catchable(v8pool):
    ctx = v8pool.create_context({"wait": lambda: v8pool.run_in_context("for (;;) {}", inner, timeout=10_000)})
    inner = v8pool.create_context()
    with pytest.raises(isolate.ScriptTimeoutError):
        v8pool.run_in_context("try { wait() } catch (e) { 'caught' }", ctx, timeout=200)
    assert v8pool.run_in_context("2", ctx) == 2


@needs_v8
def test_memory_bomb_is_a_memory_error_and_the_pool_lives(v8pool):
    with pytest.raises(isolate.JSMemoryError):
        v8pool.run_in_new_context("let a = []; for (;;) a.push(new Array(1e5).fill(1))",
                                  memory_limit="64MB", timeout=60_000)
    assert v8pool.run_in_new_context("6 * 7") == 42


@needs_v8
def test_a_killed_worker_costs_one_worker(v8pool):
    ctx = v8pool.create_context()
    pid = v8pool.run_in_context("1", ctx) and ctx.worker_pid
    os.kill(pid, signal.SIGKILL)
    with pytest.raises((isolate.WorkerCrashedError, isolate.ContextLostError)):
        v8pool.run_in_context("1", ctx, timeout=5000)
    assert v8pool.run_in_new_context("'alive'") == "alive"


@needs_v8
def test_unsupported_features_fail_loudly(v8pool):
    ctx = v8pool.create_context()
    with pytest.raises(isolate.UnsupportedError) as info:
        isolate.SourceTextModule("export const a = 1", context=ctx).link(lambda *a: None)
    assert info.value.code == "ERR_ISOLATE_UNSUPPORTED"


@needs_v8
def test_measure_memory_reports_figures(v8pool):
    ctx = v8pool.create_context()
    v8pool.run_in_context("globalThis.big = new Array(1e6).fill(1)", ctx)
    usage = ctx.memory_usage()
    assert usage["used"] >= 0 and "limit" in usage


@needs_v8
@pytest.mark.timeout(60)
def test_break_on_sigint_interrupts_v8(v8pool):
    import threading

    ready = threading.Event()
    previous = signal.getsignal(signal.SIGINT)
    seen = []
    signal.signal(signal.SIGINT, lambda *a: seen.append(1))
    try:
        threading.Thread(target=lambda: ready.wait(30) and os.kill(os.getpid(), signal.SIGINT), daemon=True).start()
        ctx = v8pool.create_context({"ready": ready.set})
        with pytest.raises(isolate.ScriptInterruptedError) as info:
            v8pool.run_in_context("ready(); while (true) {}", ctx, break_on_sigint=True)
        assert info.value.code == "ERR_SCRIPT_EXECUTION_INTERRUPTED"
        assert seen == []  # the script's, not the host's handler
        assert v8pool.run_in_context("1 + 1", ctx) == 2
    finally:
        signal.signal(signal.SIGINT, previous)


@needs_v8
@pytest.mark.timeout(60)
def test_timeout_racing_host_calls_is_always_a_timeout(v8pool):
    """Stops that land around host calls (the race test_guarantees runs on QuickJS)."""
    import threading

    slow = threading.Event()
    ctx = v8pool.create_context({"hostFn": lambda: slow.wait(0.005)})
    for _ in range(300):
        with pytest.raises(isolate.ScriptTimeoutError) as info:
            v8pool.run_in_context("hostFn(); while (true) {}", ctx, timeout=2)
        if info.value.stage == "kill":
            ctx = v8pool.create_context({"hostFn": lambda: slow.wait(0.005)})


@needs_v8
def test_many_fresh_contexts_on_one_worker(v8pool):
    """STPyV8 crashed collecting contexts that Python values had been converted into;
    V8 contexts here only ever receive source text (workers/v8engine.py)."""
    for i in range(1500):
        assert v8pool.run_in_new_context("x + 1", {"x": i, "f": len}) == i + 1


@needs_v8
@pytest.mark.timeout(60)
def test_v8_flags_from_the_pools_environment_reach_v8():
    # Set before V8 starts (STPyV8 starts it on import; a flag set later would stop
    # the worker). --jitless takes WebAssembly away: a flag V8 took is visible from JS.
    with Pool(1, engine="v8", env={"ISOLATE_V8_FLAGS": "--jitless"}) as pool:
        assert pool.run_in_new_context("typeof WebAssembly") == "undefined"
        assert pool.run_in_new_context("let s = 0; for (let i = 0; i < 1e5; i++) s += i; s") == 4999950000
    with Pool(1, engine="v8") as pool:
        assert pool.run_in_new_context("typeof WebAssembly") == "object"
