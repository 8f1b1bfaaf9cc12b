"""Logging for operators (issue 15): a worker's start, kill, death, replacement and recycling
go to logging.getLogger("isolate") children, with pid, reason, exit code and signal name;
nothing is printed by default unless something went wrong; the CLI has -v/--verbose."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

import isolate


class Records(logging.Handler):
    """Collects the isolate loggers' records; a test waits for the one it expects."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.changed = threading.Condition()

    def emit(self, record):
        with self.changed:
            self.records.append(record)
            self.changed.notify_all()

    def find(self, **attrs):
        return [r for r in self.records if all(getattr(r, k, None) == v for k, v in attrs.items())]

    def wait_for(self, timeout=20.0, **attrs) -> logging.LogRecord:
        deadline = time.monotonic() + timeout
        with self.changed:
            while not self.find(**attrs):
                left = deadline - time.monotonic()
                if left <= 0:
                    pytest.fail(f"no record with {attrs}; got {[r.getMessage() for r in self.records]}")
                self.changed.wait(left)
            return self.find(**attrs)[0]


@pytest.fixture
def records():
    logger = logging.getLogger("isolate")
    handler = Records()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def test_start_crash_and_replacement_are_logged(records):
    with isolate.Pool(size=1) as pool:
        pid = pool.worker_pids()[0]
        started = records.wait_for(event="started", worker_pid=pid)
        assert started.levelno == logging.INFO and started.name == "isolate.supervisor"
        assert records.find(name="isolate.zygote")
        os.kill(pid, signal.SIGSEGV)
        died = records.wait_for(event="died", worker_pid=pid)
        assert died.levelno == logging.WARNING
        assert (died.exitcode, died.signal) == (-signal.SIGSEGV, "SIGSEGV")
        assert f"worker {pid} died (SIGSEGV(-11))" in died.getMessage()
        replaced = records.wait_for(event="replaced", worker_pid=pid)
        assert replaced.name == "isolate.pool" and replaced.levelno == logging.INFO
        assert str(pid) in replaced.getMessage() and "replaced by spare" in replaced.getMessage()
        assert pool.run_in_new_context("1 + 1") == 2


def test_a_kill_for_a_deadline_names_its_reason_and_signal(records):
    with isolate.Pool(size=1) as pool:
        pid = pool.worker_pids()[0]
        with pytest.raises(isolate.ScriptTimeoutError) as info:
            pool.run_in_new_context("new Array(1e9).join('')", timeout=50)  # ignores the interrupt
        assert info.value.stage == "kill"
        killed = records.wait_for(event="killed", worker_pid=pid)
        assert killed.levelno == logging.WARNING and killed.signal == "SIGKILL" and killed.exitcode == -9
        assert "deadline" in killed.reason and "SIGKILL(-9)" in killed.getMessage()
    # Closing the pool ends the others quietly (DEBUG, not a warning).
    closed = [r for r in records.records if getattr(r, "event", None) == "closed"]
    assert closed and all(r.levelno == logging.DEBUG for r in closed)
    assert not [r for r in records.records if r.levelno >= logging.WARNING and r is not killed]


def test_recycling_is_logged_with_its_reason(records):
    with isolate.Pool(size=1, max_tasks_per_worker=2) as pool:
        pid = pool.worker_pids()[0]
        for _ in range(2):
            pool.run_in_new_context("1")
        recycled = records.wait_for(event="recycled", worker_pid=pid)
        assert "max_tasks_per_worker" in recycled.reason and recycled.levelno == logging.INFO
        replaced = records.wait_for(event="replaced", worker_pid=pid)
        assert "recycled" in replaced.getMessage()
        assert pool.run_in_new_context("2") == 2


_QUIET_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    import isolate
    with isolate.Pool(size=1) as pool:
        pool.run_in_new_context("1 + 1")
        try:
            pool.run_in_new_context("while (true) {}", timeout=20)
        except isolate.ScriptTimeoutError:
            pass
        if sys.argv[1] == "crash":
            ctx = pool.create_context()
            os.kill(ctx.worker_pid, signal.SIGKILL)
            try:
                pool.run_in_context("1", ctx)
            except isolate.IsolateError:
                pass
    print("done")
""")


@pytest.mark.timeout(60)
def test_no_output_by_default_unless_something_went_wrong(tmp_path):
    script = tmp_path / "quiet.py"
    script.write_text(_QUIET_SCRIPT)
    quiet = subprocess.run([sys.executable, str(script), "normal"], capture_output=True, text=True, timeout=50,
                           cwd=tmp_path)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "done\n", "")
    crash = subprocess.run([sys.executable, str(script), "crash"], capture_output=True, text=True, timeout=50,
                           cwd=tmp_path)
    assert crash.returncode == 0 and crash.stdout == "done\n"
    assert "died (SIGKILL(-9))" in crash.stderr and len(crash.stderr.splitlines()) == 1, crash.stderr


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "isolate", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=60)


@pytest.mark.timeout(90)
def test_cli_verbose(tmp_path):
    (tmp_path / "a.js").write_text("6 * 7\n")
    quiet = _cli("run", "a.js", cwd=tmp_path)
    assert (quiet.returncode, quiet.stdout, quiet.stderr) == (0, "42\n", "")
    for args in (("-v", "run", "a.js"), ("run", "--verbose", "a.js")):
        verbose = _cli(*args, cwd=tmp_path)
        assert verbose.returncode == 0 and verbose.stdout == "42\n"
        assert "isolate.supervisor: INFO: worker" in verbose.stderr and "started" in verbose.stderr
        assert "DEBUG" not in verbose.stderr
    debug = _cli("run", "-vv", "a.js", cwd=tmp_path)
    assert "isolate.supervisor: DEBUG: worker" in debug.stderr and "its pool closed it" in debug.stderr
    (tmp_path / "jobs.jsonl").write_text('{"id": 1, "code": "1"}\n')
    batch = _cli("batch", "-v", "jobs.jsonl", "-o", "out.jsonl", "--no-progress", "--workers", 1, cwd=tmp_path)
    assert batch.returncode == 0 and "INFO: worker" in batch.stderr and "started" in batch.stderr
