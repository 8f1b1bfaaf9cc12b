"""asyncio as a first-class host: coroutines, async with, async for, and a loop that never waits."""

import asyncio
import concurrent.futures as cf
import sys
import threading
import time

import pytest

import isolate

pytestmark = pytest.mark.timeout(120)

# How long a host callable waits for the event loop to run something for it. If the loop
# were blocked by the call that runs the script, it would wait this long and fail.
LOOP_BOUND_S = 20


def _loop_runs(loop):
    """A host callable that returns only after the event loop has run a coroutine for it:
    the script that calls it completes only if the loop is free while the script runs."""
    def needs_the_loop(x=0):
        async def tick():
            await asyncio.sleep(0)
            return x + 1
        return asyncio.run_coroutine_threadsafe(tick(), loop).result(LOOP_BOUND_S)
    return needs_the_loop


@pytest.fixture(scope="module")
def pool():
    with isolate.Pool(size=2) as p:
        yield p


def test_a_twins_are_accepted_by_create_task_and_taskgroup(pool):
    ctx = pool.create_context({"a": 1})
    fn = pool.run_in_context("(function triple(x) { return x * 3 })", ctx)

    async def main():
        loop = asyncio.get_running_loop()
        tasks = [
            asyncio.create_task(pool.arun_in_new_context("x + 1", {"x": 1})),
            asyncio.create_task(pool.arun_in_context("a + 1", ctx)),
            asyncio.create_task(pool.arun_in_this_context("typeof globalThis")),
            asyncio.create_task(pool.acall(fn, 5)),
            asyncio.ensure_future(pool.arun_in_new_context("6")),
            loop.create_task(pool.arun_in_new_context("7")),
        ]
        results = [await t for t in tasks]
        if sys.version_info >= (3, 11):
            async with asyncio.TaskGroup() as group:
                grouped = [group.create_task(pool.arun_in_new_context(f"{i} * 2")) for i in range(4)]
            results.append([t.result() for t in grouped])
        results.append(await asyncio.gather(pool.arun_in_new_context("8"), pool.acall(fn, 3)))
        return results

    results = asyncio.run(main())
    assert results[:6] == [2, 2, "object", 15, 6, 7]
    if sys.version_info >= (3, 11):
        assert results[6] == [0, 2, 4, 6]
    assert results[-1] == [8, 9]


def test_a_twins_are_still_futures_for_threads(pool):
    future = pool.arun_in_new_context("21 * 2")
    assert isinstance(future, isolate.Future) and isinstance(future, cf.Future)
    assert isinstance(future, isolate.AsyncFuture)
    assert future.result(30) == 42
    assert cf.wait([pool.arun_in_new_context("1")], timeout=30).done


def test_module_level_async_twins():
    ctx = isolate.create_context({"n": 2})

    async def main():
        loop = asyncio.get_running_loop()
        new = asyncio.create_task(isolate.arun_in_new_context("n * 10", {"n": 4}))
        here = await isolate.arun_in_context("n += 1; n", ctx)
        this = await isolate.arun_in_this_context("globalThis.seen = (globalThis.seen || 0) + 1; seen")
        looped = await isolate.arun_in_new_context("f(1)", {"f": _loop_runs(loop)})
        return await new, here, this, looped

    new, here, this, looped = asyncio.run(main())
    assert (new, here, looped) == (40, 3, 2) and this >= 1
    assert ctx["n"] == 3


def test_async_with_and_aclose():
    async def main():
        async with isolate.Pool(size=1) as pool:
            assert await pool.arun_in_new_context("1 + 1") == 2
            pids = pool.worker_pids()
        assert pool.closed
        other = isolate.Pool(size=1)
        await other.aclose()
        await other.aclose()   # idempotent
        return pool, other, pids

    pool, other, pids = asyncio.run(main())
    assert pool.closed and other.closed
    with pytest.raises(isolate.PoolClosedError):
        pool.arun_in_new_context("1")
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            import os
            os.kill(pid, 0)


def test_no_call_blocks_the_event_loop(pool):
    """Every script here calls back into Python for something only the event loop can
    give; so each call completes only if the loop kept running while its script ran."""
    ctx = pool.create_context({})

    async def main():
        loop = asyncio.get_running_loop()
        needs_loop = _loop_runs(loop)
        ctx["needs_loop"] = needs_loop
        fn = pool.run_in_context("(function (x) { return needs_loop(x) })", ctx)
        pool.run_in_this_context("1")  # the main context exists; its globals get the callable
        pool.main_context["needs_loop"] = needs_loop
        async with asyncio.timeout(60) if hasattr(asyncio, "timeout") else _nothing():
            results = [
                await pool.arun_in_new_context("needs_loop(1)", {"needs_loop": needs_loop}),
                await pool.arun_in_context("needs_loop(2)", ctx),
                await pool.arun_in_this_context("needs_loop(3)"),
                await pool.acall(fn, 4),
                [v async for v in pool.amap("needs_loop(n)", ({"n": i, "needs_loop": needs_loop}
                                                              for i in range(6)))],
                [r["value"] async for r in pool.arun_batch(
                    [{"id": i, "code": f"{i} * 2"} for i in range(6)], ordered=True)],
            ]
        return results

    results = asyncio.run(main())
    assert results == [2, 3, 4, 5, [1, 2, 3, 4, 5, 6], [0, 2, 4, 6, 8, 10]]


class _nothing:
    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return False


def test_loop_lag_probe_while_scripts_run(pool):
    """A probe ticks every 5 ms while slow scripts run through every async entry point:
    the longest gap between ticks stays well under the length of one script."""
    busy_ms = 1500
    busy = f"var t = Date.now(); while (Date.now() - t < {busy_ms}) {{}}; 1"
    ctx = pool.create_context({})
    fn = pool.run_in_context(f"(function () {{ {busy} }})", ctx)

    async def main():
        gaps = []
        stop = asyncio.Event()

        async def probe():
            last = time.monotonic()
            while not stop.is_set():
                await asyncio.sleep(0.005)
                now = time.monotonic()
                gaps.append(now - last)
                last = now

        probing = asyncio.create_task(probe())
        await asyncio.gather(
            pool.arun_in_new_context(busy), pool.arun_in_context(busy, ctx), pool.acall(fn),
            pool.arun_in_this_context(busy))
        assert [v async for v in pool.amap(busy, [{}, {}])] == [1, 1]
        async for record in pool.arun_batch([{"id": 1, "code": busy}]):
            assert record["status"] == "ok"
        # Pool() starts its workers before it returns: in a running loop, on a thread.
        closing = await asyncio.to_thread(isolate.Pool, size=1)
        await closing.aclose()
        stop.set()
        await probing
        return gaps

    gaps = asyncio.run(main())
    assert len(gaps) > 50
    assert max(gaps) < busy_ms / 1000 * 0.66, f"the event loop stalled for {max(gaps):.3f} s"


def test_a_call_for_an_idle_worker_is_not_held_up_by_calls_waiting_on_a_busy_one(pool):
    """Many awaited calls queue for one busy worker; a call for the other worker, made
    after them, completes while they all still wait."""
    gate = threading.Event()
    busy_ctx = pool.create_context({"wait": lambda: gate.wait(60)})
    idle_ctx = None
    for _ in range(10):
        candidate = pool.create_context({})
        if candidate.worker_pid != busy_ctx.worker_pid:
            idle_ctx = candidate
            break
    assert idle_ctx is not None, "no context landed on the second worker"

    async def main():
        waiting = [asyncio.ensure_future(pool.arun_in_context("wait(); 1", busy_ctx))
                   for _ in range(4 * pool.size + 4)]
        try:
            value = await asyncio.wait_for(pool.arun_in_context("'free'", idle_ctx), 20)
            assert not any(t.done() for t in waiting)
        finally:
            gate.set()
        assert await asyncio.gather(*waiting) == [1] * len(waiting)
        return value

    assert asyncio.run(main()) == "free"


def test_cancelling_a_task_stops_its_script():
    with isolate.Pool(size=1) as pool:
        async def main():
            loop = asyncio.get_running_loop()
            started = asyncio.Event()
            ctx = pool.create_context({"started": lambda: loop.call_soon_threadsafe(started.set) and None})
            task = asyncio.create_task(pool.arun_in_context("started(); while (true) {}", ctx))
            await asyncio.wait_for(started.wait(), 20)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # The worker is free again: the endless script was stopped, not left running.
            return await asyncio.wait_for(pool.arun_in_new_context("2 + 2"), 20)

        assert asyncio.run(main()) == 4


def test_leaving_async_for_early_stops_the_scripts_in_flight():
    with isolate.Pool(size=1) as pool:
        async def main():
            seen = []
            source = [{"n": 0}] + [{"n": i} for i in range(1, 6)]
            async for value in pool.amap("if (n > 0) { while (true) {} }; n", source, max_in_flight=3):
                seen.append(value)
                break
            # Endless scripts were in flight; the single worker answers again only if they were stopped.
            after = await asyncio.wait_for(pool.arun_in_new_context("'after'"), 20)
            records = pool.arun_batch([{"id": 1, "code": "while (true) {}"}, {"id": 2, "code": "2"}])
            task = asyncio.create_task(records.__anext__())
            await asyncio.sleep(0.2)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            await records.aclose()
            again = await asyncio.wait_for(pool.arun_in_new_context("'again'"), 20)
            return seen, after, again

        assert asyncio.run(main()) == ([0], "after", "again")


def test_amap_checks_its_arguments_at_the_call(pool):
    with pytest.raises(isolate.OutOfRangeError):
        pool.amap("1", [{}], max_in_flight=0)
    with pytest.raises(isolate.InvalidArgTypeError):
        pool.amap("1", 5)
    with pytest.raises(isolate.InvalidArgTypeError):
        pool.arun_batch([], retries="x")


def test_a_call_left_running_does_not_hold_the_interpreter_exit(tmp_path):
    """The a* threads are daemons: a script still running at exit is ended with its pool."""
    import subprocess

    script = tmp_path / "leave_running.py"
    script.write_text(
        "import threading, isolate\n"
        "pool = isolate.Pool(size=1)\n"
        "started = threading.Event()\n"
        "ctx = pool.create_context({'started': lambda: started.set()})\n"
        "future = pool.arun_in_context('started(); while (true) {}', ctx)\n"
        "assert started.wait(30)\n"
        "print('leaving', flush=True)\n")
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "leaving\n"


def test_one_call_driven_by_two_tasks_is_refused_not_answered_with_none(pool):
    async def main():
        call = pool.arun_in_new_context("6 * 7")
        first = asyncio.create_task(call)
        second = asyncio.create_task(call)
        awaited = await call          # a plain await gets its own view of the result
        with pytest.raises(RuntimeError, match="another task"):
            await second
        return await first, awaited

    assert asyncio.run(main()) == (42, 42)
