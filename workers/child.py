"""A worker's first moments: from a fresh fork of the zygote to serving the host.

Runs in the child right after ``os.fork()`` in ``workers/zygote.py``, in this
order: follow the zygote's death, take a name, keep only its own descriptors,
set the pool's environment, set up the worker (signal handlers, the shared
page), confine the process (``workers/sandbox.py``) and only then read the
first request. Everything the worker needs later is imported or opened before
the confinement: after it, no file can be opened, not even a Python module.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import resource
import signal
import sys
import traceback
from dataclasses import dataclass
from typing import NoReturn

from ..protocol import ProtocolError, StreamClosed

from .sandbox import PR_SET_PDEATHSIG, Policy, Preflight, _Libc, confine
from .engine_api import engine_kind
from .worker import Worker, _CriticalStream

__all__ = ["WorkerConfig", "run_worker", "CELL_BYTES"]

# The shared page: bytes 0-8 the msgid the host asks to stop (host writes),
# bytes 8-16 the msgid of the top-level request the worker started (worker writes).
CELL_BYTES = 16
# Exit status of a worker whose start-up failed (EX_SOFTWARE): the reason is on stderr.
_SETUP_FAILED = 70


@dataclass(frozen=True)
class WorkerConfig:
    """What every worker of one zygote shares."""

    env: dict                 # the pool's environment, exactly
    memory_limit: int | None  # RLIMIT_DATA (the pool's worker_memory_limit)
    preflight: Preflight | None  # the zygote's sandbox preflight; None: confinement off (debugging)
    zygote_pid: int
    engine: str = "quickjs"   # the pool's engine (workers/engine_api.py)


def run_worker(config: WorkerConfig, name: str, read_fd: int, write_fd: int, memfd: int,
               inherited: list[int]) -> NoReturn:
    """Become a worker and serve until the host closes the stream. Never returns."""
    status = 0
    try:
        _follow_parent(config.zygote_pid)
        # The zygote's signal set-up is not the worker's.
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGHUP, signal.SIGTERM):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the host, which relays what it means
        _name_process(f"isolate-worker {name}".rstrip())
        cell = mmap.mmap(memfd, CELL_BYTES)  # MAP_SHARED with the host; the mapping outlives the fd
        os.close(memfd)
        for fd in inherited:
            os.close(fd)
        _keep_only({0, 1, 2, read_fd, write_fd})
        os.environ.clear()
        os.environ.update(config.env)
        # The engine starts here, after the fork (V8 starts threads, which a fork
        # would not carry) and before confinement (it may read its data files).
        kind = engine_kind(config.engine)
        kind.start()
        worker = Worker(_CriticalStream(read_fd, write_fd), cell, kind)
        if config.preflight is not None:
            report = confine(Policy(data_limit=config.memory_limit), config.preflight)
            report["enabled"] = True
        else:
            report = {"enabled": False, "rlimits": _memory_limit_only(config.memory_limit)}
        worker.hello_extra = {"sandbox": report}
        worker.serve()
    except (StreamClosed, ProtocolError, BrokenPipeError):
        pass  # the host closed the stream, or broke it: nothing to answer
    except BaseException:  # noqa: BLE001 - the process ends here either way; say why first
        status = _SETUP_FAILED
        try:
            traceback.print_exc()
            sys.stderr.flush()
        except BaseException:  # noqa: BLE001 - stderr may be gone with the host
            pass
    finally:
        os._exit(status)


def _follow_parent(zygote_pid: int) -> None:
    """SIGKILL when the zygote dies (it is single-threaded, so its death is its thread's)."""
    libc = _Libc()
    libc.call(libc.prctl, PR_SET_PDEATHSIG, *(ctypes.c_ulong(v) for v in (signal.SIGKILL, 0, 0, 0)))
    if os.getppid() != zygote_pid:
        os._exit(0)  # it died before we could ask to follow it


def _name_process(title: str) -> None:
    import setproctitle  # loaded by the zygote already

    setproctitle.setproctitle(title)


def _keep_only(keep: set[int]) -> None:
    """Close every descriptor not in ``keep`` (close_range(2) where the kernel has it)."""
    low = 0
    for fd in sorted(keep):
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, _fd_ceiling())


def _fd_ceiling() -> int:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 1 << 20


def _memory_limit_only(memory_limit: int | None) -> dict:
    """Without confinement the pool's memory cap still holds: it is a feature, not a guard."""
    if not memory_limit:
        return {}
    resource.setrlimit(resource.RLIMIT_DATA, (memory_limit, memory_limit))
    return {"data": memory_limit}
