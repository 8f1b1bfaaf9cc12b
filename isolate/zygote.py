"""The host's side of the zygote: start it, ask it for workers, learn how they end.

Where it sits::

    supervisor ──spawn(name)──▶ Zygote ──seqpacket + SCM_RIGHTS──▶ zygote process (workers/zygote.py)
        ▲                         │ reader thread                      │ fork
        └──── WorkerProcess ◀─────┘ (replies, exit reports)            ▼ worker (workers/child.py)

* :class:`Zygote` starts the zygote by exec (``python -I``, the pool's
  environment and nothing else, working directory ``/``), so the workers it
  forks hold nothing of this process. It never forks this process and never
  imports the engine. A zygote that died is started again on the next
  :meth:`Zygote.spawn` (once; a second failure raises).
* For each worker the host makes two pipes and a sealed 16-byte ``memfd``
  (the shared page, mapped here and in that worker only) and hands the
  worker's ends over; the zygote answers with the pid and a pidfd.
* One reader thread per zygote process receives replies and exit reports and
  forwards the zygote's and workers' stderr to this process's ``sys.stderr``.
  It is also the thread that starts the zygote: the zygote's
  ``PR_SET_PDEATHSIG`` follows the thread that started it, so that thread
  lives exactly as long as the zygote.
* :class:`WorkerProcess` is one worker: its pipe ends (the caller owns and
  closes them), the shared page, a pidfd for signals and waiting, and its
  exit status once the zygote reports it.

Sandbox: workers are confined (``workers/sandbox.py``) unless
``Zygote(sandbox=False)``, which is for debugging only (strace, gdb, a
worker that needs to read a file while you investigate) and logs a warning.
Measures this machine lacks are logged once per process on the
``isolate.sandbox`` logger; each worker's ``hello`` reply has the details.
"""

from __future__ import annotations

import fcntl
import importlib.util
import itertools
import json
import logging
import mmap
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import msgpack

from .errors import WorkerStartError
from .threads import start

__all__ = ["Zygote", "WorkerProcess", "ZygoteLimits", "CELL_BYTES"]

log = logging.getLogger("isolate.zygote")
sandbox_log = logging.getLogger("isolate.sandbox")

# The shared page: bytes 0-8 the msgid the host asks to stop (host writes),
# bytes 8-16 the msgid of the top-level request the worker started (worker writes).
CELL_BYTES = 16
_CONTROL_MAX_BYTES = 64 * 1024
_STDERR_TAIL_BYTES = 4096
_MAX_NAME = 64


@dataclass(frozen=True)
class ZygoteLimits:
    """Tunables, each with the reason for its value."""

    # Python start-up, importing dukpy and probing the engine take 0.1-0.3 s;
    # 30 s covers a loaded 2-core CI machine without hanging a broken install.
    start_timeout_s: float = 30.0
    # A fork and its reply take a few ms: 10 s without one means the zygote is wedged.
    spawn_timeout_s: float = 10.0
    # After the socket closes, how long the zygote gets to kill and reap its
    # workers and exit before it is killed.
    exit_grace_s: float = 5.0
    # Between a worker's exit (its pidfd turns readable) and the zygote's report
    # of its status: the zygote reaps on SIGCHLD, within milliseconds.
    report_grace_s: float = 2.0


# Degradation lines already logged by this process: each is said once.
_announced: set[str] = set()
_announced_lock = threading.Lock()


def _announce(line: str) -> None:
    with _announced_lock:
        if line in _announced:
            return
        _announced.add(line)
    sandbox_log.warning("worker confinement degraded: %s", line)


class _Exit:
    """Where the reader thread puts one worker's exit status."""

    __slots__ = ("event", "status", "orphaned")

    def __init__(self):
        self.event = threading.Event()
        self.status: int | None = None
        # The zygote died before reporting: the worker died with it (PDEATHSIG, SIGKILL).
        self.orphaned = False


class _Spawn:
    """One spawn request waiting for the zygote's answer."""

    __slots__ = ("event", "pid", "pidfd", "exit", "error")

    def __init__(self):
        self.event = threading.Event()
        self.pid = 0
        self.pidfd = -1
        self.exit: _Exit | None = None
        self.error: str | None = None


class _ZygoteGone(Exception):
    """The zygote process ended (or never started); the message says how."""


class WorkerProcess:
    """One worker forked by the zygote.

    ``read_fd`` (the worker's output) and ``write_fd`` (its input) belong to
    the caller, who closes them. ``cell`` is the host's mapping of the
    shared page. ``pidfd`` stays open until :meth:`close` (or garbage
    collection).
    """

    def __init__(self, pid: int, read_fd: int, write_fd: int, cell: mmap.mmap, pidfd: int,
                 exit: _Exit, limits: ZygoteLimits):
        self.pid = pid
        self.read_fd = read_fd
        self.write_fd = write_fd
        self.cell = cell
        self._pidfd = pidfd
        self._exit = exit
        self._limits = limits
        self._lock = threading.Lock()  # guards _pidfd against close()
        self._finalizer = weakref.finalize(self, _close_quietly, pidfd)

    def __repr__(self) -> str:
        return f"<WorkerProcess pid={self.pid} exitcode={self.exitcode}>"

    @property
    def pidfd(self) -> int:
        """The pidfd (-1 after :meth:`close`)."""
        return self._pidfd

    @property
    def exitcode(self) -> int | None:
        """The exit code, minus the signal number if a signal ended it; None while it runs."""
        return self._exit.status

    def send_signal(self, sig: int) -> bool:
        """Send ``sig``; False when the process has already exited."""
        with self._lock:
            if self._pidfd < 0 or self._exit.status is not None or _readable(self._pidfd, 0):
                return False
            try:
                signal.pidfd_send_signal(self._pidfd, sig)
            except ProcessLookupError:
                return False
            return True

    def kill(self) -> None:
        """SIGKILL; harmless if it is already gone."""
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` s for it to end; its exit status, or None if still running."""
        if self._exit.status is not None:
            return self._exit.status
        deadline = time.monotonic() + max(timeout, 0.0)
        # A duplicate, so that close() from another thread cannot pull the
        # descriptor (or a reused number) out from under select().
        with self._lock:
            watch = os.dup(self._pidfd) if self._pidfd >= 0 else -1
        if watch >= 0:
            try:
                if not _readable(watch, max(timeout, 0.0)):
                    return None
            finally:
                os.close(watch)
            # It has exited; the zygote reports the status once it has reaped it.
            grace = max(deadline - time.monotonic(), self._limits.report_grace_s)
        else:
            grace = max(deadline - time.monotonic(), 0.0)
        if not self._exit.event.wait(grace):
            return None
        if self._exit.status is None and self._exit.orphaned:
            if watch < 0:
                return None
            self._exit.status = -signal.SIGKILL
        return self._exit.status

    def close(self) -> None:
        """Release the pidfd (the caller closes the pipe ends). Idempotent."""
        with self._lock:
            pidfd, self._pidfd = self._pidfd, -1
        self._finalizer.detach()
        _close_quietly(pidfd)


class _ZygoteProcess:
    """One run of the zygote process and its reader thread."""

    def __init__(self, env: dict, memory_limit: int | None, sandbox: bool, limits: ZygoteLimits,
                 engine: str = "quickjs"):
        self._engine = engine
        self._env = env
        self._memory_limit = memory_limit
        self._sandbox = sandbox
        self._limits = limits
        self._lock = threading.Lock()        # guards _pending, _exits, gone
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, _Spawn] = {}
        self._exits: dict[int, _Exit] = {}
        self.gone: str | None = None         # why it ended, once it has
        self._ready = threading.Event()
        self.info: dict = {}
        self.pid = 0
        self._popen: subprocess.Popen | None = None
        self._stderr_tail = bytearray()
        self._sock, self._child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self._reader = threading.Thread(target=self._run, name="isolate-zygote", daemon=True)

    # -- start -----------------------------------------------------------------
    def start(self) -> None:
        """Start the zygote and wait for it to be ready; raises _ZygoteGone."""
        start(self._reader)
        if not self._ready.wait(self._limits.start_timeout_s):
            self.close()
            raise _ZygoteGone(f"the zygote was not ready within {self._limits.start_timeout_s} s")
        if self.gone is not None:
            raise _ZygoteGone(self.gone)

    def _launch(self) -> None:
        if not sys.executable:
            raise OSError("sys.executable is not set: no Python to start the zygote with")
        packages, paths = _locate_packages()
        config = {"socket": self._child_sock.fileno(), "host": os.getpid(),
                  "memory_limit": self._memory_limit, "sandbox": self._sandbox, "engine": self._engine,
                  "packages": packages, "paths": paths}
        script = os.path.join(dict(packages)["isolate.workers"], "zygote.py")
        # -I: no PYTHON* variables, no user site, no script or working directory on sys.path.
        # The start-up message goes in the environment (workers/zygote.py, CONFIG_ENV):
        # the zygote takes it out before anything reads the pool's environment.
        env = dict(self._env, ISOLATE_ZYGOTE_CONFIG=json.dumps(config))
        self._popen = subprocess.Popen(
            [sys.executable, "-I", script], env=env, cwd="/",
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            pass_fds=(self._child_sock.fileno(),), close_fds=True)
        self.pid = self._popen.pid

    # -- reader thread ---------------------------------------------------------
    def _run(self) -> None:
        try:
            self._launch()
        except Exception as exc:  # reported to start(), in the caller's thread
            self._ended(f"the zygote could not be started: {type(exc).__name__}: {exc}")
            self._child_sock.close()
            self._sock.close()
            return
        self._child_sock.close()
        err = self._popen.stderr.fileno()
        watched = [self._sock, err]
        try:
            while self._sock in watched:
                readable, _, _ = select.select(watched, [], [])
                if err in readable and not self._forward_stderr(err):
                    watched.remove(err)
                if self._sock in readable and not self._receive():
                    watched.remove(self._sock)
        except Exception as exc:  # a bug or a corrupt message: this zygote is finished
            self._ended(f"the zygote's messages could not be read: {type(exc).__name__}: {exc}")
        try:
            self._sock.shutdown(socket.SHUT_RDWR)  # the zygote kills its workers and exits
        except OSError:
            pass
        status = self._reap()
        self._ended(f"the zygote (pid {self.pid}) exited with status {status}{self._tail()}")
        # Workers die with the zygote; what they still print arrives until then.
        while err in watched and _readable(err, self._limits.exit_grace_s):
            if not self._forward_stderr(err):
                break
        self._popen.stderr.close()
        self._sock.close()

    def _receive(self) -> bool:
        try:
            data, fds, _, _ = socket.recv_fds(self._sock, _CONTROL_MAX_BYTES, 1)
        except (ConnectionError, OSError):
            return False
        if not data:
            return False
        message = msgpack.unpackb(data, raw=False)
        if not isinstance(message, dict):
            raise ValueError(f"unexpected control message {message!r:.100}")
        if fds and "spawned" not in message:
            for fd in fds:  # only a spawn reply carries a descriptor
                os.close(fd)
        if "exit" in message:
            with self._lock:
                slot = self._exits.pop(message["exit"], None)
            if slot is not None:
                slot.status = int(message["status"])
                slot.event.set()
        elif "spawned" in message:
            self._on_spawned(message, fds)
        elif "failed" in message:
            with self._lock:
                spawn = self._pending.pop(message["failed"], None)
            if spawn is not None:
                spawn.error = str(message.get("reason", "the zygote refused"))
                spawn.event.set()
        elif "ready" in message:
            self.info = message
            self._ready.set()
        else:
            raise ValueError(f"unexpected control message {message!r:.100}")
        return True

    def _on_spawned(self, message: dict, fds: list[int]) -> None:
        pid = int(message["pid"])
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            raise ValueError(f"spawn reply for pid {pid} without its pidfd")
        exit = _Exit()
        with self._lock:
            self._exits[pid] = exit  # before the next message, which may be its exit report
            spawn = self._pending.pop(message["spawned"], None)
            if spawn is not None:
                spawn.pid, spawn.pidfd, spawn.exit = pid, fds[0], exit
                spawn.event.set()
                return
        # Its requester gave up waiting: nobody will ever talk to this worker.
        try:
            signal.pidfd_send_signal(fds[0], signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.close(fds[0])

    def _forward_stderr(self, fd: int) -> bool:
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            return False
        if not chunk:
            return False
        self._stderr_tail += chunk
        del self._stderr_tail[:-_STDERR_TAIL_BYTES]
        stream = sys.stderr
        if stream is not None:
            try:
                stream.write(chunk.decode("utf-8", "replace"))
                stream.flush()
            except (OSError, ValueError):
                pass  # the host's stderr is closed or gone: the text is dropped, not the worker
        return True

    def _tail(self) -> str:
        text = bytes(self._stderr_tail).decode("utf-8", "replace").strip()
        return f"; its last output: {text[-1000:]}" if text else ""

    def _reap(self) -> int | None:
        try:
            return self._popen.wait(self._limits.exit_grace_s)
        except subprocess.TimeoutExpired:
            self._popen.kill()  # its workers follow it (PDEATHSIG)
            return self._popen.wait()

    def _ended(self, why: str) -> None:
        """The zygote is gone: fail waiting spawns; orphan the workers it had."""
        with self._lock:
            if self.gone is None:
                self.gone = why
            pending, self._pending = self._pending, {}
            exits, self._exits = self._exits, {}
        for spawn in pending.values():
            spawn.error = self.gone
            spawn.event.set()
        for slot in exits.values():
            slot.orphaned = True
            slot.event.set()
        self._ready.set()  # a start() still waiting learns why at once

    # -- spawning --------------------------------------------------------------
    def spawn(self, name: str) -> WorkerProcess:
        """Fork one worker; raises _ZygoteGone or WorkerStartError."""
        ours: list[int] = []     # the host's pipe ends: returned in the WorkerProcess
        theirs: list[int] = []   # the worker's ends and the memfd: closed once sent
        cell = None
        try:
            to_worker_r, to_worker_w = os.pipe()
            theirs.append(to_worker_r)
            ours.append(to_worker_w)
            from_worker_r, from_worker_w = os.pipe()
            ours.append(from_worker_r)
            theirs.append(from_worker_w)
            memfd = os.memfd_create("isolate-cell", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
            theirs.append(memfd)
            os.ftruncate(memfd, CELL_BYTES)
            # Fixed size for good: a worker can neither shrink the page under the
            # host's mapping (a SIGBUS here) nor grow it.
            fcntl.fcntl(memfd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
            cell = mmap.mmap(memfd, CELL_BYTES)
            spawn = self._request(name, theirs)
            worker = WorkerProcess(spawn.pid, from_worker_r, to_worker_w, cell, spawn.pidfd, spawn.exit,
                                   self._limits)
            ours.clear()
            return worker
        finally:
            for fd in ours + theirs:
                _close_quietly(fd)
            if ours and cell is not None:
                cell.close()

    def _request(self, name: str, fds: list[int]) -> _Spawn:
        spawn = _Spawn()
        with self._lock:
            if self.gone is not None:
                raise _ZygoteGone(self.gone)
            request_id = next(self._ids)
            self._pending[request_id] = spawn
        data = msgpack.packb({"spawn": request_id, "name": name}, use_bin_type=True)
        try:
            with self._send_lock:
                socket.send_fds(self._sock, [data], fds)
        except OSError as exc:
            with self._lock:
                self._pending.pop(request_id, None)
            raise _ZygoteGone(f"the zygote cannot be reached: {exc}") from None
        if not spawn.event.wait(self._limits.spawn_timeout_s):
            with self._lock:
                gave_up = self._pending.pop(request_id, None) is spawn
            if gave_up:  # a late answer is killed by the reader (see _on_spawned)
                raise WorkerStartError(f"the zygote did not answer within {self._limits.spawn_timeout_s} s")
            spawn.event.wait()  # answered meanwhile: the event is being set
        if spawn.error is not None:
            if self.gone is not None:
                raise _ZygoteGone(spawn.error)
            raise WorkerStartError(spawn.error)
        return spawn

    # -- end -------------------------------------------------------------------
    def close(self) -> None:
        """End the zygote (which SIGKILLs and reaps its workers) and reap it."""
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        if self._reader.is_alive() and self._reader is not threading.current_thread():
            self._reader.join(self._limits.exit_grace_s + 1.0)

    def forget_after_fork(self) -> None:
        """In a child forked from the host: drop this process's copies, touch nothing else."""
        self.gone = "the process forked: this copy of the zygote connection is not used"
        for sock in (self._sock, self._child_sock):
            try:
                sock.close()
            except OSError:
                pass
        if self._popen is not None and self._popen.stderr is not None:
            try:
                self._popen.stderr.close()
            except OSError:
                pass
            self._popen.returncode = 0  # not this process's child: never wait for it here


class _State:
    """A Zygote's mutable state, apart from it so a finalizer can close it."""

    def __init__(self):
        self.lock = threading.Lock()
        self.closed = False
        self.process: _ZygoteProcess | None = None

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            process, self.process = self.process, None
        if process is not None:
            process.close()


_states: "weakref.WeakSet[_State]" = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # The reader threads did not survive the fork, and the sockets are the
    # parent's: each Zygote starts a zygote of its own on its next spawn.
    for state in list(_states):
        state.lock = threading.Lock()
        if state.process is not None:
            state.process.forget_after_fork()
            state.process = None


os.register_at_fork(after_in_child=_after_fork_in_child)


class Zygote:
    """Starts workers for one pool: a clean zygote process that forks them on request.

    ``env`` is the workers' (and the zygote's) whole environment; None means
    empty. ``worker_memory_limit`` caps each worker's data segment
    (RLIMIT_DATA). ``sandbox=False`` turns confinement off, for debugging only.
    Raises :class:`~isolate.errors.WorkerStartError` when the zygote cannot start.
    """

    def __init__(self, env: Mapping[str, str] | None = None, *, worker_memory_limit: int | None = None,
                 sandbox: bool = True, limits: ZygoteLimits = ZygoteLimits(), engine: str = "quickjs"):
        env = dict(env or {})
        for key, value in env.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(f"env must map str to str, got {key!r}: {value!r}")
        if worker_memory_limit is not None and (isinstance(worker_memory_limit, bool)
                                                or not isinstance(worker_memory_limit, int)
                                                or worker_memory_limit <= 0):
            raise ValueError(f"worker_memory_limit must be a positive int or None, got {worker_memory_limit!r}")
        self._env = env
        self._memory_limit = worker_memory_limit
        self._sandbox = bool(sandbox)
        self._engine = engine  # the workers' engine ("quickjs", "v8"), validated by the pool
        self._limits = limits
        self._state = _State()
        _states.add(self._state)
        weakref.finalize(self, self._state.close)
        if not self._sandbox:
            sandbox_log.warning("worker confinement is off (sandbox=False): for debugging only")
        with self._state.lock:
            self._state.process = self._start()

    def __enter__(self) -> "Zygote":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def pid(self) -> int | None:
        """The zygote process's pid (None before a restart has happened after it died)."""
        process = self._state.process
        return process.pid if process is not None else None

    @property
    def info(self) -> dict:
        """The zygote's ready message: engine probes and sandbox degradations."""
        process = self._state.process
        return dict(process.info) if process is not None else {}

    def _start(self) -> _ZygoteProcess:
        process = _ZygoteProcess(self._env, self._memory_limit, self._sandbox, self._limits, self._engine)
        try:
            process.start()
        except _ZygoteGone as exc:
            raise WorkerStartError(str(exc)) from None
        refused = process.info.get("engine", {}).get("refused")
        if refused:  # no context could be made: every worker would fail alike
            process.close()
            raise WorkerStartError(str(refused))
        for line in process.info.get("degraded", []):
            _announce(str(line))
        log.info("zygote %d started", process.pid)
        return process

    def _current(self, restart: bool) -> _ZygoteProcess:
        with self._state.lock:
            if self._state.closed:
                raise WorkerStartError("the zygote was closed")
            process = self._state.process
            if process is None or process.gone is not None:
                if not restart:
                    raise WorkerStartError(process.gone if process else "no zygote")
                if process is not None:
                    log.warning("starting a new zygote: %s", process.gone)
                process = self._state.process = self._start()
            return process

    def spawn(self, name: str = "") -> WorkerProcess:
        """Fork a worker. Thread-safe; a few milliseconds. Raises WorkerStartError."""
        if not isinstance(name, str) or "\0" in name or len(name) > _MAX_NAME:
            raise ValueError(f"name must be a str of at most {_MAX_NAME} characters without NUL, got {name!r}")
        # A dead zygote is replaced once per call; a second death in a row is an error.
        for attempt in (1, 2):
            process = self._current(restart=True)
            try:
                return process.spawn(name)
            except _ZygoteGone as exc:
                if attempt == 2:
                    raise WorkerStartError(str(exc)) from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Kill every worker, end the zygote and reap it. Idempotent."""
        self._state.close()


def _readable(fd: int, timeout: float) -> bool:
    readable, _, _ = select.select([fd], [], [], timeout)
    return bool(readable)


def _close_quietly(fd: int) -> None:
    if fd is not None and fd >= 0:
        try:
            os.close(fd)
        except OSError:
            pass


def _package_dir(name: str) -> Path | None:
    """The directory of package ``name``, found as an import would, without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]).resolve()


def _package_root(name: str) -> Path | None:
    """The directory holding package ``name``, found as an import would, without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        return Path(list(spec.submodule_search_locations)[0]).resolve().parent
    if spec.origin:
        return Path(spec.origin).resolve().parent
    return None


def _locate_packages() -> tuple[list[list[str]], list[str]]:
    """Where the zygote loads ``isolate``, ``isolate.protocol`` and ``isolate.workers``
    from, and the directories of their dependencies (appended to its sys.path when
    its own does not have them).

    find_spec works for an installed package and an editable one (setuptools maps
    the repository's ``protocol/`` and ``workers/`` folders to these names) alike;
    failing that, the folders beside ``isolate`` (a source checkout) are used.
    """
    here = Path(__file__).resolve().parent
    packages = [["isolate", str(here)]]
    for name, folder in (("isolate.protocol", "protocol"), ("isolate.workers", "workers")):
        directory = _package_dir(name) or (here.parent / folder)
        if not (directory / "__init__.py").is_file():
            raise FileNotFoundError(f"the {name!r} package is not importable here (looked in {directory})")
        packages.append([name, str(directory)])
    if not (Path(packages[2][1]) / "zygote.py").is_file():
        raise FileNotFoundError(f"{packages[2][1]} has no zygote.py")
    paths = []
    for name in ("msgpack", "dukpy", "setproctitle"):
        root = _package_root(name)
        if root is not None and str(root) not in paths:
            paths.append(str(root))
    return packages, paths
