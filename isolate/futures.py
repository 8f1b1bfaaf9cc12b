"""The one shape for everything Node makes a Promise: a Future you can wait on or await.

``isolate.Future`` is a ``concurrent.futures.Future`` (``.result(timeout)``,
``.done()``, callbacks, ``concurrent.futures.wait``) that is also awaitable
from asyncio without blocking the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, Callable

__all__ = ["Future", "run_in_thread"]


class Future(concurrent.futures.Future):
    def __await__(self):
        return asyncio.wrap_future(self).__await__()


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
