"""The one shape for everything Node makes a Promise: a Future you can wait on or await.

``isolate.Future`` is a ``concurrent.futures.Future`` (``.result(timeout)``,
``.done()``, callbacks, ``concurrent.futures.wait``) that is also awaitable
from asyncio without blocking the event loop.
"""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any, Callable

__all__ = ["Future", "run_in_thread", "current_future", "running_future"]

# The Future a dispatcher thread is running a call for, so that cancel() can stop it.
_current = threading.local()


def current_future() -> "Future | None":
    return getattr(_current, "future", None)


class running_future:
    """Context manager: mark ``future`` as the one this thread runs a call for."""

    def __init__(self, future: "Future"):
        self.future = future

    def __enter__(self):
        _current.future = self.future

    def __exit__(self, *exc):
        _current.future = None


class Future(concurrent.futures.Future):
    """A concurrent.futures.Future that is also awaitable, and that can be cancelled while running.

    Cancelling a running call stops it in its worker (interrupt, then the
    kill ladder) and resolves the future as cancelled at once; awaiting it
    from asyncio and cancelling the awaiting task does the same.
    """

    _stop_running = None  # set while a dispatcher thread runs this future's call

    def __await__(self):
        import asyncio  # only when awaited: asyncio is a heavy import

        return asyncio.wrap_future(self).__await__()

    def cancel(self) -> bool:
        if super().cancel():
            return True
        # Running: stop its call, then resolve as cancelled. This reaches into
        # concurrent.futures.Future's state (stable since Python 3.8) because
        # the public API only cancels futures that have not started.
        with self._condition:
            if self._state != "RUNNING":
                return self._state in ("CANCELLED", "CANCELLED_AND_NOTIFIED")
            stop = self._stop_running
            self._state = "CANCELLED_AND_NOTIFIED"
            self._condition.notify_all()
        if stop is not None:
            stop()
        # else: the job is between requests; its next request sees the
        # cancellation and sends nothing (WorkerHandle.request).
        for waiter in self._waiters:
            waiter.add_cancelled(self)
        self._invoke_callbacks()
        return True


def run_in_thread(fn: Callable[[], Any], name: str) -> Future:
    """Run ``fn`` on a daemon thread; its outcome settles the returned Future."""
    future = Future()

    def target():
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn())
        except BaseException as exc:  # delivered through the future
            future.set_exception(exc)

    threading.Thread(target=target, name=name, daemon=True).start()
    return future
