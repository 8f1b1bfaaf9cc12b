"""Attack: kills from outside while calls run and wait — the call lifecycle must hold.

Every job has exactly one outcome; a job that never started is never
reported as crashed (it runs elsewhere); nothing internal reaches a caller;
every call returns within its bound; the pool serves afterwards.

Real workers, real signals (SIGKILL, SIGSTOP, SIGSEGV). Synchronisation is by
events (a script calls ``ready()`` once it runs), never by sleeping.
"""

from __future__ import annotations

import collections
import concurrent.futures
import os
import random
import signal
import threading
import time

import psutil
import pytest

import isolate

HEAVY = "new Array(1e8).join('x').length"       # native: ignores interrupts, needs the kill
PUBLIC = (isolate.IsolateError,)


def _is_public(exc: BaseException) -> bool:
    """Only isolate's public error classes (never an internal one) may reach a caller."""
    return isinstance(exc, PUBLIC) and type(exc).__module__ == "isolate.errors"


def _wait_serving(pool, attempts: int = 50) -> None:
    for _ in range(attempts):
        try:
            assert pool.run_in_new_context("1+1", timeout=5000) == 2
            return
        except isolate.WorkerCrashedError:
            continue
    raise AssertionError("the pool does not serve")


# -- jobs queued behind a killed script ---------------------------------------------------

@pytest.mark.timeout(60)
def test_run_batch_never_reports_a_queued_job_as_crashed():
    # Every 4th job overruns its timeout in native code, so its worker is
    # killed; the trivial jobs queued meanwhile must all run (elsewhere).
    jobs = [{"id": i, "code": HEAVY if i % 4 == 0 else f"{i} + 1"} for i in range(40)]
    with isolate.Pool(size=2) as pool:
        start = time.monotonic()
        records = list(pool.run_batch(jobs, timeout=100))
        took = time.monotonic() - start
    assert sorted(r["id"] for r in records) == list(range(40))  # exactly one record each
    for r in records:
        if r["id"] % 4 == 0:
            assert r["status"] == "timeout", r
        else:
            assert r["status"] == "ok" and r["value"] == r["id"] + 1, r
    assert took < 20, took


@pytest.mark.timeout(60)
def test_map_and_submit_never_report_a_queued_call_as_crashed():
    with isolate.Pool(size=2) as pool:
        futures = [pool.submit(HEAVY if i % 3 == 0 else "x * 2", {"x": i}, timeout=100) for i in range(30)]
        outcomes = []
        for i, f in enumerate(futures):
            try:
                outcomes.append(("ok", f.result(timeout=30)))
            except isolate.ScriptTimeoutError as exc:
                outcomes.append(("timeout", exc.stage))
        for i, (kind, value) in enumerate(outcomes):
            if i % 3:
                assert (kind, value) == ("ok", 2 * i)
            else:
                assert kind == "timeout" and value in ("kill", "queued"), (i, kind, value)
        values = list(pool.map("x + 1", ({"x": i} for i in range(20)), timeout=1000))
        assert values == [i + 1 for i in range(20)]


@pytest.mark.timeout(60)
def test_threaded_run_in_new_context_raises_only_public_errors():
    # The scenario that let an internal RerouteCall escape: 8 threads, two
    # workers, half the calls native-heavy. Trivial calls either run or give
    # up waiting (stage "queued", bounded by their timeout); never anything else.
    outcomes = collections.Counter()
    problems = []
    lock = threading.Lock()
    with isolate.Pool(size=2) as pool:
        def run(k):
            for i in range(10):
                heavy = (k + i) % 2 == 1
                start = time.monotonic()
                try:
                    value = pool.run_in_new_context(HEAVY if heavy else "1+1", timeout=100)
                    key = "ok"
                    if heavy or value != 2:
                        problems.append((k, i, "unexpected value", value))
                except Exception as exc:  # noqa: BLE001 - the test inspects it
                    key = f"{type(exc).__name__}({getattr(exc, 'stage', '')})"
                    if not _is_public(exc) or not isinstance(exc, isolate.ScriptTimeoutError):
                        problems.append((k, i, repr(exc)))
                took = time.monotonic() - start
                with lock:
                    outcomes[key] += 1
                    # queue bound (100) + timeout (100) + grace (100) + scheduling slack
                    if took > 2.0:
                        problems.append((k, i, "too slow", took))

        threads = [threading.Thread(target=run, args=(k,)) for k in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(50)
        assert not any(t.is_alive() for t in threads)
        _wait_serving(pool)
    assert not problems, (problems[:5], outcomes)
    assert sum(outcomes.values()) == 80


@pytest.mark.timeout(60)
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV])
def test_calls_queued_behind_a_crash_run_elsewhere(sig):
    # One worker runs a script that waits to be killed; context-less calls
    # queue behind it. The running call crashes (naming the signal); every
    # queued one runs on the replacement.
    with isolate.Pool(size=1, spare_workers=1) as pool:
        ready = threading.Event()
        victim = pool.submit("ready(); while (true) {}", {"ready": ready.set})
        assert ready.wait(10)
        pid = pool.worker_pids()[0]
        queued = [pool.submit("n * 3", {"n": i}) for i in range(12)]
        os.kill(pid, sig)
        with pytest.raises(isolate.WorkerCrashedError, match=signal.Signals(sig).name):
            victim.result(timeout=10)
        assert [f.result(timeout=10) for f in queued] == [3 * i for i in range(12)]


@pytest.mark.timeout(60)
def test_sigstop_mid_call_is_killed_at_the_deadline_and_queued_calls_survive():
    with isolate.Pool(size=1, spare_workers=1) as pool:
        stopped = {}

        def stop_my_worker():
            # Called from the script: its worker waits for this answer, so the
            # SIGSTOP lands mid-call, before the script can go on.
            stopped["pid"] = ctx.worker_pid
            os.kill(ctx.worker_pid, signal.SIGSTOP)

        ctx = pool.create_context({"stop": stop_my_worker})
        running = pool.arun_in_context("stop(); 1", ctx, timeout=300)
        queued = [pool.submit("n + 1", {"n": i}) for i in range(5)]
        start = time.monotonic()
        with pytest.raises(isolate.ScriptTimeoutError) as info:
            running.result(timeout=10)
        assert info.value.stage == "kill"
        assert time.monotonic() - start < 2.0
        assert [f.result(timeout=10) for f in queued] == [1, 2, 3, 4, 5]
        assert not psutil.pid_exists(stopped["pid"]) or psutil.Process(stopped["pid"]).status() == "zombie"


@pytest.mark.timeout(60)
def test_kill_during_a_nested_host_call():
    # JS -> Python -> JS (nested) when the worker dies: the outer call fails
    # with the crash, the host callable's own nested call fails typed, and
    # nothing hangs.
    with isolate.Pool(size=1, spare_workers=1) as pool:
        in_host = threading.Event()
        release = threading.Event()
        nested_errors = []
        ctx_box = {}

        def host():
            in_host.set()
            release.wait(10)
            try:
                return ctx_box["ctx"]["value"]  # a nested request to the dead worker
            except Exception as exc:  # noqa: BLE001
                nested_errors.append(exc)
                raise

        ctx = pool.create_context({"host": host, "value": 7})
        ctx_box["ctx"] = ctx
        future = pool.arun_in_context("host() + 1", ctx, timeout=5000)
        assert in_host.wait(10)
        os.kill(ctx.worker_pid, signal.SIGKILL)
        with pytest.raises(isolate.WorkerCrashedError, match="SIGKILL"):
            future.result(timeout=10)
        release.set()
        _wait_serving(pool)


# -- storms ----------------------------------------------------------------------------------

STORM_JOBS = 600


@pytest.mark.timeout(180)
def test_kill_storm_over_batches_maps_submits_and_threads(capsys):
    """SIGKILL, SIGSTOP and SIGSEGV at random moments while four kinds of work run.

    Every job gets exactly one outcome, within its bound; errors are public
    classes and of the kinds a kill can cause; the pool serves afterwards.
    """
    rng = random.Random(20261204)
    allowed = (isolate.ScriptTimeoutError, isolate.WorkerCrashedError, isolate.ContextLostError)
    outcomes = collections.Counter()
    problems = []
    lock = threading.Lock()
    stop_killing = threading.Event()
    kills = collections.Counter()
    latencies: dict = collections.defaultdict(float)

    def job_code(i):
        kind = i % 6
        if kind == 0:
            return "n + 1", i + 1
        if kind == 1:
            return "double(n)", 2 * i          # a host call
        if kind == 2:
            return "let s = 0; for (let k = 0; k < 20000; k++) s += k; s + n - 199990000", i
        if kind == 3:
            return "new Promise(r => r(n)).then(v => v * 3)", None  # a promise job
        if kind == 4:
            return "while (true) {}", None     # interruptible: stage 1
        return HEAVY, None                     # native: stage 2

    def record(source, i, ok, value=None, exc=None, took=0.0):
        _, expected = job_code(i)
        with lock:
            if ok:
                outcomes[f"{source}:ok"] += 1
                if expected is not None and value != expected and not isinstance(value, isolate.JSPromise):
                    problems.append((source, i, "wrong value", value))
                if i % 6 in (4, 5):
                    problems.append((source, i, "an endless script returned", value))
            else:
                outcomes[f"{source}:{type(exc).__name__}"] += 1
                if not _is_public(exc) or not isinstance(exc, allowed):
                    problems.append((source, i, repr(exc)))
            # A direct call waits at most its timeout in the queue (200 ms), then
            # runs at most timeout + grace (300 ms): its bound, with slack for a
            # loaded 2-core machine. (map, submit and run_batch wait for a free
            # worker as long as it takes: the storm's own deadline bounds them.)
            if source == "thread" and took > 2.0:
                problems.append((source, i, "too slow", took))
            latencies[source] = max(latencies[source], took)

    with isolate.Pool(size=2, spare_workers=1) as pool:
        context = {"double": lambda v: 2 * v}

        def batch():
            jobs = ({"id": i, "code": job_code(i)[0], "context": {"n": i, **context}}
                    for i in range(0, STORM_JOBS, 4))
            for rec in pool.run_batch(jobs, timeout=200):
                ok = rec["status"] == "ok"
                if not ok and rec["status"] not in ("timeout", "crashed", "error"):
                    with lock:
                        problems.append(("batch", rec["id"], rec))
                if rec["status"] == "error":
                    with lock:
                        problems.append(("batch", rec["id"], "error", rec["error"]))
                with lock:
                    outcomes[f"batch:{rec['status']}"] += 1
                    seen_batch.append(rec["id"])

        seen_batch: list = []

        def mapper():
            # map raises a failed call's error at its turn: run one map per input.
            for i in range(1, STORM_JOBS, 4):
                start = time.monotonic()
                try:
                    [value] = list(pool.map(job_code(i)[0], [{"n": i, **context}], timeout=200))
                    record("map", i, True, value, took=time.monotonic() - start)
                except Exception as exc:  # noqa: BLE001
                    record("map", i, False, exc=exc, took=time.monotonic() - start)

        def submitter():
            futures = {i: pool.submit(job_code(i)[0], {"n": i, **context}, timeout=200)
                       for i in range(2, STORM_JOBS, 4)}
            for i, f in futures.items():
                try:
                    record("submit", i, True, f.result(timeout=60))
                except isolate.IsolateError as exc:  # before TimeoutError: ScriptTimeoutError is one
                    record("submit", i, False, exc=exc)
                except concurrent.futures.TimeoutError:
                    record("submit", i, False, exc=AssertionError("future never resolved"))
                except Exception as exc:  # noqa: BLE001
                    record("submit", i, False, exc=exc)

        def threaded():
            for i in range(3, STORM_JOBS, 4):
                start = time.monotonic()
                try:
                    value = pool.run_in_new_context(job_code(i)[0], {"n": i, **context}, timeout=200)
                    record("thread", i, True, value, took=time.monotonic() - start)
                except Exception as exc:  # noqa: BLE001
                    record("thread", i, False, exc=exc, took=time.monotonic() - start)

        def killer():
            while not stop_killing.wait(rng.uniform(0.02, 0.15)):
                pids = pool.worker_pids()
                if not pids:
                    continue
                pid = rng.choice(pids)
                sig = rng.choice([signal.SIGKILL, signal.SIGKILL, signal.SIGSTOP, signal.SIGSEGV])
                try:
                    os.kill(pid, sig)
                    kills[sig.name] += 1
                except ProcessLookupError:
                    pass

        start = time.monotonic()
        workers = [threading.Thread(target=fn) for fn in (batch, mapper, submitter, threaded)]
        kill_thread = threading.Thread(target=killer, daemon=True)
        kill_thread.start()
        for t in workers:
            t.start()
        for t in workers:
            t.join(150 - (time.monotonic() - start))
        stop_killing.set()
        kill_thread.join(5)
        hung = [t for t in workers if t.is_alive()]
        # A worker left stopped by the last SIGSTOP gets no call without a timeout
        # from here: the checks below use timeouts, so the kill ladder clears it.
        _wait_serving(pool)
        elapsed = time.monotonic() - start

    with capsys.disabled():
        print(f"\nkill storm: {STORM_JOBS} jobs in {elapsed:.1f}s, signals {dict(kills)}, "
              f"outcomes {dict(sorted(outcomes.items()))}, max latency "
              f"{ {k: round(v, 2) for k, v in latencies.items()} }", flush=True)
    assert not hung, "a caller never got control back"
    assert sorted(seen_batch) == list(range(0, STORM_JOBS, 4)), "batch records missing or repeated"
    assert sum(outcomes.values()) == STORM_JOBS
    assert not problems, problems[:8]
    assert sum(kills.values()) >= 10


@pytest.mark.timeout(60)
def test_a_call_sent_to_a_stopped_idle_worker_runs_elsewhere():
    # SIGSTOP while idle: nothing notices until a call is sent there. The
    # worker never starts it; after Limits.start_timeout_s the supervisor
    # kills the worker and the call (untimed: no other bound) runs on the spare.
    limits = isolate.Limits(start_timeout_s=0.3)
    with isolate.Pool(size=1, spare_workers=1, limits=limits) as pool:
        [pid] = pool.worker_pids()
        os.kill(pid, signal.SIGSTOP)
        start = time.monotonic()
        assert pool.run_in_new_context("6 * 7") == 42
        assert time.monotonic() - start < 0.3 + 2.0
        assert pid not in pool.worker_pids()
        # A context on a stopped worker is lost (the worker is killed), typed and bounded.
        ctx = pool.create_context()
        os.kill(ctx.worker_pid, signal.SIGSTOP)
        with pytest.raises(isolate.ContextLostError, match="before the call started"):
            pool.run_in_context("1", ctx)
        _wait_serving(pool)
