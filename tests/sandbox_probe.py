"""Test-only entry point: confine this process as a worker is confined, then try to escape.

Run by tests/test_sandbox.py as a subprocess (confinement cannot be undone):

    python tests/sandbox_probe.py TMPDIR [--without seccomp|landlock]

applies ``workers.sandbox.confine()`` and prints one JSON object on stdout
(a pipe: RLIMIT_FSIZE=0 forbids writing to files):
``{"report": <confine's report>, "results": {attempt: "allowed" | errno name | value}}``.
``--without`` makes one measure unavailable first, to check that it degrades
with one warning (on stderr) and the others still hold.

Not part of the package: it only exists to be run by the tests.
"""

from __future__ import annotations

import ctypes
import errno
import json
import logging
import mmap
import os
import resource
import socket
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from isolate.workers import sandbox  # noqa: E402


def attempt(results: dict, name: str, action) -> None:
    try:
        value = action()
    except OSError as exc:
        results[name] = errno.errorcode.get(exc.errno, str(exc.errno))
    except ValueError as exc:  # resource.setrlimit reports EPERM as ValueError
        results[name] = f"ValueError: {exc}"
    else:
        results[name] = value if isinstance(value, (int, str)) and not isinstance(value, bool) else "allowed"


def fork_and_exit():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)


def write_file(directory: str):
    with open(os.path.join(directory, "escaped.txt"), "w") as f:
        f.write("x")


def in_thread():
    out = []
    thread = threading.Thread(target=lambda: out.append(sum(i * i for i in range(1000))))
    thread.start()
    thread.join()
    return out[0]


def callback():
    doubled = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int)(lambda x: x * 2)
    return doubled(21)


def main() -> None:
    directory = sys.argv[1]
    without = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--without" else None
    if without == "seccomp":
        sandbox._Seccomp.SONAME = "libseccomp-absent.so.0"
    elif without == "landlock":
        sandbox._SYS_LANDLOCK_CREATE_RULESET = 1023  # no such syscall: ENOSYS, as on an old kernel
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")

    report = sandbox.confine(sandbox.Policy())

    results: dict = {}
    attempt(results, "execv", lambda: os.execv(sys.executable, [sys.executable, "-c", "pass"]))
    attempt(results, "socket", lambda: socket.socket().close())
    attempt(results, "socketpair", lambda: socket.socketpair())
    attempt(results, "open_etc_passwd", lambda: open("/etc/passwd", "rb").close())
    attempt(results, "listdir_root", lambda: os.listdir("/"))
    attempt(results, "write_file", lambda: write_file(directory))
    attempt(results, "fork", fork_and_exit)
    attempt(results, "kill_parent", lambda: os.kill(os.getppid(), 0))
    attempt(results, "kill_self", lambda: os.kill(os.getpid(), 0))
    attempt(results, "raise_nofile", lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (4096, 4096)))
    attempt(results, "thread", in_thread)
    attempt(results, "compute", lambda: sum(range(100_000)))
    attempt(results, "ctypes_callback", callback)
    attempt(results, "anonymous_mmap", lambda: mmap.mmap(-1, 1 << 20).close())
    sys.stdout.write(json.dumps({"report": report, "results": results}) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
