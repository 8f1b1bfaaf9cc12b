"""The supervisor's guarantees, on real processes, real signals and real kills.

Control returns to the caller within timeout + grace, always; a worker's crash
costs only that worker; nothing hangs; no call is left unresolved.

Synchronisation is by events, never by sleeping: scripts call a host function
(``ready()``) once they run, and the test thread acts when it fires. Waiting
for a dead worker's replacement joins that worker's reader thread
(``isolate-reader-<pid>``), which swaps in the spare and starts the next one
before it ends. Wall-time bounds are asserted generously, where the guarantee
is about time.
"""

from __future__ import annotations

import collections
import os
import queue
import random
import re
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time

import psutil
import pytest

import isolate

# Stage 1 lands in ~1 ms, stage 2 at deadline + kill_grace_s (0.1 s): a call
# with a 100 ms timeout must be back well within half a second.
BOUND_S = 0.5
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# -- helpers -------------------------------------------------------------------

@pytest.fixture
def pool():
    with isolate.Pool(size=2, spare_workers=1) as p:
        yield p


def _ready_context(pool, **globals_):
    """A context with ``ready()``, which sets the returned Event from JS."""
    ready = threading.Event()
    ctx = pool.create_context({"ready": ready.set, **globals_})
    return ctx, ready


def _timed(fn):
    """Run ``fn``; return (exception or None, result, seconds)."""
    start = time.monotonic()
    try:
        return None, fn(), time.monotonic() - start
    except Exception as exc:  # noqa: BLE001 - the tests inspect it
        return exc, None, time.monotonic() - start


def _wait_replaced(pid: int, timeout: float = 10.0) -> None:
    """Wait until the pool has finished replacing dead worker ``pid``.

    Its reader thread fails the calls, swaps the spare in and starts the next
    worker, then ends: joining it is the event. (No public hook exists.)
    """
    for thread in threading.enumerate():
        if thread.name == f"isolate-reader-{pid}":
            thread.join(timeout)
            assert not thread.is_alive(), f"worker {pid} was not replaced within {timeout}s"


def _kill_on(event: threading.Event, pid: int, sig: int, record: dict) -> threading.Thread:
    def run():
        if event.wait(10):
            record["at"] = time.monotonic()
            os.kill(pid, sig)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _assert_serves(pool, times: int = 3) -> None:
    for _ in range(times):
        assert pool.run_in_new_context("1+1") == 2


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# -- 1-5: timeouts ---------------------------------------------------------------

@pytest.mark.timeout(30)
def test_busy_loop_is_interrupted_and_context_survives(pool):
    ctx = pool.create_context({"n": 0})
    error, _, took = _timed(lambda: pool.run_in_context("n = 1; while (true) {}", ctx, timeout=100))
    assert isinstance(error, isolate.ScriptTimeoutError), error
    assert error.stage == "interrupt" and error.code == "ERR_SCRIPT_EXECUTION_TIMEOUT"
    assert str(error) == "Script execution timed out after 100ms"
    assert took < BOUND_S, took
    # Same context, same worker, state kept as reached.
    assert pool.run_in_context("n + 1", ctx) == 2
    _assert_serves(pool)


def assert_killed_and_replaced(pool, native_op: str) -> None:
    """A script stuck in one native call the engine cannot interrupt: its worker is
    killed at timeout + grace, its contexts are lost and say why, a spare takes its place."""
    ctx = pool.create_context()
    victim = ctx.worker_pid
    before = pool.worker_pids()
    error, _, took = _timed(lambda: pool.run_in_context(native_op, ctx, timeout=100))
    assert isinstance(error, isolate.ScriptTimeoutError), error
    assert error.stage == "kill" and error.code == "ERR_SCRIPT_EXECUTION_TIMEOUT"
    assert took < BOUND_S, took
    # The killed worker's contexts are lost, and say why.
    with pytest.raises(isolate.ContextLostError, match="overran its timeout"):
        pool.run_in_context("1", ctx)
    # The very next call on the pool succeeds.
    assert pool.run_in_new_context("1+1") == 2
    _wait_replaced(victim)
    after = pool.worker_pids()
    assert len(after) == len(before) == 2
    assert victim not in after and set(after) - set(before), (before, after)
    assert not _alive(victim)
    _assert_serves(pool)


@pytest.mark.timeout(30)
def test_uninterruptible_native_op_is_killed_and_replaced(pool):
    assert_killed_and_replaced(pool, "new Array(1e9).join('').length")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("microtask_mode", [None, "afterEvaluate"])
def test_promise_job_loop_is_inside_the_timeout(pool, microtask_mode):
    opts = {} if microtask_mode is None else {"microtask_mode": microtask_mode}
    error, _, took = _timed(lambda: pool.run_in_new_context(
        "Promise.resolve().then(() => { while (true) {} })", timeout=50, **opts))
    assert isinstance(error, isolate.ScriptTimeoutError), error
    assert str(error) == "Script execution timed out after 50ms"
    assert took < BOUND_S, took
    _assert_serves(pool)


@pytest.mark.timeout(30)
def test_blocking_host_callback_does_not_hold_the_caller(pool):
    never = threading.Event()
    entered = threading.Event()

    def block():
        entered.set()
        never.wait(5)  # its own bound, so the test leaves no thread behind for long
        return 1

    try:
        ctx = pool.create_context({"block": block, "n": 0})
        error, _, took = _timed(lambda: pool.run_in_context("n = 1; block(); n = 2", ctx, timeout=100))
        assert entered.is_set()
        assert isinstance(error, isolate.ScriptTimeoutError), error
        assert took < BOUND_S, took
        # The script never got past the callback, and the context survives.
        assert ctx["n"] == 1
        assert pool.run_in_context("n + 1", ctx) == 2
        _assert_serves(pool)
    finally:
        never.set()


@pytest.mark.timeout(30)
def test_timeout_during_host_callback_is_uncatchable(pool):
    never = threading.Event()
    try:
        ctx = pool.create_context({"hostFn": lambda: never.wait(5), "caught": False, "after": False})
        error, _, took = _timed(lambda: pool.run_in_context(
            "try { hostFn() } catch (e) { caught = true } finally { after = true }; while (true) {}",
            ctx, timeout=100))
        assert isinstance(error, isolate.ScriptTimeoutError), error
        assert took < BOUND_S, took
        # Neither catch nor finally observed the stop.
        assert ctx["caught"] is False and ctx["after"] is False
        _assert_serves(pool)
    finally:
        never.set()


@pytest.mark.timeout(60)
def test_timeout_during_host_callback_is_always_a_timeout():
    # The same guarantee as the two tests above, many times over, because the
    # failure it guards against is a race: before b5a9325, ~0.25% of these calls
    # failed with ProtocolViolationError('INTERNAL: SystemError: ...') (the
    # re-delivered alarm ran while dukpy still held the first stop). Stage 2 is
    # accepted: on a loaded machine a worker may miss the 0.1 s grace.
    with isolate.Pool(size=1) as pool:
        slow = threading.Event()

        def fresh():
            return pool.create_context({"hostFn": lambda: slow.wait(0.005)})

        ctx = fresh()
        outcomes = collections.Counter()
        for _ in range(1500):
            error, _, took = _timed(lambda: pool.run_in_context("hostFn(); while (true) {}", ctx, timeout=2))
            kind = type(error).__name__ + (f"({error.stage})" if hasattr(error, "stage") else "")
            outcomes[kind] += 1
            if not isinstance(error, isolate.ScriptTimeoutError):
                break
            assert took < BOUND_S, took
            if error.stage == "kill":
                ctx = fresh()
        assert set(outcomes) <= {"ScriptTimeoutError(interrupt)", "ScriptTimeoutError(kill)"}, (
            dict(outcomes), repr(error))


@pytest.mark.timeout(120)
def test_nested_timeouts_end_only_their_own_call():
    # A host function runs an inner call with a 1 ms timeout, 300 times inside one
    # outer call. Each inner stop is the inner call's: never the outer call's. (A CI
    # run once saw the outer call end with its own "timed out after 10000ms": an
    # inner stop re-delivered while its deadline was being removed unwound into the
    # enclosing call, which then spun until its own deadline.)
    with isolate.Pool(size=1) as pool:
        inner = collections.Counter()

        def f():
            try:
                pool.run_in_new_context("while (true) {}", {}, timeout=1)
            except isolate.ScriptTimeoutError as exc:
                inner[str(exc)] += 1
            except Exception as exc:  # noqa: BLE001 (counted and asserted below)
                inner[repr(exc)] += 1
            return 1

        error, value, took = _timed(lambda: pool.run_in_new_context(
            "let k = 0; for (let j = 0; j < 300; j++) k += f(); k", {"f": f}, timeout=60_000))
        assert error is None and value == 300, (error, dict(inner))
        assert inner == {"Script execution timed out after 1ms": 300}, dict(inner)
        assert took < 50, took
        _assert_serves(pool)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("stop", ["interrupt", "timeout"])
def test_a_stop_as_a_host_call_answers_ends_the_call_and_keeps_the_worker(stop):
    # The stop lands while the worker waits for a host function's answer, while it
    # reads that answer off the pipe (a large one: several reads), or while it hands
    # it back to the engine. Each time the call ends with the stop, never with a JS
    # error the script could catch (dukpy's "Error while calling Python Function
    # (call): Unknown Error", seen once in CI), and a stopped call leaves the worker
    # serving: a stop raised between a read of the pipe and the decoding of what it
    # read dropped bytes, and the next request was read as the rest of the answer
    # (the worker hung and was killed as wedged, or the stop was lost altogether).
    answer = "x" * 2_000_000
    outcomes = collections.Counter()
    with isolate.Pool(size=1) as pool:
        for attempt in range(40):
            ready = threading.Event()
            ctx = pool.create_context({"ready": lambda: (ready.set(), answer)[1], "caught": False})
            code = "try { ready() } catch (e) { caught = String(e) } while (true) {}"
            if stop == "interrupt":
                sender = threading.Thread(target=lambda: ready.wait(30) and os.kill(os.getpid(), signal.SIGINT))
                sender.start()
                error, _, took = _timed(lambda: pool.run_in_context(code, ctx, timeout=30_000, break_on_sigint=True))
                sender.join(30)
                expected = isolate.ScriptInterruptedError
            else:
                # Deadlines spread over the host call's span (a few ms to tens of ms).
                error, _, took = _timed(lambda: pool.run_in_context(code, ctx, timeout=1 + attempt))
                expected = isolate.ScriptTimeoutError
            outcomes[f"{type(error).__name__}({getattr(error, 'stage', '')})"] += 1
            assert isinstance(error, expected), (repr(error), dict(outcomes))
            assert took < 10, took
            if error.stage == "interrupt":  # the worker stopped the script and serves on
                assert ctx["caught"] is False
        _assert_serves(pool)


@pytest.mark.timeout(60)
def test_a_nested_call_on_the_same_context_inside_a_host_call_is_stopped_in_the_engine():
    # The inner call runs while the outer one is inside a host call on the same context,
    # so the context's count of host calls in progress is not zero: a stop must still be
    # raised in the inner call's engine (counted from where the inner call began), not
    # deferred as if it landed in the outer host call (which left it to the kill).
    with isolate.Pool(size=1) as pool:
        stages = []

        def inner():
            try:
                pool.run_in_context("for (;;) {}", ctx, timeout=100)
            except isolate.ScriptTimeoutError as exc:
                stages.append(exc.stage)
            return len(stages)

        ctx = pool.create_context({"inner": inner})
        error, value, took = _timed(lambda: pool.run_in_context("inner() + inner()", ctx, timeout=30_000))
        assert error is None and value == 3, (error, stages)
        assert stages == ["interrupt", "interrupt"]
        assert took < 2 * BOUND_S, took
        _assert_serves(pool)


@pytest.mark.timeout(120)
def test_a_stop_among_host_calls_in_a_tight_loop_is_never_catchable():
    # A script that only calls a host function spends much of its time in dukpy's own
    # signal checks around each call, before the host is asked and after it answered.
    # A stop raised there became a catchable JS error ("InternalError: Failed to
    # resolve Python function call", ~1 call in 150 here) or left Python's error
    # indicator set (a SystemError from the worker's next alarm, seen in CI).
    outcomes = collections.Counter()
    with isolate.Pool(size=1) as pool:
        for attempt in range(400):
            ctx = pool.create_context({"answer": lambda: 1, "caught": False})
            error, _, took = _timed(lambda: pool.run_in_context(
                "for (;;) { try { answer() } catch (e) { caught = String(e) } }", ctx, timeout=1 + attempt % 5))
            outcomes[f"{type(error).__name__}({getattr(error, 'stage', '')})"] += 1
            assert isinstance(error, isolate.ScriptTimeoutError), (repr(error), dict(outcomes))
            assert took < BOUND_S, took
            if error.stage == "interrupt":
                assert ctx["caught"] is False, (ctx["caught"], dict(outcomes))
        _assert_serves(pool)


# -- 6: crashes from outside -------------------------------------------------------

@pytest.mark.timeout(30)
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV, signal.SIGABRT], ids=lambda s: s.name)
def test_worker_killed_from_outside_mid_call(pool, sig):
    ctx, ready = _ready_context(pool)
    victim = ctx.worker_pid
    killed = {}
    killer = _kill_on(ready, victim, sig, killed)
    error, _, _ = _timed(lambda: pool.run_in_context("ready(); while (true) {}", ctx))
    resolved = time.monotonic()
    killer.join(10)
    assert isinstance(error, isolate.WorkerCrashedError), error
    assert error.code == "ERR_WORKER_CRASHED" and error.exitcode == -sig
    assert f"{sig.name}({-sig})" in str(error) and str(victim) in str(error)
    assert resolved - killed["at"] < 1.0, resolved - killed["at"]
    with pytest.raises(isolate.ContextLostError):
        pool.run_in_context("1", ctx)
    assert pool.run_in_new_context("1+1") == 2
    _wait_replaced(victim)
    assert len(pool.worker_pids()) == 2 and victim not in pool.worker_pids()
    _assert_serves(pool)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("spare_workers", [0, 1])
def test_next_call_after_back_to_back_crashes_waits_for_the_replacement(spare_workers):
    # One worker, killed twice in a row. Without a warm spare (or with the
    # spare used up by the first kill and not yet refilled) the next call finds
    # no live worker at first: it must wait for the replacement, not fail.
    with isolate.Pool(size=1, spare_workers=spare_workers) as pool:
        for _ in range(2):
            ctx, ready = _ready_context(pool)
            killed = {}
            killer = _kill_on(ready, ctx.worker_pid, signal.SIGKILL, killed)
            with pytest.raises(isolate.WorkerCrashedError, match=r"SIGKILL\(-9\)"):
                pool.run_in_context("ready(); while (true) {}", ctx)
            killer.join(10)
            error, value, took = _timed(lambda: pool.run_in_new_context("1+1"))
            assert error is None and value == 2, error
            assert took < 5.0, took


@pytest.mark.timeout(30)
def test_call_racing_a_worker_death_is_not_told_the_pool_closed(monkeypatch):
    from isolate.supervisor import WorkerHandle

    with isolate.Pool(size=1, spare_workers=0) as pool:
        ctx = pool.create_context()
        worker = ctx._worker
        in_window, release = threading.Event(), threading.Event()
        wait_exit = WorkerHandle.wait_exit

        def slow_reap(self, timeout):
            # Holds the reader between "state = BROKEN" and "_failure = ...": what
            # a loaded machine does by itself, for a moment, now and then.
            if self is worker and not in_window.is_set():
                in_window.set()
                release.wait(10)
            return wait_exit(self, timeout)

        monkeypatch.setattr(WorkerHandle, "wait_exit", slow_reap)
        os.kill(worker.pid, signal.SIGKILL)
        assert in_window.wait(10)
        try:
            error, _, _ = _timed(lambda: pool.run_in_context("1", ctx))
        finally:
            release.set()
        assert not pool.closed
        assert isinstance(error, (isolate.WorkerCrashedError, isolate.ContextLostError)), repr(error)


@pytest.mark.timeout(30)
def test_new_context_is_not_routed_to_a_worker_that_just_died(monkeypatch):
    from isolate.supervisor import WorkerHandle

    with isolate.Pool(size=2, spare_workers=1) as pool:
        busy = pool.create_context()  # load 1 on one worker; the other has load 0
        victim = next(w for w in pool._workers if w.pid != busy.worker_pid)
        hold = threading.Event()
        lost = WorkerHandle._lost

        def late_reader(self, cause):
            # The victim's reader has not run yet: what a loaded host does for a while.
            if self is victim:
                hold.wait(10)
            return lost(self, cause)

        monkeypatch.setattr(WorkerHandle, "_lost", late_reader)
        if not hasattr(os, "pidfd_open"):
            pytest.skip("needs os.pidfd_open to wait for the exit without reaping")
        pidfd = os.pidfd_open(victim.pid)
        try:
            os.kill(victim.pid, signal.SIGKILL)
            assert select.select([pidfd], [], [], 10)[0]  # it has exited (not reaped)
            error, value, _ = _timed(lambda: pool.run_in_new_context("1+1"))
        finally:
            hold.set()
            os.close(pidfd)
        assert error is None and value == 2, repr(error)


@pytest.mark.timeout(30)
def test_a_call_answered_at_the_kill_deadline_is_reported_consistently(monkeypatch):
    from isolate.scheduler import Scheduler
    from isolate.protocol import Response

    with isolate.Pool(size=1, spare_workers=1) as pool:
        ctx = pool.create_context()
        worker = ctx._worker
        killed = threading.Event()
        kill_overrun = Scheduler._kill_overrun

        def kill_and_tell(self, *args, **kwargs):
            kill_overrun(self, *args, **kwargs)
            killed.set()

        monkeypatch.setattr(Scheduler, "_kill_overrun", kill_and_tell)
        read = worker._stream.read
        hold = threading.Event()

        def late_read():
            message = read()
            if hold.is_set() and isinstance(message, Response):
                # The answer was written in time; the reader hands it over only
                # once deadline + grace has passed (a loaded host, at the edge).
                killed.wait(5)
            return message

        worker._stream.read = late_read
        assert pool.run_in_context("1", ctx) == 1  # from here the reader reads through late_read
        hold.set()
        error, value, _ = _timed(lambda: pool.run_in_context("2", ctx, timeout=10))
        hold.clear()
        assert killed.is_set()
        if isinstance(error, isolate.ScriptTimeoutError):
            assert error.stage == "kill"  # consistent: reported killed, and the context is lost
        else:
            assert error is None and value == 2, repr(error)
            # Reported answered: then the context must have survived.
            check, result, _ = _timed(lambda: pool.run_in_context("3", ctx))
            assert check is None and result == 3, repr(check)


# -- 7: SIGINT to a host process -------------------------------------------------------

_SIGINT_HOST = textwrap.dedent("""
    import signal, sys, threading, os
    import isolate

    mode, size = sys.argv[1], int(sys.argv[2])
    pool = isolate.Pool(size=size)

    def ready():
        print("ready", flush=True)

    ctx = pool.create_context({"ready": ready})
    before = signal.getsignal(signal.SIGINT)
    try:
        pool.run_in_context("ready(); while (true) {}", ctx, break_on_sigint=(mode == "break"))
        print("returned", flush=True)
    except isolate.ScriptInterruptedError as exc:
        print("error", exc.code, flush=True)
    except KeyboardInterrupt:
        print("KeyboardInterrupt", flush=True)
    print("handler-restored", signal.getsignal(signal.SIGINT) is before, flush=True)
    if mode == "break":
        print("same-context", pool.run_in_context("1+1", ctx), flush=True)

    # A fresh context, bounded so that a hang shows as output, not as a stuck test.
    out = []
    t = threading.Thread(target=lambda: out.append(pool.run_in_new_context("1+1")), daemon=True)
    t.start()
    t.join(3)
    if t.is_alive():
        print("new-context HANG", flush=True)
        os._exit(3)
    print("new-context", out[0], flush=True)
    print("workers", len(pool.worker_pids()), flush=True)
    pool.close()
""")


def _run_sigint_host(mode: str, size: int):
    """Start the host, SIGINT it once JS runs; return (lines, returncode, stderr, seconds to first answer)."""
    proc = subprocess.Popen([sys.executable, "-c", _SIGINT_HOST, mode, str(size)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.SimpleQueue = queue.SimpleQueue()

    def pump():
        for line in proc.stdout:
            lines.put(line.strip())
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    try:
        first = lines.get(timeout=20)
        assert first == "ready", (first, proc.stderr.read() if first is None else "")
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        answer = lines.get(timeout=10)
        answered = time.monotonic() - sent
        rest = []
        while (line := lines.get(timeout=20)) is not None:
            rest.append(line)
        proc.wait(20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return [answer, *rest], proc.returncode, proc.stderr.read(), answered


@pytest.mark.timeout(60)
def test_sigint_with_break_on_sigint_interrupts_the_script():
    out, code, err, answered = _run_sigint_host("break", 1)
    assert out == ["error ERR_SCRIPT_EXECUTION_INTERRUPTED", "handler-restored True",
                   "same-context 2", "new-context 2", "workers 1"], (out, err)
    assert code == 0, err
    assert answered < 2.0, answered


@pytest.mark.timeout(60)
def test_sigint_without_break_on_sigint_is_the_hosts_and_pool_survives():
    # Workers ignore SIGINT; the host gets KeyboardInterrupt, and the pool
    # keeps both workers and serves a fresh context.
    out, code, err, answered = _run_sigint_host("nobreak", 2)
    assert out == ["KeyboardInterrupt", "handler-restored True", "new-context 2", "workers 2"], (out, err)
    assert code == 0, err
    assert answered < 2.0, answered


@pytest.mark.timeout(60)
def test_sigint_without_break_on_sigint_does_not_wedge_a_one_worker_pool():
    # The abandoned call must not keep the only worker busy forever: the next
    # call (bounded at 3 s in the host) gets an answer.
    out, code, err, answered = _run_sigint_host("nobreak", 1)
    assert out == ["KeyboardInterrupt", "handler-restored True", "new-context 2", "workers 1"], (out, err)
    assert code == 0, err
    assert answered < 2.0, answered


# -- 8: close during calls -------------------------------------------------------------

@pytest.mark.timeout(60)
def test_close_resolves_every_running_and_queued_call():
    me = psutil.Process()
    children_before = {c.pid for c in me.children()}
    pool = isolate.Pool(size=2, spare_workers=1)
    # The pool's zygote is this process's child; the workers are the zygote's.
    [zygote] = [c for c in me.children() if c.pid not in children_before]
    pool_pids = {zygote.pid} | {c.pid for c in zygote.children()}
    assert len(pool_pids) == 4  # the zygote, two workers, one spare

    started = threading.Condition()
    running = []   # contexts whose script called ready()
    calling = []   # threads about to call
    outcomes: dict[int, tuple] = {}

    def ready_of(i):
        def ready():
            with started:
                running.append(i)
                started.notify_all()
        return ready

    contexts = [pool.create_context({"ready": ready_of(i)}) for i in range(4)]
    assert len({c.worker_pid for c in contexts}) == 2  # two per worker: two run, two queue

    def call(i):
        with started:
            calling.append(i)
            started.notify_all()
        try:
            pool.run_in_context("ready(); while (true) {}", contexts[i])
            outcomes[i] = ("returned", None, time.monotonic())
        except BaseException as exc:  # noqa: BLE001
            outcomes[i] = ("raised", exc, time.monotonic())

    threads = [threading.Thread(target=call, args=(i,), daemon=True) for i in range(4)]
    for t in threads:
        t.start()
    with started:
        assert started.wait_for(lambda: len(calling) == 4 and len(running) == 2, timeout=20)
    closing = time.monotonic()
    pool.close()
    for t in threads:
        t.join(10)
    assert not any(t.is_alive() for t in threads), "a call was left unresolved"
    for i, (how, exc, at) in sorted(outcomes.items()):
        assert how == "raised" and isinstance(exc, isolate.PoolClosedError), (i, how, exc)
        assert exc.code == "ERR_ISOLATE_POOL_CLOSED"
        assert at - closing < 5.0, (i, at - closing)
    assert len(outcomes) == 4
    assert not [pid for pid in pool_pids if _alive(pid)]
    assert not [c for c in me.children() if c.pid in pool_pids]  # reaped too: no zombies
    with pytest.raises(isolate.PoolClosedError):
        pool.run_in_new_context("1+1")
    # The guarantee is about that pool: another one serves as usual.
    with isolate.Pool(size=1) as other:
        _assert_serves(other)


# -- 9: storm ---------------------------------------------------------------------------

STORM_CALLS = 2000
STORM_THREADS = 4
STORM_KILL_EVERY = 50


@pytest.mark.timeout(180)
def test_storm_of_calls_and_kills_resolves_every_call(capsys):
    rng = random.Random(1234)
    pool = isolate.Pool(size=2, spare_workers=1)
    lock = threading.Lock()
    completed = 0
    outcomes = collections.Counter()
    problems = []          # wrong results, unexpected errors
    latencies = []
    samples = collections.defaultdict(collections.Counter)  # error kind -> normalized messages
    kill_tokens: queue.SimpleQueue = queue.SimpleQueue()
    killed_pids = []
    outcomes_killer = collections.Counter()  # kill attempts that found nothing to kill
    owed = 0               # kills due (one per STORM_KILL_EVERY calls) and not yet done

    def plan(i):
        """(kind, callable, expected value) for call i."""
        if i % 200 == 7:    # uninterruptible: stage-2 kill (10 of them)
            return "timeout", lambda: pool.run_in_new_context(
                "new Array(1e9).join('').length", timeout=20), None
        if i % 20 == 3:     # interruptible: stage 1
            return "timeout", lambda: pool.run_in_new_context("while (true) {}", timeout=10), None
        if i % 5 == 1:      # a host callback in the middle
            return "ok", lambda: pool.run_in_new_context(
                "f(x) + 1", {"f": lambda v: v * 3, "x": i}), 3 * i + 1
        return "ok", lambda: pool.run_in_new_context(f"[{i}, {i} * 2]"), [i, 2 * i]

    def caller(indices):
        nonlocal completed, owed
        for i in indices:
            kind, fn, expected = plan(i)
            error, value, took = _timed(fn)
            with lock:
                latencies.append(took)
                if error is None:
                    outcomes["ok"] += 1
                    if kind != "ok" or value != expected:
                        problems.append((i, kind, "wrong result", value))
                elif isinstance(error, isolate.ScriptTimeoutError):
                    outcomes[f"ScriptTimeoutError({error.stage})"] += 1
                    if kind != "timeout":
                        problems.append((i, kind, error))
                elif isinstance(error, isolate.ContextLostError):
                    outcomes["ContextLostError"] += 1
                elif isinstance(error, isolate.WorkerCrashedError):
                    outcomes["WorkerCrashedError" + (
                        "(no live worker)" if "no live worker" in str(error) else "")] += 1
                elif isinstance(error, isolate.PoolClosedError) and not pool.closed:
                    # Known bug, pinned by test_call_racing_a_worker_death_is_not_told_the_pool_closed:
                    # a call that reaches a worker in the instant it is found dead. Rare
                    # (seen about once per storm on a loaded 2-core machine); counted apart.
                    outcomes["PoolClosedError(pool open: known bug)"] += 1
                else:
                    outcomes[type(error).__name__] += 1
                    problems.append((i, kind, error))
                if error is not None:
                    samples[type(error).__name__][re.sub(r"\d+", "N", str(error))[:160]] += 1
                completed += 1
                if completed % STORM_KILL_EVERY == 0:
                    owed += 1
                if owed:  # a kill that found no live worker is retried after the next call
                    kill_tokens.put(True)

    def killer():
        nonlocal owed
        while kill_tokens.get():
            with lock:
                if not owed:
                    continue
            pids = pool.worker_pids()
            if not pids:
                outcomes_killer["no live pid"] += 1
                continue
            pid = rng.choice(pids)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                outcomes_killer["already gone"] += 1
                continue
            killed_pids.append(pid)
            with lock:
                owed -= 1

    start = time.monotonic()
    try:
        kill_thread = threading.Thread(target=killer, daemon=True)
        kill_thread.start()
        callers = [threading.Thread(target=caller, args=(range(t, STORM_CALLS, STORM_THREADS),), daemon=True)
                   for t in range(STORM_THREADS)]
        for t in callers:
            t.start()
        for t in callers:
            t.join(max(1.0, 150 - (time.monotonic() - start)))
        kill_tokens.put(False)
        kill_thread.join(10)
        elapsed = time.monotonic() - start

        resolved = sum(outcomes.values())
        lost = STORM_CALLS - resolved
        errors = {k: v for k, v in sorted(outcomes.items()) if k != "ok"}
        with capsys.disabled():  # the figures belong in every run's output, CI's included
            print(f"\nstorm: {STORM_CALLS} calls from {STORM_THREADS} threads on Pool(size=2) in "
                  f"{elapsed:.1f}s; kills {len(killed_pids)} (attempts retried: {dict(outcomes_killer) or 0}); "
                  f"resolved ok {outcomes['ok']}; with error {sum(errors.values())} {errors}; lost {lost}; "
                  f"max latency {max(latencies, default=0):.2f}s", flush=True)
            for kind, messages in sorted(samples.items()):
                for message, n in messages.most_common(4):
                    print(f"  {n:5d} {kind}: {message}", flush=True)

        assert lost == 0 and not any(t.is_alive() for t in callers), "calls left unresolved"
        assert not problems, problems[:10]
        # Every kill was done, but perhaps the one due after the very last call.
        assert len(killed_pids) >= STORM_CALLS // STORM_KILL_EVERY - 1, outcomes_killer
        assert max(latencies) < 10.0

        for pid in killed_pids:
            _wait_replaced(pid)
        _assert_serves(pool, 5)
        pids = pool.worker_pids()
        assert len(pids) == 2 and not set(pids) & set(killed_pids), pids
        zombies = [c.pid for c in psutil.Process().children() if c.status() == psutil.STATUS_ZOMBIE]
        assert not zombies, zombies
    finally:
        pool.close()
