"""The `isolate` command end to end: real subprocesses, real signals, real workers.

Every test is time-bounded. Nothing sleeps to synchronize: a test waits for
the output file to reach some number of complete lines, polling it between
bounded waits on the process itself (which return at once if it exits).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "batch"


def cli(*args, cwd, timeout=60, stdin=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "isolate", *map(str, args)], cwd=cwd, input=stdin,
                          capture_output=True, text=True, timeout=timeout)


def start(*args, cwd) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "isolate", *map(str, args)], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def complete_lines(path: Path) -> list[str]:
    if not path.exists():
        return []
    data = path.read_bytes().decode("utf-8")
    return data.split("\n")[:-1]  # what follows the last newline is not a complete line


def wait_for_lines(path: Path, n: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(complete_lines(path)) >= n:
            return
        try:
            proc.wait(timeout=0.02)
        except subprocess.TimeoutExpired:
            continue
        out, err = proc.communicate()
        pytest.fail(f"the batch exited ({proc.returncode}) before writing {n} lines:\n{err}")
    proc.kill()
    pytest.fail(f"fewer than {n} lines in {path} after {timeout} s")


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in complete_lines(path)]


def write_jsonl(path: Path, items) -> Path:
    with open(path, "w") as f:
        for item in items:
            f.write((item if isinstance(item, str) else json.dumps(item)) + "\n")
    return path


# -- isolate run ------------------------------------------------------------------------

@pytest.mark.timeout(30)
def test_run_prints_the_completion_value_as_json(tmp_path):
    script = tmp_path / "value.js"
    script.write_text("({doubled: x * 2, list: [1, 'two', null], gone: undefined, nan: NaN})\n")
    result = cli("run", script, "--context", '{"x": 21}', cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"doubled": 42, "list": [1, "two", None], "nan": None}

    (tmp_path / "nothing.js").write_text("var a = 1;\n")
    result = cli("run", "nothing.js", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, "null\n")

    result = cli("run", "-", cwd=tmp_path, stdin="Promise.resolve([1, 2].map(n => n * 10))")
    assert (result.returncode, json.loads(result.stdout)) == (0, [10, 20])


@pytest.mark.timeout(30)
def test_run_a_throwing_file_exits_1_with_the_js_stack(tmp_path):
    (tmp_path / "boom.js").write_text("function explode() {\n  throw new RangeError('boom');\n}\nexplode();\n")
    result = cli("run", "boom.js", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "RangeError: boom" in result.stderr
    assert "at explode (boom.js:2:" in result.stderr
    assert "boom.js:4:" in result.stderr


@pytest.mark.timeout(30)
def test_run_timeout_memory_and_usage_exit_codes(tmp_path):
    (tmp_path / "loop.js").write_text("while (true) {}\n")
    started = time.monotonic()
    result = cli("run", "loop.js", "--timeout", 100, cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "timed out after 100ms" in result.stderr
    assert time.monotonic() - started < 10

    (tmp_path / "bomb.js").write_text("let s = 'x';\nwhile (true) s += s;\n")
    result = cli("run", "bomb.js", "--memory-limit", "16MB", cwd=tmp_path)
    assert result.returncode == 4, result.stderr
    assert "out of memory" in result.stderr

    assert cli("run", "loop.js", "--context", "[1, 2]", cwd=tmp_path).returncode == 2
    assert cli("run", "loop.js", "--context", "{nope", cwd=tmp_path).returncode == 2
    assert cli("run", "loop.js", "--memory-limit", "lots", cwd=tmp_path).returncode == 2
    assert cli("run", "missing.js", cwd=tmp_path).returncode == 2


@pytest.mark.timeout(30)
def test_help_reads_well(tmp_path):
    top = cli("--help", cwd=tmp_path)
    assert top.returncode == 0
    assert "run" in top.stdout and "batch" in top.stdout
    run_help = cli("run", "--help", cwd=tmp_path).stdout
    assert "Exit codes:" in run_help and "3    the script ran past --timeout" in run_help
    batch_help = cli("batch", "--help", cwd=tmp_path).stdout
    for option in ("--output", "--script", "--workers", "--timeout", "--memory-limit", "--resume", "--retries"):
        assert option in batch_help
    assert "Examples:" in batch_help


# -- isolate batch ----------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_batch_gives_every_line_a_record_with_the_right_status(tmp_path):
    good = [{"id": f"good-{i}", "code": f"[{i}].map(n => n * n)[0]"} for i in range(40)]
    lines = good + [
        {"id": "throws", "code": "function f() { throw new TypeError('bad input') }\nf()"},
        {"id": "loops", "code": "while (true) {}"},
        {"id": "bomb", "code": "let s = 'x'; while (true) s += s;"},
        "this line is not JSON",
        {"id": "no-code"},
        {"code": "1 + 1"},
        "[1, 2, 3]",
        "",
        {"id": "context", "code": "a + b", "context": {"a": 1, "b": 2}},
    ]
    jobs = write_jsonl(tmp_path / "jobs.jsonl", lines)
    out = tmp_path / "out.jsonl"
    result = cli("batch", jobs, "-o", out, "--workers", 2, "--timeout", 300, "--memory-limit", "32MB",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    recs = records(out)
    assert len(recs) == len([line for line in lines if line != ""])
    by_id = {r["id"]: r for r in recs}
    assert len(by_id) == len(recs)
    for i in range(40):
        assert by_id[f"good-{i}"]["status"] == "ok" and by_id[f"good-{i}"]["value"] == i * i
    assert by_id["context"]["value"] == 3
    throws = by_id["throws"]
    assert throws["status"] == "error"
    assert throws["error"]["name"] == "TypeError" and throws["error"]["message"] == "bad input"
    assert "at f (" in throws["error"]["stack"]
    assert by_id["loops"]["status"] == "timeout"
    assert by_id["bomb"]["status"] == "memory"
    assert by_id["no-code"]["status"] == "invalid"
    assert by_id["line 44"]["status"] == "invalid" and "not JSON" in by_id["line 44"]["error"]["message"]
    assert by_id["line 46"]["status"] == "invalid" and '"id"' in by_id["line 46"]["error"]["message"]
    assert by_id["line 47"]["status"] == "invalid"
    for r in recs:
        if r["status"] != "invalid":
            assert {"wall_ms", "cpu_ms", "memory", "pid"} <= r.keys()
    summary = result.stderr
    assert "ok 41  error 1  timeout 1  memory 1  crashed 0  invalid 4" in summary
    assert "p50" in summary and "p95" in summary and "jobs/s" in summary


@pytest.mark.timeout(60)
def test_batch_with_a_script_runs_it_over_every_context(tmp_path):
    script = tmp_path / "score.js"
    script.write_text("// one record\nif (record.n < 0) throw new RangeError('negative');\n"
                      "({n: record.n, square: record.n * record.n})\n")
    jobs = write_jsonl(tmp_path / "jobs.jsonl",
                       [{"id": i, "context": {"record": {"n": i - 2}}} for i in range(30)])
    out = tmp_path / "out.jsonl"
    result = cli("batch", jobs, "--script", script, "-o", out, "--workers", 2, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    by_id = {r["id"]: r for r in records(out)}
    assert sorted(by_id) == list(range(30))
    assert by_id[5]["value"] == {"n": 3, "square": 9}
    assert by_id[0]["status"] == "error"
    assert f"{script}:2:" in by_id[0]["error"]["stack"]

    # A script that does not compile stops the run before any job, naming the line.
    script.write_text("let ok = 1;\nlet broken = ;\n")
    result = cli("batch", jobs, "--script", script, "-o", out, cwd=tmp_path)
    assert result.returncode == 1
    assert "does not compile" in result.stderr and "SyntaxError" in result.stderr
    assert f"{script}:2" in result.stderr


@pytest.mark.timeout(60)
def test_progress_bar_on_a_terminal(tmp_path):
    import fcntl
    import pty
    import struct
    import termios

    jobs = write_jsonl(tmp_path / "jobs.jsonl",
                       [{"id": i, "code": "var t = Date.now(); while (Date.now() - t < 5) {}"} for i in range(150)])
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "isolate", "batch", str(jobs), "-o", str(tmp_path / "out.jsonl"),
                             "--workers", "2"], cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    while True:  # until the pty closes: the process exited (bounded by the test's timeout)
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert proc.wait(timeout=30) == 0
    screen = b"".join(chunks).decode("utf-8", "replace")
    assert "150/150" in screen and "job/s" in screen and "100%" in screen  # tqdm: count, rate
    assert "<" in screen  # tqdm's elapsed<remaining (the ETA)
    assert "done: 150 jobs" in screen


def slow_jobs(path: Path, n: int) -> Path:
    """n jobs of ~15 ms of CPU each, plus one invalid line: a run that lasts long enough to interrupt."""
    items = [{"id": i, "code": f"var t = Date.now(); while (Date.now() - t < 15) {{}}; {i}"} for i in range(n)]
    items.insert(n // 2, "not json")
    return write_jsonl(path, items)


def assert_complete(out: Path, expected_ids: set) -> None:
    data = out.read_bytes()
    assert data.endswith(b"\n")
    ids = [r["id"] for r in records(out)]
    assert len(ids) == len(set(ids)), "an id was recorded twice"
    assert set(ids) == expected_ids


@pytest.mark.timeout(90)
def test_sigint_stops_cleanly_and_resume_finishes(tmp_path):
    n = 200
    jobs = slow_jobs(tmp_path / "jobs.jsonl", n)
    out = tmp_path / "out.jsonl"
    proc = start("batch", jobs, "-o", out, "--workers", 2, cwd=tmp_path)
    wait_for_lines(out, 20, proc, timeout=30)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "interrupted after" in err and "--resume" in err
    data = out.read_bytes()
    assert data.endswith(b"\n")
    first = records(out)  # every line parses
    assert 20 <= len(first) < n + 1

    result = cli("batch", jobs, "-o", out, "--workers", 2, "--resume", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"{len(first)} ids already in" in result.stderr
    assert_complete(out, set(range(n)) | {f"line {n // 2 + 1}"})


@pytest.mark.timeout(90)
def test_sigkill_then_resume_records_every_id_exactly_once(tmp_path):
    n = 200
    jobs = slow_jobs(tmp_path / "jobs.jsonl", n)
    out = tmp_path / "out.jsonl"
    proc = start("batch", jobs, "-o", out, "--workers", 2, cwd=tmp_path)
    wait_for_lines(out, 20, proc, timeout=30)
    worker_pids = {r["pid"] for r in records(out) if r.get("pid")}
    proc.kill()
    proc.communicate(timeout=30)
    assert len(complete_lines(out)) < n + 1
    # The workers die with their host (PR_SET_PDEATHSIG).
    _, alive = psutil.wait_procs([p for p in map(_process, worker_pids) if p], timeout=10)
    assert not alive
    # A SIGKILL can land in the middle of a write: simulate the torn last line it would leave.
    with open(out, "ab") as f:
        f.write(b'{"id": 199, "status": "o')

    result = cli("batch", jobs, "-o", out, "--workers", 2, "--resume", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "dropped a torn last line" in result.stderr
    assert_complete(out, set(range(n)) | {f"line {n // 2 + 1}"})


def _process(pid):
    try:
        return psutil.Process(pid)
    except psutil.NoSuchProcess:
        return None


# -- the examples -------------------------------------------------------------------------

@pytest.mark.timeout(90)
def test_orders_example_end_to_end(tmp_path):
    dataset = subprocess.run([sys.executable, str(EXAMPLES / "make_dataset.py"), "--count", "300", "--seed", "7"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
    again = subprocess.run([sys.executable, str(EXAMPLES / "make_dataset.py"), "--count", "300", "--seed", "7"],
                           capture_output=True, text=True, timeout=30, check=True).stdout
    assert dataset == again  # deterministic
    jobs = tmp_path / "orders.jsonl"
    jobs.write_text(dataset)
    out = tmp_path / "orders.out.jsonl"
    result = cli("batch", jobs, "--script", EXAMPLES / "transform.js", "-o", out, "--workers", 2,
                 "--timeout", 2000, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    recs = records(out)
    assert len(recs) == 300
    statuses = {r["status"] for r in recs}
    assert statuses <= {"ok", "error"}
    ok = [r["value"] for r in recs if r["status"] == "ok"]
    assert len(ok) >= 290
    for order in ok:
        assert order["total_cents"] == order["subtotal_cents"] - order["discount_cents"] + order["shipping_cents"]
    for r in recs:
        if r["status"] == "error":
            assert r["error"]["name"] in ("RangeError", "TypeError")
            assert "transform.js:" in r["error"]["stack"]
    report = subprocess.run([sys.executable, str(EXAMPLES / "report.py"), str(out)],
                            capture_output=True, text=True, timeout=30, check=True).stdout
    assert report.startswith("orders: 300")
    assert "revenue by country:" in report and "flagged for review" in report


@pytest.mark.timeout(90)
def test_grader_example(tmp_path):
    result = subprocess.run([sys.executable, str(EXAMPLES / "grader" / "grade.py"), "--timeout", "500",
                             "--workers", "2"], capture_output=True, text=True, timeout=80, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line.endswith(".js") or ".js " in line}
    assert set(rows) == {"alice.js", "bob.js", "carol.js", "dave.js", "erin.js", "frank.js"}
    assert "10/10" in rows["alice.js"] and "accepted" in rows["alice.js"]
    assert "wrong answer on all equal, duplicates" in rows["bob.js"]
    assert "time limit exceeded on random 200" in rows["carol.js"]
    assert "T.....TTTT" in rows["dave.js"]  # loops forever
    erin = rows["erin.js"].split()
    assert erin[2].count("M") >= 5 and "memory limit exceeded" in rows["erin.js"]  # allocates without bound
    assert erin[2][1] == "T"  # the empty input spins without allocating
    assert "runtime error on empty" in rows["frank.js"]
    assert "graded 60 runs" in result.stdout
