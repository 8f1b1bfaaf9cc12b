"""Fresh-context jobs sent in groups (isolate.jobgroups, workers/jobs.py): each job
keeps its own timeout, a lost worker loses no job and runs none twice, cancelling
and closing early work, and a huge input stays bounded."""

from __future__ import annotations

import os
import signal
import threading

import pytest

import isolate

pytestmark = pytest.mark.timeout(120)


def _jobs(n, start=0, code="{i} + 1"):
    return [{"id": i, "code": code.format(i=i)} for i in range(start, start + n)]


def test_a_job_looping_forever_in_a_group_times_out_alone_and_the_rest_complete():
    jobs = _jobs(20)
    jobs[7] = {"id": 7, "code": "while (true) {}"}
    jobs[13] = {"id": 13, "code": "for (;;) {}"}
    with isolate.Pool(size=1) as pool:
        pid = pool.worker_pids()[0]
        records = list(pool.run_batch(jobs, timeout=200, ordered=True))
        assert [r["id"] for r in records] == list(range(20))
        for r in records:
            if r["id"] in (7, 13):
                assert r["status"] == "timeout", r
            else:
                assert r["status"] == "ok" and r["value"] == r["id"] + 1, r
        assert pool.worker_pids() == [pid]  # stopped by the interrupt: no kill needed


def test_map_in_groups_mirrors_each_sandbox_and_keeps_jobs_apart():
    objs = [{"x": i} for i in range(100)]
    with isolate.Pool(size=2) as pool:
        # Every job sees a pristine global: nothing of the job before it (same worker).
        code = ("var seen = typeof leaked + ':' + (Object.prototype.polluted === undefined) + ':' "
                "+ (Symbol.for('k').description); globalThis.leaked = x; "
                "Object.prototype.polluted = 1; Array.prototype.push = null; seen")
        values = list(pool.map(code, objs))
    assert values == ["undefined:true:k"] * 100
    assert all(o["leaked"] == i for i, o in enumerate(objs))


def test_a_job_after_one_that_threw_or_timed_out_in_the_same_group_sees_nothing_of_it():
    jobs = [{"id": 0, "code": "globalThis.a = 1; Object.prototype.b = 2; throw new Error('x')"},
            {"id": 1, "code": "globalThis.a = 1; Object.prototype.b = 2; while (true) {}"},
            {"id": 2, "code": "typeof a + ':' + ({}).b"}]
    with isolate.Pool(size=1) as pool:
        records = list(pool.run_batch(jobs, timeout=200, ordered=True))
    assert [r["status"] for r in records] == ["error", "timeout", "ok"]
    assert records[2]["value"] == "undefined:undefined"


@pytest.mark.parametrize("rounds", [3])
def test_sigkill_storm_mid_batch_every_job_resolves_once_and_the_pool_stays_usable(rounds):
    n = 3000
    with isolate.Pool(size=2) as pool:
        seen: dict = {}
        killed = 0
        for r in pool.run_batch(_jobs(n, code="let s = 0; for (let k = 0; k < 2000; k++) s += k; {i} + 1")):
            assert r["id"] not in seen, r  # one record per job
            seen[r["id"]] = r
            if len(seen) % 700 == 0 and killed < rounds:
                os.kill(pool.worker_pids()[killed % 2], signal.SIGKILL)
                killed += 1
        assert sorted(seen) == list(range(n))
        crashed = [r for r in seen.values() if r["status"] == "crashed"]
        assert len(crashed) <= killed  # at most the job each kill interrupted
        assert all(r["value"] == r["id"] + 1 for r in seen.values() if r["status"] == "ok")
        assert all(r["status"] in ("ok", "crashed") for r in seen.values())
        assert list(pool.map("x * 2", [{"x": 1}, {"x": 2}])) == [2, 4]


def test_sigstop_mid_group_with_a_timeout_kills_the_worker_and_the_rest_run_elsewhere():
    with isolate.Pool(size=2) as pool:
        stopped = []
        records = {}
        for r in pool.run_batch(_jobs(400), timeout=300):
            records[r["id"]] = r
            if len(records) == 50:
                pid = pool.worker_pids()[0]
                os.kill(pid, signal.SIGSTOP)
                stopped.append(pid)
        assert sorted(records) == list(range(400))
        bad = [r for r in records.values() if r["status"] != "ok"]
        # The job it was running (if any) is the only one lost: to the kill ladder.
        assert len(bad) <= 1 and all(r["status"] in ("timeout", "crashed") for r in bad), bad
        assert stopped[0] not in pool.worker_pids()
        assert [r["status"] for r in pool.run_batch(_jobs(5))] == ["ok"] * 5


def test_closing_a_map_early_cancels_the_queued_jobs_and_the_pool_goes_on():
    with isolate.Pool(size=2) as pool:
        taken = []

        def objs():
            for i in range(100_000):
                taken.append(i)
                yield {"x": i}

        values = pool.map("x", objs())
        assert [next(values) for _ in range(10)] == list(range(10))
        values.close()
        assert len(taken) < 1000  # a bounded window, not the input
        assert list(pool.map("x + 1", [{"x": 1}])) == [2]


def test_a_huge_batch_is_read_lazily_with_a_bounded_window():
    window = []
    with isolate.Pool(size=2) as pool:
        taken = 0

        def jobs():
            nonlocal taken
            for i in range(20_000):
                taken += 1
                yield {"id": i, "code": f"{i}"}

        done = 0
        for r in pool.run_batch(jobs(), max_in_flight=64):
            assert r["status"] == "ok"
            done += 1
            window.append(taken - done)
        assert done == 20_000
    assert max(window) <= 64


def test_a_memory_limit_holds_per_job_in_a_group():
    jobs = [{"id": 0, "code": "'a'.repeat(1 << 20).length"},
            {"id": 1, "code": "let a = []; while (true) a.push(new Array(1e5).fill(1))"},
            {"id": 2, "code": "'b'.repeat(1 << 20).length"}]
    with isolate.Pool(size=1) as pool:
        records = list(pool.run_batch(jobs, memory_limit="8MB", timeout=5000, ordered=True))
    assert [r["status"] for r in records] == ["ok", "memory", "ok"]


def test_closing_a_map_stops_a_job_of_its_group_that_runs_forever_without_a_timeout():
    with isolate.Pool(size=1) as pool:
        pid = pool.worker_pids()[0]
        values = pool.map("while (x) {}; x", [{"x": 0}, {"x": 1}, {"x": 0}, {"x": 1}, {"x": 1}])
        assert next(values) == 0
        values.close()  # jobs that loop, untimed: each is stopped (running) or never run (queued)
        assert list(pool.map("2", [None])) == [2]  # (would wait forever behind the loop)
        # (Each is interrupted; one whose stop lands while its context is being
        # set up, outside the engine, is killed after the grace: the kill ladder.)
        assert len(pool.worker_pids()) == 1 and pid > 0

