"""A pool's workers hold nothing of the host and run confined — checked on real pools.

(tests/test_zygote.py and tests/test_sandbox.py check the zygote and the
confinement on their own; here the same promises hold for isolate.Pool.)
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

import isolate

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="reading another process's memory needs root")


def _pool_pids(pool) -> list[int]:
    """The zygote, the workers and the spares of ``pool``."""
    zygote = pool._zygote.pid
    return [zygote] + [c.pid for c in psutil.Process(zygote).children()]


def _memory_contains(pid: int, needle: bytes) -> bool:
    chunk = 1 << 20
    with open(f"/proc/{pid}/maps") as maps:
        regions = []
        for line in maps:
            fields = line.split()
            if "r" in fields[1] and not (len(fields) > 5 and fields[5].startswith(("[vvar", "[vsyscall"))):
                start, end = (int(x, 16) for x in fields[0].split("-"))
                regions.append((start, end))
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for start, end in regions:
            tail = b""
            for offset in range(start, end, chunk):
                try:
                    data = os.pread(mem.fileno(), min(chunk, end - offset), offset)
                except OSError:
                    break
                if needle in tail + data:
                    return True
                tail = data[-(len(needle) - 1):]
    return False


@needs_root
@pytest.mark.timeout(120)
def test_a_token_the_host_held_before_the_pool_is_in_no_pool_process(monkeypatch):
    token = os.urandom(32)
    held = bytearray(token)
    monkeypatch.setenv("ISOLATE_TEST_MARKER", token.hex())
    assert _memory_contains(os.getpid(), token)
    with isolate.Pool(size=2, spare_workers=1) as pool:
        # A tenant's result the host keeps, then a replacement worker started after it.
        result = pool.run_in_new_context("'tenant-' + 'result-' + n", {"n": token[:8].hex()})
        pid = pool.worker_pids()[0]
        os.kill(pid, signal.SIGKILL)
        assert pool.run_in_new_context("1 + 1") == 2
        pids = _pool_pids(pool)
        assert len(pids) >= 3
        for p in pids:
            assert not _memory_contains(p, token), f"the host's token is in process {p}"
            with open(f"/proc/{p}/environ", "rb") as env:
                environ = env.read()
            assert b"ISOLATE_TEST_MARKER" not in environ and token.hex().encode() not in environ
        fresh = [p for p in pool.worker_pids() if p != pid]
        assert not any(_memory_contains(p, result.encode()) for p in fresh[-1:]), \
            "a replacement worker holds another tenant's result"
    assert held == token


@pytest.mark.timeout(60)
def test_workers_run_confined_and_say_so():
    with isolate.Pool(size=2, spare_workers=1) as pool:
        report = pool.sandbox
        assert set(report) == set(pool.worker_pids())
        for pid, sandbox in report.items():
            with open(f"/proc/{pid}/status") as status:
                fields = dict(line.split(":", 1) for line in status if ":" in line)
            assert fields["NoNewPrivs"].strip() == "1"
            assert fields["Seccomp"].strip() == "2"
            with open(f"/proc/{pid}/limits") as limits:
                core = next(line for line in limits if line.startswith("Max core file size"))
            assert core.split()[4:6] == ["0", "0"], core
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                assert cmdline.read().startswith(b"isolate-worker")
            assert sandbox["no_new_privs"] is True and sandbox["seccomp"]["active"] is True
            assert sandbox["rlimits"]["core"] == 0
        # Confined, and still doing all its work.
        ctx = pool.create_context({"f": lambda x: x * 2})
        assert pool.run_in_context("f(21)", ctx) == 42
        with pytest.raises(isolate.ScriptTimeoutError):
            pool.run_in_context("while (true) {}", ctx, timeout=50)


@pytest.mark.timeout(60)
def test_sandbox_false_is_reported():
    with isolate.Pool(size=1, spare_workers=0, sandbox=False) as pool:
        [(pid, report)] = pool.sandbox.items()
        assert report["enabled"] is False
        with open(f"/proc/{pid}/status") as status:
            assert "Seccomp:\t0" in status.read()
        assert pool.run_in_new_context("1 + 1") == 2


def _pool_in_child(queue) -> None:
    try:
        with isolate.Pool(size=1) as pool:
            queue.put(("ok", pool.run_in_new_context("'daemon ' + (40 + 2)")))
    except BaseException as exc:  # reported to the test
        queue.put(("error", repr(exc)))


@pytest.mark.timeout(120)
@pytest.mark.parametrize("method", ["spawn", "forkserver"])
def test_a_pool_works_inside_a_daemonic_multiprocessing_process(method):
    ctx = multiprocessing.get_context(method)
    queue = ctx.Queue()
    process = ctx.Process(target=_pool_in_child, args=(queue,), daemon=True)
    process.start()
    try:
        assert queue.get(timeout=90) == ("ok", "daemon 42")
    finally:
        process.join(30)
    assert process.exitcode == 0


_THREADED_HOST = textwrap.dedent("""
    import threading
    import isolate

    results = []
    busy = threading.Event()
    # A host with threads of its own running when the pool starts.
    spinners = [threading.Thread(target=busy.wait, daemon=True) for _ in range(4)]
    for t in spinners: t.start()

    def use_pool():
        with isolate.Pool(size=2) as pool:
            results.append(pool.run_in_new_context("'thread ' + 7"))
            results.extend(pool.map("x + 1", [{"x": 1}, {"x": 2}]))

    t = threading.Thread(target=use_pool)
    t.start(); t.join()
    isolate.run_in_new_context("1")   # the default pool, from the main thread
    busy.set()
    assert results == ["thread 7", 2, 3], results
    print("done")
""")


@pytest.mark.timeout(120)
def test_a_pool_starts_from_a_thread_of_a_threaded_host_with_warnings_as_errors():
    proc = subprocess.run([sys.executable, "-W", "error", "-X", "dev", "-c", _THREADED_HOST], cwd=ROOT,
                          capture_output=True, text=True, timeout=100)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "done"
    assert "Warning" not in proc.stderr, proc.stderr


_DOOMED_HOST = textwrap.dedent("""
    import os, sys, psutil, isolate
    pool = isolate.Pool(size=2, spare_workers=1)
    pool.run_in_new_context("1")
    zygote = pool._zygote.pid
    print(" ".join(map(str, [zygote] + [c.pid for c in psutil.Process(zygote).children()])), flush=True)
    sys.stdin.read()
""")


@pytest.mark.timeout(60)
def test_a_host_killed_by_sigkill_takes_its_pool_with_it():
    proc = subprocess.Popen([sys.executable, "-c", _DOOMED_HOST], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert len(pids) == 4
        proc.kill()
        proc.wait(10)
        gone = psutil.wait_procs([psutil.Process(p) for p in pids if psutil.pid_exists(p)], timeout=10)[1]
        assert not gone, f"left running: {gone}"
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.timeout(60)
def test_a_killed_worker_is_replaced_quickly():
    with isolate.Pool(size=1, spare_workers=1) as pool:
        [pid] = pool.worker_pids()
        start = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        assert pool.run_in_new_context("2 + 2") == 4
        assert time.monotonic() - start < 2.0
        assert pid not in pool.worker_pids()
