"""Futures, asyncio, streaming map and job records on real workers."""

import asyncio
import concurrent.futures as cf
import gc
import itertools
import threading
import time

import psutil
import pytest

import isolate

pytestmark = pytest.mark.timeout(120)


def test_submit_returns_a_standard_future(pool):
    future = pool.submit("x * 2", {"x": 21})
    assert isinstance(future, cf.Future) and isinstance(future, isolate.Future)
    assert future.result(10) == 42
    failing = pool.submit("throw new TypeError('nope')")
    assert isinstance(failing.exception(10), isolate.JSTypeError)
    with pytest.raises(isolate.JSTypeError):
        failing.result()


def test_futures_work_with_wait_and_as_completed(pool):
    futures = [pool.submit("i * i", {"i": i}) for i in range(20)]
    done, not_done = cf.wait(futures, timeout=30)
    assert not not_done
    assert sorted(f.result() for f in cf.as_completed(futures)) == [i * i for i in range(20)]


def test_submit_a_script_keeps_its_filename(pool):
    script = isolate.Script("throw new Error('from script')", filename="job.js")
    err = pool.submit(script).exception(10)
    assert "job.js:1" in err.stack


def test_cancel_a_running_future_stops_the_call_and_resolves_it():
    with isolate.Pool(size=1) as pool:
        started = threading.Event()
        future = pool.submit("started(); while (true) {}", {"started": started.set})
        assert started.wait(10)
        t0 = time.monotonic()
        assert future.cancel()
        assert future.cancelled() and future.done()
        with pytest.raises(cf.CancelledError):
            future.result(0)
        assert time.monotonic() - t0 < 1
        assert pool.run_in_new_context("1+1") == 2  # the worker was freed, not wedged


def test_cancel_a_queued_future(pool):
    gate = threading.Event()
    blockers = [pool.submit("wait()", {"wait": lambda: gate.wait(10)}) for _ in range(2 * pool.size)]
    queued = pool.submit("1")
    assert queued.cancel() and queued.cancelled()
    gate.set()
    for b in blockers:
        b.result(10)


def test_asyncio_awaits_without_blocking_the_loop(pool):
    async def main():
        ticks = 0

        async def ticker():
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.001)

        t = asyncio.ensure_future(ticker())
        value = await pool.arun_in_new_context("var t = Date.now(); while (Date.now() - t < 200) {}; 7")
        t.cancel()
        ctx = pool.create_context({"a": 1})
        other = await pool.arun_in_context("a + 1", ctx)
        this = await pool.arun_in_this_context("typeof globalThis")
        fn = pool.run_in_context("(function (x) { return x * 3 })", ctx)
        tripled = await pool.acall(fn, 5)
        return value, ticks, other, this, tripled

    value, ticks, other, this, tripled = asyncio.run(main())
    assert (value, other, this, tripled) == (7, 2, "object", 15)
    assert ticks > 20  # the loop kept running during the 200 ms script


def test_asyncio_cancellation_stops_the_script():
    with isolate.Pool(size=1) as pool:
        async def main():
            started = asyncio.Event()
            loop = asyncio.get_running_loop()
            task = asyncio.ensure_future(pool.arun_in_new_context(
                "started(); while (true) {}", {"started": lambda: loop.call_soon_threadsafe(started.set)}))
            await asyncio.wait_for(started.wait(), 10)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            return await pool.arun_in_new_context("2+2")

        assert asyncio.run(main()) == 4


def test_map_ordered_and_unordered(pool):
    assert list(pool.map("n + 1", ({"n": i} for i in range(50)))) == list(range(1, 51))
    assert sorted(pool.map("n + 1", ({"n": i} for i in range(50)), ordered=False)) == list(range(1, 51))
    with pytest.raises(isolate.JSError, match="bad 3"):
        list(pool.map("if (n === 3) throw new Error('bad 3'); n", ({"n": i} for i in range(10))))


def test_map_applies_back_pressure(pool):
    consumed = itertools.count()

    def inputs():
        for i in range(1000):
            next(consumed)
            yield {"n": i}

    it = pool.map("n", inputs(), max_in_flight=4)
    assert next(it) == 0
    # Only what fits in flight was read from the input, not the whole of it.
    assert next(consumed) <= 6
    it.close()


def test_map_timeout_is_per_script(pool):
    with pytest.raises(isolate.ScriptTimeoutError):
        list(pool.map("while (true) {}", [{}], timeout=50))


def test_run_batch_records():
    with isolate.Pool(size=2) as pool:
        jobs = [
            {"id": "ok", "code": "[1, 2].map(x => x * 2)"},
            {"id": "throws", "code": "throw new RangeError('r')"},
            {"id": "loops", "code": "while (true) {}"},
            {"id": "bomb", "code": "const a = []; for (;;) a.push(new Array(1e5).fill(1))"},
            {"id": "no-code"},
            "not a job",
        ]
        # A generous timeout: on a loaded machine filling 32 MB can take a while.
        records = {str(r["id"]): r for r in pool.run_batch(jobs, timeout=1500, memory_limit="32MB")}
    assert records["ok"]["status"] == "ok" and records["ok"]["value"] == [2, 4]
    assert records["throws"]["status"] == "error" and records["throws"]["error"]["name"] == "RangeError"
    assert records["loops"]["status"] == "timeout"
    assert records["bomb"]["status"] == "memory"
    assert records["no-code"]["status"] == "invalid" and records["None"]["status"] == "invalid"
    ok = records["ok"]
    assert ok["wall_ms"] > 0 and ok["cpu_ms"] >= 0 and ok["memory"] > 0 and ok["pid"] > 0


def test_run_batch_with_a_script_and_retries_for_crashes():
    with isolate.Pool(size=2) as pool:
        script = isolate.Script("price * qty", filename="order.js")
        records = list(pool.run_batch(({"id": i, "context": {"price": i, "qty": 2}} for i in range(20)),
                                      script=script, ordered=True))
        assert [r["value"] for r in records] == [2 * i for i in range(20)]

        def crash_once_then(pool_, state):
            def die():
                import os
                import signal

                if state["crashes_left"] > 0:
                    state["crashes_left"] -= 1
                    for pid in pool_.worker_pids():
                        os.kill(pid, signal.SIGKILL)
                return "survived"
            return die

        state = {"crashes_left": 1}
        job = {"id": "c", "code": "die()", "context": {"die": crash_once_then(pool, state)}}
        [first] = pool.run_batch([job])
        assert first["status"] == "crashed" and "SIGKILL" in first["error"]["message"]
        state["crashes_left"] = 1
        [second] = pool.run_batch([job], retries=1)
        assert second["status"] == "ok" and second["value"] == "survived" and second["retried"] == 1


@pytest.mark.timeout(600)
def test_map_over_25k_inputs_keeps_host_memory_bounded(capsys):
    # 25,000 (was 100,000: 80 s of the CI budget); a map that kept every input,
    # future or result would grow by tens of MB here, the bound is 20 MB.
    with isolate.Pool() as pool:
        process = psutil.Process()
        it = pool.map("x + 1", ({"x": i} for i in range(25_000)))
        for _ in itertools.islice(it, 2000):  # warm up: threads, caches, allocator arenas
            pass
        gc.collect()
        baseline = process.memory_info().rss
        count = 2000
        peak = baseline
        for value in it:
            count += 1
            if count % 5000 == 0:
                peak = max(peak, process.memory_info().rss)
        peak = max(peak, process.memory_info().rss)
    assert count == 25_000
    growth = peak - baseline
    with capsys.disabled():
        print(f"\nmap over 25,000 inputs: host RSS growth {growth / 1e6:.1f} MB")
    assert growth < 20 * 1024 * 1024
