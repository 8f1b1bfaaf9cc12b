"""isolate.dask on a real LocalCluster: worker processes, real SIGKILLs, restarts and the CLI.

One cluster of two single-threaded Dask workers (the 2-core CI machine) serves
the module; the tests that must own a cluster (orphans, the CLI) start small
ones of their own.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

distributed = pytest.importorskip("distributed")

import isolate  # noqa: E402
from isolate.dask import ChunkTimeoutError, DaskPool, IsolatePoolPlugin  # noqa: E402

pytestmark = pytest.mark.timeout(120)

# Timings differ between runs; everything else in a record must match Pool's.
VOLATILE = ("wall_ms", "cpu_ms", "memory", "pid")

JOBS = [
    {"id": "ok", "code": "6 * 7"},
    {"id": "obj", "code": "({a: [1, 2n, null], d: new Date(0), s: new Set([1])})"},
    {"id": "throw", "code": "throw new TypeError('nope')"},
    {"id": "loop", "code": "while (true) {}"},
    {"id": "bomb", "code": "let a = []; while (true) a.push(new Array(1e6).fill(1.5))"},
    {"id": "no-code"},
    "not a job",
    {"id": 7, "code": "globalThis.x === undefined && typeof require"},
    {"id": "ctx", "code": "n * 2", "context": {"n": 21}},
    {"id": "bad-ctx", "code": "1", "context": [1]},
]
STATUSES = {"ok": "ok", "obj": "ok", "throw": "error", "loop": "timeout", "bomb": "memory",
            "no-code": "invalid", None: "invalid", 7: "ok", "ctx": "ok", "bad-ctx": "invalid"}


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as c:
        yield c


@pytest.fixture(scope="module")
def dpool(client):
    with DaskPool(client, spare_workers=0) as p:
        yield p


@pytest.fixture(scope="module")
def local_pool():
    with isolate.Pool(size=2, spare_workers=0) as p:
        yield p


def stable(records):
    return sorted((json.dumps({k: v for k, v in r.items() if k not in VOLATILE}, sort_keys=True, default=repr)
                   for r in records))


def quick_jobs(n, start=0):
    # A few ms each, so a batch is still running when a worker is killed.
    return [{"id": i, "code": "let t = Date.now(); while (Date.now() - t < 3) {}; i * 2", "context": {"i": i}}
            for i in range(start, start + n)]


def descendants(pid):
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


# -- what a batch returns ---------------------------------------------------------------

def test_each_status_is_a_record_and_equals_the_local_pools(dpool, local_pool):
    options = dict(timeout=1000, memory_limit="16MB")  # under load a bomb takes a while to fill 16MB
    remote = list(dpool.run_batch(JOBS, chunk_size=3, **options))
    local = list(local_pool.run_batch(JOBS, **options))
    assert {r["id"]: r["status"] for r in remote} == STATUSES
    assert len(remote) == len(JOBS)
    assert stable(remote) == stable(local)
    by_id = {r["id"]: r for r in remote}
    assert by_id["ok"]["value"] == 42 and by_id["ctx"]["value"] == 42
    assert by_id["throw"]["error"]["name"] == "TypeError"
    assert isinstance(by_id["ok"]["pid"], int) and by_id["ok"]["cpu_ms"] is not None


def test_ordered_batch_with_a_script_equals_the_local_pools(dpool, local_pool):
    script = "if (n === 3) throw new RangeError('three'); n * n"
    jobs = [{"id": i, "context": {"n": i}} for i in range(40)] + [{"id": "x", "code": "ignored"}]
    remote = list(dpool.run_batch(jobs, script=script, ordered=True, chunk_size=7, filename="sq.js"))
    local = list(local_pool.run_batch(jobs, script=script, ordered=True, filename="sq.js"))
    assert [r["id"] for r in remote] == [j["id"] for j in jobs]
    assert stable(remote) == stable(local)
    assert "sq.js:1" in remote[3]["error"]["stack"]


def test_a_script_that_does_not_compile_raises_at_the_call(dpool):
    with pytest.raises(isolate.JSSyntaxError):
        dpool.run_batch([{"id": 1}], script="let = ;")


def test_bad_arguments_raise_as_pools_do(dpool, client):
    with pytest.raises(isolate.InvalidArgTypeError):
        dpool.run_batch([], retries="1")
    with pytest.raises(isolate.InvalidArgTypeError):
        dpool.run_batch(42)
    with pytest.raises(isolate.errors.OutOfRangeError):
        dpool.run_batch([], chunk_size=0)
    with pytest.raises(isolate.InvalidArgValueError):
        DaskPool(client, sizes=2)


def test_map_and_submit_return_what_a_pool_returns(dpool, local_pool):
    objects = [{"x": i} for i in range(30)]
    assert list(dpool.map("x * 3", objects, chunk_size=4)) == list(local_pool.map("x * 3", objects))
    assert sorted(dpool.map("x", objects, ordered=False)) == list(range(30))
    assert dpool.submit("x + 1", {"x": 41}).result(30) == 42
    script = isolate.Script("throw new Error('boom')", filename="boom.js")
    err = dpool.submit(script).exception(30)
    assert isinstance(err, isolate.JSError) and "boom.js:1" in err.stack and err.value is err
    timed_out = dpool.submit("while (true) {}", timeout=100).exception(30)
    assert isinstance(timed_out, isolate.ScriptTimeoutError) and timed_out.code == "ERR_SCRIPT_EXECUTION_TIMEOUT"
    # A failed call raises when its turn comes, as Pool.map does.
    values = dpool.map("if (x === 2) throw new TypeError('two'); x", objects[:5])
    assert next(values) == 0 and next(values) == 1
    with pytest.raises(isolate.JSTypeError, match="two"):
        next(values)


def test_a_live_handle_cannot_leave_its_worker(dpool, local_pool):
    # submit/map raise; a record carries the JSON form, as the CLI writes it.
    with pytest.raises(isolate.UnsupportedError):
        dpool.submit("(function f() {})").result(30)
    [record] = dpool.run_batch([{"id": 1, "code": "({f: function f() {}, n: 1})"}])
    assert record["status"] == "ok" and record["value"] == {"f": "[Function f]", "n": 1}


def test_the_plugin_is_idempotent_and_sizes_the_pool_to_its_worker(dpool, client):
    def pool_state(dask_worker, name=dpool.plugin_name):
        pool = dask_worker.plugins[name].pool()
        return (pool.worker_pids(), pool.size, pool.worker_memory_limit, dask_worker.memory_manager.memory_limit)

    before = client.run(pool_state)
    client.register_plugin(IsolatePoolPlugin(dpool.plugin_name, dpool.pool_options), name=dpool.plugin_name)
    assert client.run(pool_state) == before  # registered again: the same pools, not new ones
    for pids, size, limit, dask_limit in before.values():
        # One thread per Dask worker: one isolate worker, capped so that it and the Dask
        # worker fit in the Dask worker's memory limit (the nanny cannot see it).
        assert size == 1 and len(pids) == 1 and limit == dask_limit // 2


def test_a_stuck_chunk_ends_at_its_deadline_as_records(dpool):
    # No job timeout: only the chunk's deadline stops the loops.
    # One isolate worker per Dask worker here: the quick job first, the second loop never starts.
    jobs = [{"id": "quick", "code": "1"}, {"id": "loop1", "code": "while (true) {}"},
            {"id": "loop2", "code": "while (true) {}"}]
    t0 = time.monotonic()
    records = {r["id"]: r for r in dpool.run_batch(jobs, chunk_size=3, chunk_timeout=1.5)}
    assert time.monotonic() - t0 < 60
    assert records["quick"]["status"] == "ok"
    for job_id in ("loop1", "loop2"):
        assert records[job_id]["status"] == "timeout"
        assert records[job_id]["error"]["name"] == "ChunkTimeoutError"
        assert records[job_id]["error"]["code"] == ChunkTimeoutError.code
    # The pool that held the loops was replaced: the workers serve the next batch.
    assert [r["status"] for r in dpool.run_batch([{"id": 1, "code": "1"}] * 4)] == ["ok"] * 4


# -- failures of the cluster ----------------------------------------------------------------

def assert_every_worker_has_a_pool(dpool, client):
    def pool_pids(dask_worker, name=dpool.plugin_name):
        return dask_worker.plugins[name].pool().worker_pids()

    pids = client.run(pool_pids)
    assert len(pids) == 2 and all(pids.values()), pids


def test_sigkill_of_a_dask_worker_mid_batch_records_every_id_once(dpool, client):
    n = 400
    pids = client.run(os.getpid)
    victim = psutil.Process(next(iter(pids.values())))
    isolate_processes = victim.children(recursive=True)
    assert isolate_processes  # its pool's zygote and workers
    seen = []
    for record in dpool.run_batch(quick_jobs(n), chunk_size=10):
        seen.append(record)
        if len(seen) == 20:
            victim.send_signal(signal.SIGKILL)
    assert sorted(r["id"] for r in seen) == list(range(n))
    assert all(r["status"] == "ok" and r["value"] == 2 * r["id"] for r in seen)
    # Its pool's processes died with it (PDEATHSIG), and its nanny's replacement serves.
    _, alive = psutil.wait_procs(isolate_processes, timeout=10)
    assert not alive
    client.wait_for_workers(2, timeout=60)
    assert_every_worker_has_a_pool(dpool, client)


def test_client_restart_mid_batch_records_every_id_once(dpool, client):
    n = 300
    seen = []
    restarted = threading.Event()
    for record in dpool.run_batch(quick_jobs(n), chunk_size=10):
        seen.append(record)
        if len(seen) == 20:
            threading.Thread(target=lambda: (client.restart(), restarted.set()), daemon=True).start()
    assert restarted.wait(60)
    assert sorted(r["id"] for r in seen) == list(range(n))
    assert all(r["status"] == "ok" for r in seen)
    # The plugin came back with the new workers (registered on the scheduler).
    client.wait_for_workers(2, timeout=60)
    assert_every_worker_has_a_pool(dpool, client)
    assert list(dpool.map("x", [{"x": 1}] * 4)) == [1] * 4


def test_no_process_is_left_after_the_cluster_closes():
    me = os.getpid()
    before = {p.pid for p in descendants(me)}
    with DaskPool("local:1", spare_workers=1) as p:
        assert [r["status"] for r in p.run_batch([{"id": 1, "code": "1"}])] == ["ok"]
        # multiprocessing's resource tracker is this process's (started on first use, ending
        # with it), not the cluster's: the CLI test sees it go with the CLI.
        started = [q for q in descendants(me) if q.pid not in before
                   and "multiprocessing.resource_tracker" not in " ".join(q.cmdline())]
        assert len(started) >= 3  # a Dask worker, its zygote, an isolate worker (and a spare)
    _, alive = psutil.wait_procs(started, timeout=20)
    assert not alive, [q.cmdline() for q in alive]


def test_the_extra_is_named_when_dask_is_missing():
    code = ("import sys; sys.modules['distributed'] = None\n"
            "try:\n    import isolate.dask\nexcept ImportError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "isolate-vm[dask]" in out.stdout, out.stderr


# -- the CLI ------------------------------------------------------------------------------

def _complete_records(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_bytes().decode().split("\n")[:-1]]


@pytest.mark.timeout(150)
def test_cli_on_a_cluster_killed_then_resumed_records_every_id_once(tmp_path, client):
    n = 600
    jobs = tmp_path / "jobs.jsonl"
    with open(jobs, "w") as f:
        for job in quick_jobs(n):
            f.write(json.dumps(job) + "\n")
        f.write("not json\n")
    out = tmp_path / "out.jsonl"
    cmd = [sys.executable, "-m", "isolate", "batch", str(jobs), "-o", str(out), "--timeout", "2000",
           "--no-progress", "--cluster"]
    # First on a local cluster the CLI owns, then (resumed) on a running scheduler.
    proc = subprocess.Popen(cmd + ["local:1"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(_complete_records(out)) < 20:
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.05)  # polling a file another process writes: there is no event to wait on
    spawned = descendants(proc.pid)
    proc.kill()
    proc.communicate(timeout=30)
    first = _complete_records(out)
    assert 20 <= len(first) < n + 1
    # The local cluster's processes and their isolate workers went with the CLI.
    _, alive = psutil.wait_procs(spawned, timeout=30)
    assert not alive, [q.cmdline() for q in alive]

    result = subprocess.run(cmd + [client.scheduler.address, "--resume"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    records = _complete_records(out)
    ids = [r["id"] for r in records]
    assert sorted(map(str, ids)) == sorted(map(str, list(range(n)) + [f"line {n + 1}"]))
    assert all(r["status"] == "ok" for r in records if r["id"] != f"line {n + 1}")
    assert "done:" in result.stderr


@pytest.mark.timeout(60)
@pytest.mark.parametrize("cluster", ["local:0", "local:9999"])
def test_cli_a_local_cluster_of_bad_size_is_a_usage_error(tmp_path, cluster):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(json.dumps({"id": 1, "code": "1"}) + "\n")
    result = subprocess.run([sys.executable, "-m", "isolate", "batch", str(jobs), "-o", "out.jsonl", "--no-progress",
                             "--cluster", cluster], cwd=tmp_path, capture_output=True, text=True, timeout=50)
    assert result.returncode == 2, result.stderr
    assert "--cluster" in result.stderr and "local:N" in result.stderr
