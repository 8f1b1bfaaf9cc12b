"""Batch semantics that hold (issue 15): a job's returned promise is awaited in run_batch, map,
submit and `isolate batch`, as `isolate run` does, and a duplicate id is reported, never run twice."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import isolate

PROMISE_JOBS = [
    {"id": "fulfilled", "code": "Promise.resolve(6).then(n => n * 7)"},
    {"id": "async", "code": "(async () => { const xs = await Promise.all([1, 2, 3]); return xs.length })()"},
    {"id": "rejected", "code": "Promise.reject(new RangeError('out of stock'))"},
    {"id": "rejected-async", "code": "(async function checkout() { throw new TypeError('no cart') })()"},
    {"id": "pending", "code": "new Promise(() => {})"},
    {"id": "plain", "code": "1 + 1"},
]


def _by_id(records):
    return {r["id"]: r for r in records}


def test_run_batch_awaits_a_returned_promise(pool):
    recs = _by_id(pool.run_batch(PROMISE_JOBS, timeout=2000))
    assert recs["fulfilled"]["status"] == "ok" and recs["fulfilled"]["value"] == 42
    assert recs["fulfilled"]["promise"] == "fulfilled"
    assert recs["async"]["value"] == 3
    rejected = recs["rejected"]
    assert rejected["status"] == "error" and rejected["promise"] == "rejected" and "value" not in rejected
    assert rejected["error"]["name"] == "RangeError" and rejected["error"]["message"] == "out of stock"
    assert "checkout" in recs["rejected-async"]["error"]["stack"]
    pending = recs["pending"]
    assert pending["status"] == "error" and pending["promise"] == "pending"
    assert pending["error"]["name"] == "PromisePendingError"
    assert "promise" not in recs["plain"] and recs["plain"]["value"] == 2
    for record in recs.values():
        assert record["cpu_ms"] is not None and record["pid"] in pool.worker_pids()


def test_a_promise_is_bounded_by_the_jobs_timeout(pool):
    # The promise's jobs run inside the call: a chain that never ends is stopped by the timeout.
    jobs = [{"id": "chain", "code": "(async () => { for (;;) await null })()"},
            {"id": "then-loop", "code": "Promise.resolve().then(function f() { return Promise.resolve().then(f) })"}]
    recs = _by_id(pool.run_batch(jobs, timeout=200))
    assert recs["chain"]["status"] == "timeout"
    assert recs["then-loop"]["status"] == "timeout"


def test_submit_and_map_await_a_returned_promise(pool):
    assert pool.submit("Promise.resolve(x * 2)", {"x": 21}).result(timeout=30) == 42
    future = pool.submit("Promise.reject(new TypeError('nope'))")
    with pytest.raises(isolate.JSTypeError, match="nope"):
        future.result(timeout=30)
    with pytest.raises(isolate.PromisePendingError):
        pool.submit("new Promise(() => {})").result(timeout=30)
    script = isolate.Script("(async () => n * n)()", pool=pool)
    assert pool.submit(script, {"n": 5}).result(timeout=30) == 25
    assert list(pool.map("Promise.resolve(n + 1)", [{"n": i} for i in range(10)], timeout=1000)) == list(range(1, 11))
    # The direct call keeps Node's answer: the promise itself.
    assert isinstance(pool.run_in_new_context("Promise.resolve(1)"), isolate.JSPromise)


def _cli(*args, cwd, stdin=None):
    return subprocess.run([sys.executable, "-m", "isolate", *map(str, args)], cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=60)


def _write_jsonl(path, items):
    path.write_text("".join((item if isinstance(item, str) else json.dumps(item)) + "\n" for item in items))
    return path


@pytest.mark.timeout(60)
def test_isolate_batch_awaits_promises(tmp_path):
    jobs = _write_jsonl(tmp_path / "jobs.jsonl", PROMISE_JOBS)
    out = tmp_path / "out.jsonl"
    result = _cli("batch", jobs, "-o", out, "--workers", 1, "--timeout", 2000, "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    recs = _by_id(json.loads(line) for line in out.read_text().splitlines())
    assert recs["fulfilled"]["value"] == 42 and recs["async"]["value"] == 3
    assert recs["rejected"]["promise"] == "rejected" and recs["rejected"]["error"]["message"] == "out of stock"
    assert recs["pending"]["promise"] == "pending"
    assert "[object Promise]" not in out.read_text()


@pytest.mark.timeout(60)
def test_isolate_batch_reports_duplicate_ids_and_runs_each_once(tmp_path):
    lines = [
        {"id": 1, "code": "'first'"},
        {"id": "a", "code": "'a'"},
        {"id": 1, "code": "'second'"},                 # line 3: the same id as line 1
        {"id": 2, "code": "'two'"},
        {"id": 1, "code": "'third'"},                  # line 5
        {"id": {"k": [1, 2]}, "code": "'obj'"},
        {"id": {"k": [1, 2]}, "code": "'obj again'"},  # line 7: ids compare as JSON values
        {"id": "1", "code": "'a string 1 is another id'"},
    ]
    jobs = _write_jsonl(tmp_path / "jobs.jsonl", lines)
    out = tmp_path / "out.jsonl"
    result = _cli("batch", jobs, "-o", out, "--workers", 2, "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    recs = [json.loads(line) for line in out.read_text().splitlines()]
    ids = [json.dumps(r["id"], sort_keys=True) for r in recs]
    assert len(ids) == len(set(ids)) == 8  # every id exactly once
    by_id = {json.dumps(r["id"], sort_keys=True): r for r in recs}
    assert by_id["1"]["value"] == "first" and by_id['"1"']["value"] == "a string 1 is another id"
    assert by_id['{"k": [1, 2]}']["value"] == "obj"
    for line_no, first in ((3, 1), (5, 1), (7, 6)):
        dup = by_id[json.dumps(f"line {line_no}")]
        assert dup["status"] == "invalid" and dup["line"] == line_no
        assert f"line {first} has it" in dup["error"]["message"] and "duplicate id" in dup["error"]["message"]
    assert "invalid 3" in result.stderr

    # --resume keeps the same answer: nothing runs again, nothing is reported twice.
    result = _cli("batch", jobs, "-o", out, "--resume", "--no-progress", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(out.read_text().splitlines()) == 8
    assert "skipped  8 ids already in the output" in result.stderr
