"""The library's own threads: daemons that never take the host's SIGINT.

Python runs signal handlers in the main thread only, but the kernel delivers a
signal sent to the process to any thread that does not block it. Taken by one
of our threads (a reader blocked on a worker's pipe, a thread serving a host
call), a SIGINT sets Python's flag and wakes nobody: the main thread, waiting
for a call's outcome, runs the handler only when that wait ends by itself, so
breakOnSigint's relay (and a plain KeyboardInterrupt) came once the call had
run to its timeout. Our threads block SIGINT, which leaves it to the main
thread (and to the application's own threads).
"""

from __future__ import annotations

import signal
import threading
from typing import Any, Callable

__all__ = ["start", "start_daemon"]

_LEFT_TO_MAIN = frozenset((signal.SIGINT,))


def start(thread: threading.Thread) -> threading.Thread:
    """Start ``thread`` blocking SIGINT.

    The mask is set around ``start()`` (a new thread inherits its creator's), so
    the thread never runs a moment without it; the creator's mask is restored
    at once, and a SIGINT that arrived meanwhile is delivered then, not lost.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _LEFT_TO_MAIN)
    try:
        thread.start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return thread


def start_daemon(target: Callable[..., Any], *, name: str, args: tuple = ()) -> threading.Thread:
    """Start ``target(*args)`` on a daemon thread that blocks SIGINT (see :func:`start`)."""
    return start(threading.Thread(target=target, args=args, name=name, daemon=True))
