"""The Node-shaped API on real worker processes: contexts, values, errors, timeouts, nesting."""

import gc
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import psutil
import pytest

import isolate

pytestmark = pytest.mark.timeout(60)


def test_spec_run_in_new_context_example(pool):
    sandbox = {"animal": "cat", "count": 2}
    assert pool.run_in_new_context("count += 1; name = 'kitty'", sandbox) == "kitty"
    assert sandbox == {"animal": "cat", "count": 3, "name": "kitty"}


def test_contextified_dict_is_a_context_and_mirrors_globals():
    context = {"globalVar": 1}
    ctx = isolate.create_context(context)
    assert isolate.is_context(context) and isolate.is_context(ctx)
    for _ in range(10):
        isolate.run_in_context("globalVar *= 2;", context)
    assert context == {"globalVar": 1024}
    assert ctx["globalVar"] == 1024
    assert not isolate.is_context({"globalVar": 1})


def test_context_is_a_live_mapping(pool):
    ctx = pool.create_context()
    ctx["a"] = [1, 2]
    assert pool.run_in_context("a.push(3); a.length", ctx) == 3
    assert ctx["a"] == [1, 2, 3]
    assert "a" in ctx and "nope" not in ctx
    assert list(ctx) == ["a"] and len(ctx) == 1
    del ctx["a"]
    with pytest.raises(KeyError):
        ctx["a"]
    with pytest.raises(KeyError):
        del ctx["a"]


def test_two_contexts_spread_over_two_workers_and_run_in_parallel(pool):
    a, b = pool.create_context(), pool.create_context()
    assert a.worker_pid != b.worker_pid
    assert sorted(pool.worker_pids()) == sorted({a.worker_pid, b.worker_pid} | set(pool.worker_pids()))
    busy = "var t = Date.now(); while (Date.now() - t < 400) {}; 1"
    start = time.monotonic()
    pool.run_in_context(busy, a)
    one = time.monotonic() - start
    results = []
    threads = [threading.Thread(target=lambda c=c: results.append(pool.run_in_context(busy, c)))
               for c in (a, b)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    both = time.monotonic() - start
    assert results == [1, 1]
    assert both < one * 1.6, (one, both)


def test_no_host_hooks_visible(pool):
    ctx = pool.create_context()
    kinds = pool.run_in_context(
        "[typeof process, typeof require, typeof call_python, typeof dukpy, typeof console,"
        " typeof performance, Object.keys(globalThis).length]", ctx)
    assert kinds == ["undefined"] * 6 + [0]
    # dukpy re-injects its hooks on every eval: still hidden afterwards.
    assert pool.run_in_context("typeof call_python + typeof dukpy", ctx) == "undefinedundefined"


def test_timeout_stops_busy_loop_and_context_survives(pool):
    ctx = pool.create_context({"n": 0})
    start = time.monotonic()
    with pytest.raises(isolate.ScriptTimeoutError) as info:
        pool.run_in_context("while(true){ n++ }", ctx, timeout=50)
    assert time.monotonic() - start < 1.0
    assert info.value.code == "ERR_SCRIPT_EXECUTION_TIMEOUT"
    assert str(info.value) == "Script execution timed out after 50ms"
    assert isinstance(info.value, TimeoutError)
    assert pool.run_in_context("1+1", ctx) == 2
    assert pool.run_in_context("n", ctx) > 0  # the state the script reached is kept


def test_timeout_does_not_fire_after_the_script_finished(pool):
    # 1 ms deadlines land just after (or, on a loaded machine, just before) the
    # script ends: each call either returns or raises ScriptTimeoutError, and a
    # timer firing after the reply must never tear the worker loop.
    ctx = pool.create_context()
    answered = 0
    for _ in range(200):
        try:
            assert pool.run_in_context("1", ctx, timeout=1) == 1
            answered += 1
        except isolate.ScriptTimeoutError as exc:
            assert exc.stage == "interrupt"
    assert answered >= 100
    assert pool.run_in_context("1+1", ctx) == 2


def test_values_round_trip(pool):
    ctx = pool.create_context()
    value = pool.run_in_context(
        "[undefined, null, true, 1, 1.5, NaN, -0, Infinity, 2n**70n, 'x\\uD800', [1], {a: 1},"
        " new Date(0), /ab+c/gi, new Map([[1, 'one']]), new Set([1, 2]), new Uint8Array([1, 2]),"
        " new ArrayBuffer(2), Symbol.for('k')]", ctx)
    (u, null, t, one, f, nan, negzero, inf, big, lone, arr, obj, date, regexp, m, s, ta, ab, sym) = value
    assert u is isolate.undefined and not u and null is None and t is True
    assert one == 1 and type(one) is int and f == 1.5 and math.isnan(nan)
    assert negzero == 0 and math.copysign(1, negzero) < 0 and inf == math.inf
    assert big == 2**70 and isinstance(big, isolate.BigInt)
    assert lone == "x\ud800" and arr == [1] and obj == {"a": 1}
    assert date.timestamp() == 0 and date.tzinfo is not None
    assert regexp == isolate.JSRegExp("ab+c", "gi")
    assert m == {1: "one"} and isinstance(m, isolate.JSMap)
    assert s == {1, 2} and isinstance(s, isolate.JSSet)
    assert ta == isolate.JSTypedArray("Uint8Array", b"\x01\x02") and ta.tolist() == [1, 2]
    assert ab == b"\x00\x00" and sym == isolate.JSSymbol("k", True)
    # ... and back into JS unchanged.
    ctx["v"] = value
    assert pool.run_in_context(
        "v[0] === undefined && v[1] === null && Object.is(v[6], -0) && typeof v[8] === 'bigint'"
        " && v[12] instanceof Date && v[13].flags === 'gi' && v[14].get(1) === 'one'"
        " && v[15].has(2) && v[16] instanceof Uint8Array && v[17] instanceof ArrayBuffer"
        " && v[18] === Symbol.for('k')", ctx) is True


def test_cycles_and_shared_references(pool):
    ctx = pool.create_context()
    a = pool.run_in_context("var o = {}; o.self = o; var s = [1]; [o, s, s]", ctx)
    assert a[0]["self"] is a[0] and a[1] is a[2]
    d = {"k": 1}
    d["me"] = d
    ctx["d"] = d
    assert pool.run_in_context("d.me === d && d.me.me.k", ctx) == 1


def test_functions_are_handles_and_callable(pool):
    ctx = pool.create_context()
    add = pool.run_in_context("(function add(a, b) { return a + b })", ctx)
    assert isinstance(add, isolate.JSFunction) and add.name == "add"
    assert add(2, 3) == 5
    Point = pool.run_in_context("(class Point { constructor(x) { this.x = x } norm() { return this.x } })", ctx)
    p = Point.new(7)
    assert isinstance(p, isolate.JSObject) and p["x"] == 7
    ctx["add"] = add  # a handle goes home as the same function
    assert pool.run_in_context("add(1, 1)", ctx) == 2
    other = pool.create_context()
    with pytest.raises(isolate.UnencodableValueError):
        other["add"] = add


def test_host_callables_and_nested_calls(pool):
    ctx = pool.create_context()
    seen = []

    def host_fib(n):
        seen.append(n)
        return n if n < 2 else js_fib(n - 1) + js_fib(n - 2)

    ctx["host_fib"] = host_fib
    js_fib = pool.run_in_context("(function fib(n) { return n < 2 ? n : host_fib(n - 1) + host_fib(n - 2) })", ctx)
    assert js_fib(10) == 55
    assert len(seen) > 50


def test_host_exception_becomes_js_exception_and_back(pool):
    ctx = pool.create_context()

    def boom():
        raise ValueError("host says no")

    ctx["boom"] = boom
    assert pool.run_in_context("try { boom() } catch (e) { e.name + ': ' + e.message }", ctx) == \
        "RangeError: host says no"
    with pytest.raises(isolate.JSRangeError, match="host says no"):
        pool.run_in_context("boom()", ctx)


def test_js_errors_map_to_python_classes(pool):
    ctx = pool.create_context()
    cases = {
        "null.x": (isolate.JSTypeError, TypeError),
        "nope": (isolate.JSReferenceError, NameError),
        "new Array(-1)": (isolate.JSRangeError, ValueError),
        "eval('var x = ;')": (isolate.JSSyntaxError, SyntaxError),
        "decodeURIComponent('%')": (isolate.JSURIError, ValueError),
    }
    for code, (cls, builtin) in cases.items():
        with pytest.raises(cls) as info:
            pool.run_in_context(code, ctx)
        assert isinstance(info.value, builtin) and isinstance(info.value, isolate.IsolateError)
        # (after the displayErrors lines, "evalmachine.<anonymous>:1", the source line and a caret)
        assert info.value.stack.split("\n\n", 1)[-1].startswith(info.value.name)
    with pytest.raises(isolate.JSError) as info:
        pool.run_in_context("throw {code: 5}", ctx)
    assert info.value.value == {"code": 5}
    with pytest.raises(isolate.JSError) as info:
        pool.run_in_context("const e = new Error('m'); e.code = 'E_X'; throw e", ctx)
    assert info.value.code == "ERR_JS_EXCEPTION" and info.value.props["code"] == "E_X"


def test_stack_uses_filename_and_offsets(pool):
    ctx = pool.create_context()
    with pytest.raises(isolate.JSError) as info:
        pool.run_in_context("\n\nthrow new Error('x')", ctx, filename="a.js", line_offset=10)
    assert "a.js:13:" in info.value.stack and "<dukpy>" not in info.value.stack
    with pytest.raises(isolate.JSSyntaxError) as info:
        isolate.Script("var x = ;", filename="b.js", line_offset=10)
    assert info.value.stack.startswith("b.js:11\nvar x = ;\n")


def test_promises(pool):
    ctx = pool.create_context()
    p = pool.run_in_context("Promise.resolve(41).then((x) => x + 1)", ctx)
    assert isinstance(p, isolate.JSPromise) and p.state() == "fulfilled" and p.result() == 42
    r = pool.run_in_context("Promise.reject(new TypeError('no'))", ctx)
    with pytest.raises(isolate.JSTypeError):
        r.result()
    pending = pool.run_in_context("new Promise(() => {})", ctx)
    with pytest.raises(isolate.PromisePendingError):
        pending.result()


def test_script_compiles_once_runs_everywhere(pool):
    script = isolate.Script("count += 1; name = 'kitty';")
    context = {"animal": "cat", "count": 2}
    isolate.create_context(context)
    for _ in range(10):
        script.run_in_context(context)
    assert context == {"animal": "cat", "count": 12, "name": "kitty"}
    assert isolate.Script("//# sourceMappingURL=sourcemap.json\n").source_map_url == "sourcemap.json"


def test_run_in_this_context_persists():
    isolate.run_in_this_context("globalVar = 0")
    script = isolate.Script("globalVar += 1", filename="myfile.vm")
    for _ in range(100):
        script.run_in_this_context()
    assert isolate.run_in_this_context("globalVar") == 100


def test_compile_function_with_extensions(pool):
    fn = isolate.compile_function("return a + b + c", ["a", "b"], context_extensions=[{"c": 100}])
    assert fn(1, 2) == 103
    ctx = isolate.create_context({"g": 5})
    fn = isolate.compile_function("return g * x", ["x"], parsing_context=ctx)
    assert fn(3) == 15


@pytest.mark.parametrize("call, exc, code", [
    (lambda: isolate.run_in_new_context(5), TypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.run_in_new_context("1", 5), TypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.run_in_new_context("1", None, 5), TypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.run_in_new_context("1", timeout=0), ValueError, "ERR_OUT_OF_RANGE"),
    (lambda: isolate.run_in_new_context("1", timeout=-5), ValueError, "ERR_OUT_OF_RANGE"),
    (lambda: isolate.run_in_new_context("1", timeout=1.5), ValueError, "ERR_OUT_OF_RANGE"),
    (lambda: isolate.run_in_new_context("1", timeout="5"), TypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.run_in_new_context("1", filename=3), TypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.run_in_new_context("1", None, {"timeout": True}), TypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.run_in_new_context("1", bogus=1), ValueError, "ERR_INVALID_ARG_VALUE"),
    (lambda: isolate.run_in_new_context("1", microtask_mode="never"), ValueError, "ERR_INVALID_ARG_VALUE"),
    (lambda: isolate.run_in_new_context("1", context_origin="not a url/"), ValueError, "ERR_INVALID_ARG_VALUE"),
    (lambda: isolate.run_in_context("1", {}), TypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.run_in_context("1", "ctx"), TypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.run_in_this_context(None), TypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.run_in_this_context("1", line_offset="x"), TypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.create_context({1, 2}), TypeError, "ERR_INVALID_ARG_TYPE"),  # (a list is an array sandbox)
    (lambda: isolate.create_context(None, name=5), TypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.Script(b"1"), TypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.Script("1", display_errors="yes"), TypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.Script("1", cached_data="x"), TypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.Script("1", produce_cached_data=1), TypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.compile_function("1", "a"), TypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.compile_function("1", [1]), TypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.compile_function("1", [], context_extensions=[1]), TypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.compile_function("1", [], parsing_context={}), TypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.Pool(size=0), ValueError, "ERR_OUT_OF_RANGE"),
    (lambda: isolate.Pool(size="2"), TypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.create_context({"x": object()}), TypeError, "ERR_ISOLATE_UNENCODABLE"),
])
def test_bad_input_fails_clearly_and_loses_nothing(call, exc, code):
    with pytest.raises(exc) as info:
        call()
    assert info.value.code == code
    assert isinstance(info.value, isolate.IsolateError)
    assert "Received" in str(info.value) or code == "ERR_ISOLATE_UNENCODABLE" or "supported" in str(info.value)
    assert isolate.run_in_new_context("1+1") == 2


def test_messages_name_option_expectation_and_value():
    with pytest.raises(ValueError) as info:
        isolate.run_in_new_context("1", timeout=0)
    assert str(info.value) == ('The value of "options.timeout" is out of range. '
                               'It must be >= 1 && <= 4294967295. Received 0')


def test_node_style_options_dict_and_filename_string(pool):
    ctx = pool.create_context()
    with pytest.raises(isolate.JSError) as info:
        pool.run_in_context("throw new Error('x')", ctx, "file.js")
    assert "file.js:1:" in info.value.stack
    with pytest.raises(isolate.JSError) as info:
        pool.run_in_context("\nthrow new Error('x')", ctx, {"filename": "f.js", "lineOffset": 4})
    assert "f.js:6:" in info.value.stack


def test_unencodable_value_fails_that_call_only(pool):
    ctx = pool.create_context()
    with pytest.raises(isolate.UnencodableValueError):
        ctx["x"] = object()
    ctx["give"] = lambda: object()
    # JS sees a TypeError with code ERR_ISOLATE_UNENCODABLE; let through, it is isolate's error again.
    with pytest.raises(isolate.UnencodableValueError, match="cannot pass") as info:
        pool.run_in_context("give()", ctx)
    assert isinstance(info.value.__cause__, isolate.JSTypeError)
    assert pool.run_in_context("try { give() } catch (e) { e.code }", ctx) == "ERR_ISOLATE_UNENCODABLE"
    assert pool.run_in_context("1+1", ctx) == 2


def test_threads_share_a_pool(pool):
    errors = []

    def work(i):
        try:
            ctx = pool.create_context({"i": i})
            for j in range(30):
                assert pool.run_in_context("i * 2 + j", {"j": j} and ctx) if False else True
                ctx["j"] = j
                assert pool.run_in_context("i * 1000 + j", ctx) == i * 1000 + j
        except Exception as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


def test_handles_are_released_when_proxies_die(pool):
    ctx = pool.create_context()
    worker = ctx._worker
    before = ctx._request("context_stats")["handles"]
    fns = [pool.run_in_context("(function () {})", ctx) for _ in range(20)]
    assert ctx._request("context_stats")["handles"] == before + 20
    del fns
    gc.collect()
    pool.run_in_context("1", ctx)  # the next request flushes the queued releases
    assert ctx._request("context_stats")["handles"] <= before + 1
    assert worker._releases.qsize() <= 1


def _wait_ready(ctx):
    ready = threading.Event()
    ctx["ready"] = lambda: ready.set()
    return ready


def test_worker_killed_mid_call_fails_the_call_and_pool_recovers(fresh_pool):
    ctx = fresh_pool.create_context()
    ready = _wait_ready(ctx)
    pid = ctx.worker_pid
    threading.Thread(target=lambda: (ready.wait(10), os.kill(pid, signal.SIGKILL)), daemon=True).start()
    start = time.monotonic()
    with pytest.raises(isolate.WorkerCrashedError) as info:
        fresh_pool.run_in_context("ready(); while (true) {}", ctx)
    assert time.monotonic() - start < 5
    assert "SIGKILL(-9)" in str(info.value) and info.value.exitcode == -9
    with pytest.raises(isolate.ContextLostError):
        fresh_pool.run_in_context("1", ctx)
    assert fresh_pool.run_in_new_context("1+1") == 2
    assert pid not in fresh_pool.worker_pids()


def test_segfaulting_worker_is_contained(fresh_pool):
    ctx = fresh_pool.create_context()
    ready = _wait_ready(ctx)
    pid = ctx.worker_pid
    threading.Thread(target=lambda: (ready.wait(10), os.kill(pid, signal.SIGSEGV)), daemon=True).start()
    with pytest.raises(isolate.WorkerCrashedError, match="SIGSEGV"):
        fresh_pool.run_in_context("ready(); while (true) {}", ctx)
    assert fresh_pool.run_in_new_context("2+2") == 4


def test_close_during_a_call_resolves_it():
    pool = isolate.Pool(size=1)
    ctx = pool.create_context()
    ready = _wait_ready(ctx)
    outcome = []

    def call():
        try:
            pool.run_in_context("ready(); while (true) {}", ctx)
        except isolate.IsolateError as exc:
            outcome.append(exc)

    t = threading.Thread(target=call)
    t.start()
    assert ready.wait(10)
    pids = pool.worker_pids()
    pool.close()
    t.join(10)
    assert not t.is_alive() and isinstance(outcome[0], isolate.PoolClosedError)
    with pytest.raises(isolate.PoolClosedError):
        pool.create_context()
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE is False


def test_close_leaves_no_processes():
    pool = isolate.Pool(size=2)
    pids = pool.worker_pids()
    pool.close()
    me = psutil.Process()
    assert not [c for c in me.children() if c.pid in pids]


def test_workers_die_with_a_sigkilled_host(tmp_path):
    host = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import sys, isolate
        pool = isolate.Pool(size=2)
        print(*pool.worker_pids(), flush=True)
        sys.stdin.read()
    """)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    pids = [int(p) for p in host.stdout.readline().split()]
    assert len(pids) == 2
    workers = [psutil.Process(p) for p in pids]
    host.kill()
    host.wait(10)
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive


def test_break_on_sigint_interrupts_and_restores_handler(pool):
    ctx = pool.create_context()
    ready = _wait_ready(ctx)
    threading.Thread(target=lambda: (ready.wait(10), os.kill(os.getpid(), signal.SIGINT)), daemon=True).start()
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(isolate.ScriptInterruptedError) as info:
        pool.run_in_context("ready(); while (true) {}", ctx, break_on_sigint=True)
    assert info.value.code == "ERR_SCRIPT_EXECUTION_INTERRUPTED"
    assert signal.getsignal(signal.SIGINT) is before
    assert pool.run_in_context("1+1", ctx) == 2


def test_break_on_sigint_from_another_thread_fails_loudly(pool):
    ctx = pool.create_context()
    out = []
    t = threading.Thread(target=lambda: out.append(
        pytest.raises(ValueError, pool.run_in_context, "1", ctx, break_on_sigint=True)))
    t.start()
    t.join(10)
    assert out and "main thread" in str(out[0].value)


def test_break_on_sigint_kills_a_script_stuck_in_native_code(fresh_pool):
    ctx = fresh_pool.create_context()
    ready = _wait_ready(ctx)
    threading.Thread(target=lambda: (ready.wait(10), os.kill(os.getpid(), signal.SIGINT)), daemon=True).start()
    start = time.monotonic()
    with pytest.raises(isolate.ScriptInterruptedError) as info:
        fresh_pool.run_in_context("ready(); new Array(1e9).join('').length", ctx, break_on_sigint=True)
    # Stage 1 if the SIGINT lands while ready() is still being served, stage 2
    # (the kill) once the native join runs: either way the call returns promptly.
    assert info.value.stage in ("interrupt", "kill") and time.monotonic() - start < 2
    assert fresh_pool.run_in_new_context("1+1") == 2


def test_workers_inherit_no_environment_or_descriptors(tmp_path, monkeypatch):
    monkeypatch.setenv("ISOLATE_SECRET_TOKEN", "hunter2")
    leaked = open(tmp_path / "host-file", "w")
    try:
        with isolate.Pool(size=1, env={"LANG": "C.UTF-8"}) as pool:
            ctx = pool.create_context()
            stats = ctx._worker.request("stats", [])
            assert stats["env_keys"] == ["LANG"]
            # Listed from here: the confined worker cannot open /proc/self/fd itself.
            pid = ctx.worker_pid
            targets = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
            assert not [t for t in targets if "host-file" in t], targets
            assert len(targets) <= 6, targets  # stdin/out/err, its two pipe ends, at most one more
    finally:
        leaked.close()


@pytest.mark.timeout(60)
def test_large_values_both_ways_while_pipelined_do_not_deadlock(pool):
    # Requests and answers far larger than a pipe's buffer, several in flight
    # per worker: a caller blocked writing must never stop the reader draining.
    doc = {"items": [{"id": i, "name": "x" * 60, "tags": ["a", "b"]} for i in range(4000)]}
    results = list(pool.map("({count: doc.items.length, items: doc.items})",
                            ({"doc": doc} for _ in range(24)), max_in_flight=8))
    assert all(r["count"] == 4000 and r["items"][-1]["id"] == 3999 for r in results)


def test_display_errors_false_leaves_the_stack_undecorated(pool):
    ctx = pool.create_context()
    with pytest.raises(isolate.JSSyntaxError) as shown:
        pool.run_in_context("var x = ;", ctx, filename="a.js")
    assert shown.value.stack.startswith("a.js:1\nvar x = ;\n")
    with pytest.raises(isolate.JSSyntaxError) as plain:
        pool.run_in_context("var x = ;", ctx, filename="a.js", display_errors=False)
    assert plain.value.stack.startswith("SyntaxError:")
    with pytest.raises(isolate.JSSyntaxError) as plain:
        isolate.Script("var x = ;", filename="b.js", display_errors=False, pool=pool)
    assert plain.value.stack.startswith("SyntaxError:")
