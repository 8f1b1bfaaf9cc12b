"""Worker confinement (workers/sandbox.py): what the kernel shows, what is denied, what still works.

Three views: a real worker from the zygote, as /proc shows it and as it
serves every kind of request while confined; and ``tests/sandbox_probe.py``,
a test-only process that applies the same ``confine()`` and then tries to
escape, reporting the errno of each attempt.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import struct
import subprocess
import sys
import threading
from pathlib import Path

import psutil
import pytest

from isolate.zygote import Zygote
from isolate.protocol import (
    PROTOCOL_VERSION, HostFunctionRef, MessageStream, Notification, Request, Response, encode_value,
)

ROOT = Path(__file__).resolve().parent.parent
PROBE = Path(__file__).resolve().parent / "sandbox_probe.py"


class Session:
    """The host's end of one worker's pipes, speaking the protocol (answers call_host with ``host``)."""

    def __init__(self, worker, host=None):
        self.worker = worker
        self.stream = MessageStream(worker.read_fd, worker.write_fd)
        self.host = host
        self.msgid = 0

    def hello(self) -> dict:
        self.stream.write(Request(0, "hello", [PROTOCOL_VERSION]))
        reply = self.stream.read()
        assert isinstance(reply, Response) and reply.error is None, reply
        return reply.result

    def send(self, method: str, *params) -> int:
        self.msgid += 1
        self.stream.write(Request(self.msgid, method, [0, *params]))
        return self.msgid

    def answer(self, msgid: int) -> Response:
        while True:
            message = self.stream.read()
            if isinstance(message, Notification):
                continue  # "started"
            if isinstance(message, Request) and message.method == "call_host":
                self.stream.write(Response(message.msgid, None, self.host(*message.params[1:])))
                continue
            assert isinstance(message, Response) and message.msgid == msgid, message
            return message

    def call(self, method: str, *params) -> Response:
        return self.answer(self.send(method, *params))

    def close(self) -> None:
        for fd in (self.worker.read_fd, self.worker.write_fd):
            try:
                os.close(fd)
            except OSError:
                pass


@pytest.fixture(scope="module")
def zygote():
    with Zygote(worker_memory_limit=512 * 1024 * 1024) as z:
        yield z


@pytest.fixture
def session(zygote):
    s = Session(zygote.spawn("sandbox-test"))
    s.info = s.hello()
    yield s
    s.close()
    s.worker.kill()
    s.worker.wait(5)


def _status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def _limits(pid: int) -> dict[str, tuple[str, str]]:
    out = {}
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines()[1:]:
        name, soft, hard = line[:26].strip(), line[26:47].strip(), line[47:68].strip()
        out[name] = (soft, hard)
    return out


# -- what the kernel shows ---------------------------------------------------------------

@pytest.mark.timeout(60)
def test_a_worker_runs_with_no_new_privs_seccomp_and_limits(session):
    status = _status(session.worker.pid)
    assert status["NoNewPrivs"].strip() == "1"
    assert status["Seccomp"].strip() == "2"  # filter mode
    limits = _limits(session.worker.pid)
    assert limits["Max core file size"] == ("0", "0")
    assert limits["Max file size"] == ("0", "0")
    assert limits["Max data size"] == (str(512 * 1024 * 1024),) * 2
    nofile = int(limits["Max open files"][0])
    held = len(os.listdir(f"/proc/{session.worker.pid}/fd"))
    assert held <= nofile <= 16, (held, nofile)


@pytest.mark.timeout(60)
def test_hello_says_what_confines_the_worker(session):
    report = session.info["sandbox"]
    assert report["enabled"] is True and report["no_new_privs"] is True
    assert report["seccomp"]["active"] is True and report["seccomp"]["rules"] > 50
    assert report["rlimits"]["core"] == 0 and report["rlimits"]["fsize"] == 0
    if report["landlock"]["active"]:
        assert report["landlock"]["abi"] >= 1 and report["landlock"]["fs"] & 0b111 == 0b111
    else:  # only on a kernel without Landlock: then it says so
        assert any(line.startswith("Landlock") for line in report["degraded"]), report
    assert report["degraded"] == [] or not report["landlock"]["active"]


@pytest.mark.timeout(60)
def test_the_host_still_reads_a_confined_workers_memory_figures(session):
    # measure_memory-style figures come from the host's side of /proc.
    info = psutil.Process(session.worker.pid).memory_full_info()
    assert info.rss > 0 and info.uss > 0


# -- what a confined worker still does --------------------------------------------------

@pytest.mark.timeout(120)
def test_a_confined_worker_serves_everything(zygote):
    s = Session(zygote.spawn("serves"), host=lambda context, function_id, args: args[0] + 1)
    try:
        s.hello()
        ctx = s.call("create_context", {"globals": encode_value({"inc": HostFunctionRef(7)})}).result
        # scripts, and host functions called from JS
        assert s.call("run", ctx, "inc(41)", {}).result[0] == 42
        # JS errors
        error = s.call("run", ctx, "null.x", {}).error
        assert error[0] == "JS_EXCEPTION" and "null" in error[1]
        # timeouts: SIGALRM from setitimer
        assert s.call("run", ctx, "while (true) {}", {"timeout": 50}).error[0] == "SCRIPT_TIMEOUT"
        # interrupts: the msgid in the shared page, then SIGUSR1
        msgid = s.send("run", ctx, "while (true) {}", {})
        struct.pack_into("<q", s.worker.cell, 0, msgid)
        timer = threading.Timer(0.05, s.worker.send_signal, args=(signal.SIGUSR1,))
        timer.start()
        assert s.answer(msgid).error[0] == "SCRIPT_INTERRUPTED"
        timer.join()
        # the engine's memory limit, and the worker's RLIMIT_DATA behind it
        small = s.call("create_context", {"memory_limit": 8 * 1024 * 1024}).result
        error = s.call("run", small, "const a = []; while (true) a.push(new Array(1e5).fill(1))", {}).error
        assert error[:2] == ["JS_EXCEPTION", "out of memory"]
        error = s.call("run", ctx, "const b = []; for (let i = 0; i < 100; i++) b.push(new Array(2e6).fill(i))",
                       {}).error
        assert error[:2] == ["JS_EXCEPTION", "out of memory"]
        assert s.call("run", ctx, "1 + 1", {}).result[0] == 2
        # syntax checks, compiled scripts and functions
        assert s.call("check_syntax", ctx, "let x = ;", {}).error[0] == "JS_EXCEPTION"
        assert s.call("run", ctx, "'cached'", {"key": "k1"}).result[0] == "cached"
        assert s.call("run", ctx, None, {"key": "k1"}).result[0] == "cached"
        assert s.call("compile_function", ctx, "return a * b", ["a", "b"], {}).error is None
        # ES modules: the worker verifies the engine's module layout on first use, here
        dep, _, _ = s.call("module_compile", ctx, "export const v = 40;", {"identifier": "dep"}).result[:3]
        root, specifiers, _ = s.call("module_compile", ctx, "import { v } from 'dep'; globalThis.out = v + 2;",
                                     {"identifier": "root"}).result[:3]
        assert specifiers == ["dep"]
        assert s.call("module_link", ctx, root, [[root, [dep]], [dep, []]]).error is None
        assert s.call("module_evaluate", ctx, root, {}).result[0] is True
        assert s.call("run", ctx, "out", {}).result[0] == 42
        # a bug report from the worker: its traceback is formatted without reading source files
        error = s.call("run", ctx, 123, {}).error
        assert error[0] == "INTERNAL" and "Traceback" in error[2]
        # its own facts: the environment is the pool's (empty), no file can be listed
        stats = s.call("stats").result
        assert stats["env_keys"] == [] and stats["pid"] == s.worker.pid
    finally:
        s.close()
    assert s.worker.wait(10) == 0


# -- escapes -----------------------------------------------------------------------------

def _probe(tmp_path, *args) -> tuple[dict, dict, list[str]]:
    result = subprocess.run([sys.executable, str(PROBE), str(tmp_path), *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    return out["report"], out["results"], warnings


@pytest.mark.timeout(90)
def test_a_confined_process_cannot_exec_connect_open_fork_or_write(tmp_path):
    report, results, warnings = _probe(tmp_path)
    assert warnings == [] and report["degraded"] == []
    assert results["execv"] == "EPERM"
    assert results["socket"] == "EPERM" and results["socketpair"] == "EPERM"
    assert results["open_etc_passwd"] == "EACCES"
    assert results["listdir_root"] == "EACCES"
    assert results["write_file"] == "EACCES"
    assert results["fork"] == "EPERM"
    assert results["kill_parent"] == "EPERM"
    assert results["raise_nofile"].startswith("ValueError")  # setrlimit's EPERM, as Python reports it
    assert not list(tmp_path.iterdir())
    # ...while it computes, starts threads, makes ctypes callbacks, maps memory and signals itself.
    assert results["compute"] == sum(range(100_000))
    assert results["thread"] == sum(i * i for i in range(1000))
    assert results["ctypes_callback"] == 42
    assert results["anonymous_mmap"] == "allowed"
    assert results["kill_self"] == "allowed"


@pytest.mark.timeout(90)
def test_without_libseccomp_it_warns_once_and_the_rest_holds(tmp_path):
    report, results, warnings = _probe(tmp_path, "--without", "seccomp")
    assert report["seccomp"] == {"active": False}
    assert len(warnings) == 1 and "seccomp" in warnings[0] and "libseccomp" in warnings[0], warnings
    assert report["degraded"] == [warnings[0].split("worker confinement degraded: ", 1)[1]]
    # Landlock still denies every file access, exec of a file included.
    assert results["open_etc_passwd"] == "EACCES" and results["execv"] == "EACCES"
    assert results["write_file"] == "EACCES"


@pytest.mark.timeout(90)
def test_without_landlock_it_warns_once_and_the_rest_holds(tmp_path):
    report, results, warnings = _probe(tmp_path, "--without", "landlock")
    assert report["landlock"] == {"active": False}
    assert len(warnings) == 1 and "Landlock" in warnings[0], warnings
    assert results["open_etc_passwd"] == "allowed"  # what Landlock was for
    # seccomp and the rlimits still hold: no exec, no socket, no file grows.
    assert results["execv"] == "EPERM" and results["socket"] == "EPERM" and results["fork"] == "EPERM"
    assert results["write_file"] == "EFBIG"


# -- the debugging opt-out ---------------------------------------------------------------

@pytest.mark.timeout(60)
def test_sandbox_false_turns_confinement_off_and_says_so(caplog):
    with caplog.at_level(logging.WARNING, logger="isolate.sandbox"):
        z = Zygote(sandbox=False, worker_memory_limit=256 * 1024 * 1024)
    try:
        assert any("confinement is off" in r.getMessage() for r in caplog.records)
        s = Session(z.spawn("debug"))
        try:
            report = s.hello()["sandbox"]
            assert report == {"enabled": False, "rlimits": {"data": 256 * 1024 * 1024}}
            assert _status(s.worker.pid)["Seccomp"].strip() == "0"
            ctx = s.call("create_context", {}).result
            assert s.call("run", ctx, "'still ' + 'works'", {}).result[0] == "still works"
        finally:
            s.close()
    finally:
        z.close()
