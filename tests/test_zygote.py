"""The zygote (workers/zygote.py) and its host client (isolate/zygote.py), with real processes.

Workers are spawned through :class:`isolate.zygote.Zygote` and spoken to with
the wire protocol directly (no Pool): the handshake, a context and a script.
What the issue asked to prove: nothing of the host is in a worker or the
zygote (memory, environment, command line), workers share no writable
memory, everything ends with the host, exit statuses are reported, and
spawning works from any thread, a daemonic multiprocessing process and
under ``-W error``.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing
import os
import select
import signal
import statistics
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from isolate.errors import WorkerCrashedError, WorkerStartError
from isolate.zygote import Zygote
from isolate.protocol import PROTOCOL_VERSION, MessageStream, Notification, Request, Response

ROOT = Path(__file__).resolve().parent.parent
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="reading another process's /proc/<pid>/mem needs root")


class Session:
    """The host's end of one worker's pipes, speaking the protocol."""

    def __init__(self, worker):
        self.worker = worker
        self.stream = MessageStream(worker.read_fd, worker.write_fd)
        self._msgid = 0

    def hello(self) -> dict:
        self.stream.write(Request(0, "hello", [PROTOCOL_VERSION]))
        reply = self.stream.read()
        assert isinstance(reply, Response) and reply.error is None, reply
        return reply.result

    def call(self, method: str, *params):
        self._msgid += 1
        self.stream.write(Request(self._msgid, method, [0, *params]))
        while True:
            reply = self.stream.read()
            if isinstance(reply, Notification):
                continue  # "started" acknowledgements of timed calls
            assert isinstance(reply, Response) and reply.msgid == self._msgid, reply
            return reply

    def run(self, code: str):
        context = self.call("create_context", {}).result
        reply = self.call("run", context, code, {})
        assert reply.error is None, reply.error
        return reply.result[0]

    def close(self) -> None:
        for fd in (self.worker.read_fd, self.worker.write_fd):
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture(scope="module")
def zygote():
    with Zygote({"LANG": "C.UTF-8"}) as z:
        yield z


@pytest.fixture
def session(zygote):
    s = Session(zygote.spawn("test"))
    yield s
    s.close()
    s.worker.kill()
    s.worker.wait(5)


def _pidfd_wait(pid: int, timeout: float) -> bool:
    """Wait for any process (not only a child) to exit, on its pidfd."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


# -- serving -------------------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_spawned_workers_answer_hello_and_run_scripts(zygote):
    sessions = [Session(zygote.spawn(f"w{i}")) for i in range(2)]
    try:
        for s in sessions:
            info = s.hello()
            assert info["protocol"] == PROTOCOL_VERSION
            assert info["pid"] == s.worker.pid
            assert info["sandbox"]["enabled"] is True
            assert s.run("[1, 2, 3].map(x => x * 2).join()") == "2,4,6"
        assert len({s.worker.pid for s in sessions}) == 2
        assert all(s.worker.exitcode is None for s in sessions)
    finally:
        for s in sessions:
            s.close()
            assert s.worker.wait(10) == 0  # end of its input: a clean exit


@pytest.mark.timeout(60)
def test_zygote_is_ready_with_its_engine_probed(zygote):
    info = zygote.info
    assert info["ready"] == zygote.pid
    assert info["engine"]["bridge_bytecode"] is True, info["engine"]
    assert info["engine"]["memory_api_ok"] is True, info["engine"]


def test_the_zygote_loads_dukpys_extension_without_dukpys_installer(zygote, session):
    """dukpy's package __init__ imports its npm installer (urllib, http.client, ssl,
    tarfile): ~24 ms of every pool's start. The zygote loads only the extension, so the
    C modules those bring (_ssl, _hashlib) are in no worker's or the zygote's memory."""
    for pid in (zygote.pid, session.worker.pid):
        with open(f"/proc/{pid}/maps") as maps:
            mapped = maps.read()
        assert "_dukpy." in mapped, pid
        for module in ("/_ssl.", "/_hashlib."):
            assert module not in mapped, (pid, module)


# -- nothing of the host -------------------------------------------------------------------

def _readable_regions(pid: int):
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split()
            if "r" not in fields[1] or (len(fields) > 5 and fields[5] in ("[vvar]", "[vsyscall]", "[vvar_vclock]")):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            yield start, end


def _memory_contains(pid: int, needle: bytes) -> bool:
    """Whether ``needle`` is anywhere in the readable memory of ``pid``."""
    chunk = 1 << 20
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for start, end in _readable_regions(pid):
            tail = b""
            for offset in range(start, end, chunk):
                try:
                    data = os.pread(mem.fileno(), min(chunk, end - offset), offset)
                except OSError:
                    break  # a region that cannot be read (guard pages, device memory)
                if needle in tail + data:
                    return True
                tail = data[-(len(needle) - 1):]
    return False


@needs_root
@pytest.mark.timeout(120)
def test_a_host_secret_is_in_no_worker_or_zygote_memory():
    token = os.urandom(32)
    held = bytearray(token)  # the host holds it (as a token, a key, a result would be)
    assert _memory_contains(os.getpid(), token), "the scan must find what this process holds"
    with Zygote() as z:
        sessions = [Session(z.spawn(f"scan{i}")) for i in range(2)]
        try:
            canary = "canary-" + os.urandom(12).hex()  # what the host does send a worker
            for s in sessions:
                s.hello()
                assert s.run(f"globalThis.kept = '{canary}'; kept.length") == len(canary)
            for pid in [z.pid] + [s.worker.pid for s in sessions]:
                assert not _memory_contains(pid, token), f"the host's token is in the memory of {pid}"
            # The scan sees what a worker does hold.
            assert _memory_contains(sessions[0].worker.pid, canary.encode())
            assert not _memory_contains(z.pid, canary.encode())
        finally:
            for s in sessions:
                s.close()
    assert held == token


@pytest.mark.timeout(60)
def test_the_host_environment_is_not_inherited(monkeypatch):
    marker = "isolate-marker-" + os.urandom(8).hex()
    monkeypatch.setenv("ISOLATE_TEST_SECRET", marker)
    with Zygote({"POOL_VAR": "for-workers"}) as z:
        s = Session(z.spawn("env"))
        try:
            s.hello()
            for pid in (z.pid, s.worker.pid):
                environ = Path(f"/proc/{pid}/environ").read_bytes()
                assert marker.encode() not in environ
                assert b"ISOLATE_TEST_SECRET" not in environ
            # What the worker's Python sees is exactly the pool's env.
            assert s.call("stats").result["env_keys"] == ["POOL_VAR"]
            assert s.run("typeof process") == "undefined"
        finally:
            s.close()


@pytest.mark.timeout(60)
def test_processes_are_named(zygote, session):
    session.hello()
    assert Path(f"/proc/{session.worker.pid}/cmdline").read_bytes().startswith(b"isolate-worker")
    assert Path(f"/proc/{zygote.pid}/cmdline").read_bytes().startswith(b"isolate-zygote")
    # Nothing of the host's command line (pytest's arguments) either.
    assert b"pytest" not in Path(f"/proc/{session.worker.pid}/cmdline").read_bytes()


def _shared_writable(pid: int) -> dict[tuple[str, int], str]:
    """(device, inode) -> path of every shared writable mapping of ``pid``."""
    found = {}
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            perms, dev, inode = fields[1], fields[3], int(fields[4])
            if "w" in perms and "s" in perms:
                found[(dev, inode)] = fields[5].strip() if len(fields) > 5 else ""
    return found


@pytest.mark.timeout(60)
def test_workers_share_no_writable_memory(zygote):
    sessions = [Session(zygote.spawn(f"share{i}")) for i in range(3)]
    try:
        for s in sessions:
            s.hello()
        shared = [_shared_writable(s.worker.pid) for s in sessions]
        for i, mine in enumerate(shared):
            # Exactly one: its own page with the host.
            assert len(mine) == 1 and "isolate-cell" in next(iter(mine.values())), mine
            for j, theirs in enumerate(shared):
                if i != j:
                    assert not set(mine) & set(theirs), (mine, theirs)
        # The zygote maps none of them.
        assert not _shared_writable(zygote.pid)
        # Each page is the host's cell: what the host writes, only that worker could read.
        host_maps = _shared_writable(os.getpid())
        for mine in shared:
            assert set(mine) <= set(host_maps)
    finally:
        for s in sessions:
            s.close()


# -- ends ----------------------------------------------------------------------------------

_HOST = textwrap.dedent("""
    import json, sys
    from isolate.zygote import Zygote
    from isolate.protocol import MessageStream, Request, PROTOCOL_VERSION
    z = Zygote()
    pids = []
    for i in range(2):
        w = z.spawn(f"orphan{i}")
        s = MessageStream(w.read_fd, w.write_fd)
        s.write(Request(0, "hello", [PROTOCOL_VERSION]))
        s.read()
        pids.append(w.pid)
    print(json.dumps({"zygote": z.pid, "workers": pids}), flush=True)
    sys.stdin.read()  # until the test kills us
""")

_PR_SET_CHILD_SUBREAPER = 36


@pytest.mark.timeout(90)
def test_a_host_killed_by_sigkill_leaves_no_process_and_no_zombie():
    libc = ctypes.CDLL(None, use_errno=True)
    # Orphans are re-parented to this process instead of init, so the test
    # can see whether anything is left unreaped (and reap it).
    libc.prctl(_PR_SET_CHILD_SUBREAPER, ctypes.c_ulong(1), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))
    try:
        host = subprocess.Popen([sys.executable, "-c", _HOST], cwd=ROOT, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        pids = json.loads(host.stdout.readline())
        zygote, workers = pids["zygote"], pids["workers"]
        host.kill()
        host.wait(10)
        for pid in [zygote, *workers]:
            assert _pidfd_wait(pid, 20), f"process {pid} outlived the host"
        # The zygote saw its socket close and exited on its own, having killed
        # and reaped its workers: it is the only orphan left to reap, with status 0.
        _, status = os.waitpid(zygote, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        for pid in workers:
            with pytest.raises(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reaped by the zygote, not orphaned
        for pid in [zygote, *workers]:
            assert not Path(f"/proc/{pid}").exists(), f"process {pid} is still there"
        host.stdout.close()
        host.stdin.close()
        host.stderr.close()
    finally:
        libc.prctl(_PR_SET_CHILD_SUBREAPER, ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))


@pytest.mark.timeout(60)
def test_a_killed_worker_reports_minus_nine(zygote, session):
    session.hello()
    worker = session.worker
    assert worker.wait(0.05) is None and worker.exitcode is None
    assert worker.send_signal(0)
    worker.kill()
    assert worker.wait(10) == -signal.SIGKILL
    assert worker.exitcode == -signal.SIGKILL
    assert worker.send_signal(signal.SIGTERM) is False
    worker.kill()  # harmless once gone
    worker.close()
    worker.close()
    assert worker.wait(1) == -signal.SIGKILL


@pytest.mark.timeout(60)
def test_a_worker_ended_by_a_signal_or_exit_code_reports_it(zygote):
    s = Session(zygote.spawn("term"))
    try:
        s.hello()
        assert s.worker.send_signal(signal.SIGTERM)
        assert s.worker.wait(10) == -signal.SIGTERM
    finally:
        s.close()
    s = Session(zygote.spawn("bad-hello"))
    s.stream.write(Request(0, "hello", [PROTOCOL_VERSION + 1]))  # a version mismatch ends it
    assert s.stream.read().error[0] == "PROTOCOL_VERSION"
    assert s.worker.wait(10) == 0
    s.close()


@pytest.mark.timeout(90)
def test_a_dead_zygote_is_replaced_on_the_next_spawn():
    with Zygote() as z:
        s = Session(z.spawn("before"))
        s.hello()
        first = z.pid
        os.kill(first, signal.SIGKILL)
        # Its worker dies with it (PDEATHSIG): SIGKILL, as reported.
        assert s.worker.wait(20) == -signal.SIGKILL
        s.close()
        t = Session(z.spawn("after"))
        try:
            assert z.pid != first
            t.hello()
            assert t.run("6 * 7") == 42
        finally:
            t.close()


@pytest.mark.timeout(60)
def test_close_kills_and_reaps_everything_and_is_idempotent():
    z = Zygote()
    s = Session(z.spawn("closing"))
    s.hello()
    zygote_pid, worker = z.pid, s.worker
    z.close()
    assert worker.wait(10) == -signal.SIGKILL
    assert _pidfd_wait(zygote_pid, 10)
    assert not Path(f"/proc/{zygote_pid}").exists()  # reaped, not a zombie
    assert not Path(f"/proc/{worker.pid}").exists()
    z.close()
    with pytest.raises(WorkerStartError) as info:
        z.spawn("late")
    assert info.value.code == "ERR_WORKER_START"
    assert isinstance(info.value, WorkerCrashedError) and info.value.pid == -1
    s.close()


@pytest.mark.timeout(60)
def test_a_zygote_that_cannot_start_raises_worker_start_error(monkeypatch):
    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    with pytest.raises(WorkerStartError, match="could not start a worker: the zygote could not be started"):
        Zygote()


# -- from anywhere -------------------------------------------------------------------------

def _spawn_and_run(queue) -> None:
    """In a daemonic multiprocessing process: a zygote of its own, one worker, one script."""
    try:
        with Zygote() as z:
            s = Session(z.spawn("from-daemon"))
            s.hello()
            queue.put(("ok", s.run("'daemon ' + (20 + 22)")))
            s.close()
    except BaseException as exc:  # reported to the test
        queue.put(("error", repr(exc)))


@pytest.mark.timeout(120)
def test_spawn_from_a_daemonic_multiprocessing_process():
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    process = ctx.Process(target=_spawn_and_run, args=(queue,), daemon=True)
    process.start()
    try:
        assert queue.get(timeout=90) == ("ok", "daemon 42")
    finally:
        process.join(30)
    assert process.exitcode == 0


_THREADED_HOST = textwrap.dedent("""
    import threading
    from isolate.zygote import Zygote
    from isolate.protocol import MessageStream, Request, PROTOCOL_VERSION

    def serve(z, name, out):
        w = z.spawn(name)
        s = MessageStream(w.read_fd, w.write_fd)
        s.write(Request(0, "hello", [PROTOCOL_VERSION]))
        s.read()
        s.write(Request(1, "create_context", [0, {}]))
        ctx = s.read().result
        s.write(Request(2, "run", [0, ctx, "'ok ' + 1", {}]))
        out.append((w, s.read().result[0]))

    made, results = [], []
    # The zygote is started by a thread that then ends: it must outlive that thread.
    starter = threading.Thread(target=lambda: made.append(Zygote()))
    starter.start(); starter.join()
    z = made[0]
    serve(z, "first", results)
    threads = [threading.Thread(target=serve, args=(z, f"t{i}", results)) for i in range(4)]
    for t in threads: t.start()
    for t in threads: t.join()
    assert [r for _, r in results] == ["ok 1"] * 5, results
    assert results[0][0].exitcode is None  # the first worker is still alive
    z.close()
    print("done")
""")


@pytest.mark.timeout(120)
def test_spawn_from_threads_of_a_threaded_host_under_w_error():
    result = subprocess.run([sys.executable, "-W", "error", "-X", "dev", "-c", _THREADED_HOST], cwd=ROOT,
                            capture_output=True, text=True, timeout=100)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "done"
    assert "Warning" not in result.stderr, result.stderr


# -- speed ---------------------------------------------------------------------------------

@pytest.mark.timeout(300)
def test_spawn_to_hello_latency(zygote):
    times = []
    for i in range(50):
        start = time.perf_counter()
        s = Session(zygote.spawn(f"lat{i}"))
        s.hello()
        times.append(time.perf_counter() - start)
        s.close()
        s.worker.wait(10)
        s.worker.close()
    median = statistics.median(times) * 1000
    p95 = statistics.quantiles(times, n=20)[-1] * 1000
    print(f"\nspawn-to-hello over 50: median {median:.1f} ms, p95 {p95:.1f} ms")
    assert median <= 50, f"median spawn-to-hello {median:.1f} ms"
