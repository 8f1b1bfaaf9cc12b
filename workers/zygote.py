"""The zygote: a clean process, exec'd once by the host, that forks workers on request.

Where it sits::

    host (isolate/zygote.py) ──AF_UNIX seqpacket──▶ zygote ──fork──▶ worker (workers/child.py)

The host starts it with ``python -I`` and an environment that is exactly the
pool's ``env``, so nothing of the host (memory, environment, descriptors,
command line) is in it. It imports the engine and probes it once (the QuickJS
C API, the memory API, the bridge bytecode, the sandbox's libraries), then
waits. Every worker is a fork of this prepared, single-threaded process:
``os.fork`` here is safe, and a worker starts in a few milliseconds.

Control messages are msgpack maps, one per seqpacket (so no framing), with
descriptors as SCM_RIGHTS:

    zygote -> host  {"ready": pid, "degraded": [str], "engine": {...}}   once, first
    host -> zygote  {"spawn": id, "name": str}  + fds [worker's stdin read end,
                     worker's stdout write end, the 16-byte memfd of its shared page]
    zygote -> host  {"spawned": id, "pid": pid} + fds [pidfd of the worker]
                    {"failed": id, "reason": str}
                    {"exit": pid, "status": int}  when a worker is reaped: the exit
                     code, or minus the signal number (multiprocessing's exitcode)

End of file on the socket (the host closed it, or died) makes the zygote
SIGKILL its workers, reap them and exit. PR_SET_PDEATHSIG (SIGHUP, handled
the same way) towards the host covers a host that dies while the zygote is
busy; it is not relied on alone because it follows the host *thread* that
started the zygote (the host client keeps that thread alive as long as the
zygote).

Run as ``python -I .../workers/zygote.py`` with its start-up message in the
environment variable ``ISOLATE_ZYGOTE_CONFIG`` (see ``_bootstrap``).
"""

# Only the standard library at module level: as a script (``__main__``) this
# file loads the ``isolate``, ``isolate.protocol`` and ``isolate.workers`` packages
# from the locations the host named (``isolate``'s own __init__ imports nothing),
# and only then imports the real module as ``isolate.workers.zygote``.
from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import socket
import sys

__all__ = ["main", "CONTROL_MAX_BYTES", "SPAWN_FDS", "CONFIG_ENV"]

# Largest control message (they are a few hundred bytes).
CONTROL_MAX_BYTES = 64 * 1024
# Descriptors a spawn request carries: worker's input (read end), its output
# (write end), its shared page (memfd).
SPAWN_FDS = 3
# The host's start-up message (JSON) travels in this environment variable, not
# on the command line: then the environment block is never empty, which is
# what setproctitle needs to find the space it renames the process in (and the
# renaming overwrites that block, so /proc/<pid>/environ no longer shows it).
CONFIG_ENV = "ISOLATE_ZYGOTE_CONFIG"


def main(config: dict) -> None:
    """Serve spawn requests on the control socket until it closes; then exit."""
    import msgpack

    from . import sandbox
    from .child import WorkerConfig

    sock = socket.socket(fileno=config["socket"])
    _follow_host(config["host"])
    env = _exec_environment()
    # After reading the environment block (the title overwrites it) and before
    # changing os.environ (setproctitle finds its space through the C environ).
    _name_process("isolate-zygote")
    os.environ.clear()
    os.environ.update(env)
    # The zygote runs no script but holds the engine; it gets no core file either.
    import resource
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    engine = config.get("engine") or "quickjs"
    engine_info = _prepare_engine(engine)
    ready = sandbox.preflight() if config.get("sandbox", True) else None
    worker_config = WorkerConfig(env=env, memory_limit=config.get("memory_limit"),
                                 preflight=ready, zygote_pid=os.getpid(), engine=engine)

    # SIGCHLD wakes the loop through a pipe, so reaping waits on the same
    # select() as the socket: no polling.
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the host's Ctrl-C is the host's to handle
    # SIGHUP (our PDEATHSIG) and SIGTERM end the loop as end of file does: the
    # handler only records it (the wakeup byte breaks the select), so the
    # workers are always killed and reaped here, never left to init.
    stopping: list[int] = []
    for signum in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(signum, lambda signum, frame: stopping.append(signum))

    children: set[int] = set()

    def send(message: dict, fds: list[int] = ()) -> None:
        data = msgpack.packb(message, use_bin_type=True)
        if fds:
            socket.send_fds(sock, [data], list(fds))
        else:
            sock.send(data)

    send({"ready": os.getpid(), "degraded": list(ready.degraded) if ready else [], "engine": engine_info})
    try:
        while True:
            readable, _, _ = select.select([sock, wake_r], [], [])
            if wake_r in readable:
                _drain(wake_r)
                for pid, status in _reap(children, block=False):
                    send({"exit": pid, "status": status})
                if stopping:
                    break
            if sock in readable:
                try:
                    data, fds, _, _ = socket.recv_fds(sock, CONTROL_MAX_BYTES, SPAWN_FDS)
                except (ConnectionError, OSError):
                    data, fds = b"", []
                if not data:
                    break  # the host closed its end or died
                request = _decode(msgpack, data)
                if request is None or len(fds) != SPAWN_FDS:
                    for fd in fds:
                        os.close(fd)
                    send({"failed": request.get("spawn") if request else None,
                          "reason": f"malformed spawn request ({len(fds)} descriptors)"})
                    continue
                try:
                    pid = _fork_worker(request, fds, worker_config, [sock.fileno(), wake_r, wake_w])
                except OSError as exc:
                    send({"failed": request["spawn"], "reason": f"fork failed: {exc}"})
                    continue
                finally:
                    for fd in fds:
                        os.close(fd)  # the worker has its own copies
                children.add(pid)
                pidfd = os.pidfd_open(pid)  # before any reaping: it names exactly this child
                try:
                    send({"spawned": request["spawn"], "pid": pid}, [pidfd])
                finally:
                    os.close(pidfd)
    except (BrokenPipeError, ConnectionError):
        pass  # the host went away mid-send
    finally:
        for pid in children:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for _ in _reap(children, block=True):
            pass
    os._exit(0)


def _decode(msgpack, data: bytes) -> dict | None:
    try:
        request = msgpack.unpackb(data, raw=False)
    except Exception:  # anything undecodable is answered as malformed
        return None
    if not (isinstance(request, dict) and isinstance(request.get("spawn"), int)
            and isinstance(request.get("name", ""), str)):
        return None
    return request


def _fork_worker(request: dict, fds: list[int], config, zygote_fds: list[int]) -> int:
    from .child import run_worker

    read_fd, write_fd, memfd = fds
    pid = os.fork()
    if pid == 0:
        # The child: never returns into this loop (run_worker ends with os._exit).
        run_worker(config, request.get("name", ""), read_fd, write_fd, memfd, zygote_fds)
    return pid


def _reap(children: set[int], block: bool):
    """Yield ``(pid, exitcode)`` of each exited child (all of them when ``block``)."""
    while children:
        try:
            pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return
        except InterruptedError:
            continue
        if pid == 0:
            return
        children.discard(pid)
        yield pid, os.waitstatus_to_exitcode(status)


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _follow_host(host_pid: int) -> None:
    """Die with the host: PDEATHSIG for a sudden death, then check it has not already happened."""
    from .sandbox import PR_SET_PDEATHSIG, _Libc

    libc = _Libc()
    # SIGHUP, handled in main(): the zygote then kills and reaps its workers
    # itself (with SIGKILL they would be orphans for init to reap).
    libc.call(libc.prctl, PR_SET_PDEATHSIG, *(ctypes.c_ulong(v) for v in (signal.SIGHUP, 0, 0, 0)))
    if os.getppid() != host_pid:
        os._exit(0)


def _exec_environment() -> dict[str, str]:
    """The environment exactly as the host passed it (the pool's ``env``).

    Not ``os.environ``: Python's start-up adds to it (PEP 538 sets LC_CTYPE
    when the locale is C, as it is with an empty environment). The block the
    kernel copied at exec is still intact, and /proc shows it.
    """
    try:
        with open("/proc/self/environ", "rb") as f:
            block = f.read()
    except OSError:
        return dict(os.environ)
    env = {}
    for entry in block.split(b"\0"):
        key, sep, value = entry.partition(b"=")
        if sep:
            env[os.fsdecode(key)] = os.fsdecode(value)
    env.pop(CONFIG_ENV, None)  # the host's message to us, not the pool's environment
    return env


def _name_process(title: str) -> None:
    # setproctitle rewrites the argv area, which is what /proc/<pid>/cmdline and
    # ps show (and the environment area after it), and sets the thread name.
    import setproctitle

    setproctitle.setproctitle(title)


def _prepare_engine(name: str = "quickjs") -> dict:
    """Everything a worker would otherwise probe on its own, done once here.

    The environment is already the pool's, so what is probed here (which the
    environment can switch off) holds for every worker forked from here.
    """
    from . import engine

    usable, bridge = engine.bridge_install_status()  # binds the C API, probes the memory API
    memory_ok, memory = engine.memory_api_status()
    info = {"bridge": bridge, "bridge_bytecode": usable, "memory_api": memory, "memory_api_ok": memory_ok}
    if not usable:
        info["refused"] = engine.refusal(bridge)  # the host refuses to start the pool with this
    info["kind"] = name
    if name == "v8":
        # Checked, never imported: V8 starts threads, so only a forked worker starts it
        # (workers/child.py). QuickJS stays probed above: the bridge's syntax checks use it.
        from . import v8engine

        if not v8engine.available():
            info["refused"] = ("the v8 engine needs the STPyV8 binding, which is not installed "
                               "in the workers' Python: pip install 'isolate-vm[v8]'")
    return info


def _preload_dukpy() -> None:
    """Load dukpy's C extension without running dukpy's package ``__init__``, which
    imports dukpy's npm installer (urllib, http.client, ssl, tarfile, email): ~24 ms of
    every pool's start, for nothing a worker uses (workers/quickjs.py, dukpy_extension,
    takes the module from sys.modules). Here only, where no other code runs: an
    ``import dukpy`` afterwards would leave the package without its ``_dukpy``
    attribute (the import system sets it on a module's first load). When it cannot,
    the usual import happens later."""
    import importlib.machinery
    import importlib.util

    name = "dukpy._dukpy"
    try:
        package = importlib.util.find_spec("dukpy")  # a top-level package: found, not run
        for directory in (package.submodule_search_locations or []) if package else []:
            for suffix in importlib.machinery.EXTENSION_SUFFIXES:
                path = os.path.join(directory, "_dukpy" + suffix)
                if os.path.exists(path):
                    loader = importlib.machinery.ExtensionFileLoader(name, path)
                    module = importlib.util.module_from_spec(
                        importlib.util.spec_from_file_location(name, path, loader=loader))
                    loader.exec_module(module)
                    sys.modules[name] = module
                    return
    except (ImportError, OSError):
        pass


def _bootstrap() -> None:
    """Entry point as a script: load our packages from where the host found them, then run."""
    import importlib.util

    config = json.loads(os.environ[CONFIG_ENV])  # removed in main(), once the process is renamed
    _preload_dukpy()
    for path in config.get("paths", []):
        if path not in sys.path:
            sys.path.append(path)  # after the stdlib and site-packages: never shadows them
    for name, directory in config["packages"]:
        spec = importlib.util.spec_from_file_location(
            name, os.path.join(directory, "__init__.py"), submodule_search_locations=[directory])
        if spec is None or spec.loader is None:
            raise ImportError(f"no package {name} in {directory}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    from isolate.workers.zygote import main as real_main

    real_main(config)


if __name__ == "__main__":
    _bootstrap()
