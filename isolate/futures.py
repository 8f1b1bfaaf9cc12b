"""The one shape for everything Node makes a Promise: a Future you can wait on or await.

``isolate.Future`` is a ``concurrent.futures.Future`` (``.result(timeout)``,
``.done()``, callbacks, ``concurrent.futures.wait``) that is also awaitable
from asyncio without blocking the event loop. What the ``a*`` twins return,
:class:`AsyncFuture`, is also a coroutine, so ``asyncio.create_task`` and
``TaskGroup.create_task`` take it as they take an ``async def`` call.

This module also holds the threads those calls run on (:class:`CallThreads`)
and :func:`aiterate`, which turns a blocking stream of results (``map``,
``run_batch``) into an async iterator.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
import weakref
from collections.abc import AsyncIterator, Callable, Coroutine, Generator, Iterator
from typing import Any, TypeVar

from .threads import start_daemon

__all__ = ["Future", "AsyncFuture", "CallThreads", "aiterate", "run_in_thread", "current_future",
           "running_future"]

T = TypeVar("T")

# The Future a dispatcher thread is running a call for, so that cancel() can stop it.
_current = threading.local()


def current_future() -> "Future | None":
    return getattr(_current, "future", None)


class running_future:
    """Context manager: mark ``future`` as the one this thread runs a call for."""

    def __init__(self, future: "Future"):
        self.future = future

    def __enter__(self) -> None:
        _current.future = self.future

    def __exit__(self, *exc: object) -> None:
        _current.future = None


class Future(concurrent.futures.Future[T]):
    """A concurrent.futures.Future that is also awaitable, and that can be cancelled while running.

    Cancelling a running call stops it in its worker (interrupt, then the
    kill ladder) and resolves the future as cancelled at once; awaiting it
    from asyncio and cancelling the awaiting task does the same.
    """

    _stop_running: "Callable[[], None] | None" = None  # set while a dispatcher thread runs this future's call

    def __init__(self) -> None:
        super().__init__()
        sink = getattr(_current, "sink", None)
        if sink is not None:  # made by a stream aiterate() drives: it may have to cancel it
            sink.add(self)

    def __await__(self) -> Generator[Any, None, T]:
        import asyncio  # only when awaited: asyncio is a heavy import

        return asyncio.wrap_future(self).__await__()

    # Once the outcome is in, nothing is left to stop. The stopper refers to the
    # call or job whose outcome this future holds, so kept it would make a
    # reference cycle: each finished job, with its whole reply, would then wait
    # for the cyclic garbage collector (measured: 700 objects per job of a
    # 50 KB transform; a full collection every ~75 jobs, ~1 ms of host CPU per job).
    def set_result(self, result: T) -> None:
        self._stop_running = None
        super().set_result(result)

    def set_exception(self, exception: BaseException | None) -> None:
        self._stop_running = None
        super().set_exception(exception)

    def cancel(self) -> bool:
        if super().cancel():
            return True
        # Running: stop its call, then resolve as cancelled. This reaches into
        # concurrent.futures.Future's state (stable since Python 3.8) because
        # the public API only cancels futures that have not started.
        with self._condition:  # type: ignore[attr-defined]
            if self._state != "RUNNING":  # type: ignore[attr-defined]
                return self._state in ("CANCELLED", "CANCELLED_AND_NOTIFIED")  # type: ignore[attr-defined]
            stop, self._stop_running = self._stop_running, None
            self._state = "CANCELLED_AND_NOTIFIED"
            self._condition.notify_all()  # type: ignore[attr-defined]
        if stop is not None:
            stop()
        # else: the job is between requests; its next request sees the
        # cancellation and sends nothing (WorkerHandle.request).
        for waiter in self._waiters:  # type: ignore[attr-defined]
            waiter.add_cancelled(self)
        self._invoke_callbacks()  # type: ignore[attr-defined]
        return True


class AsyncFuture(Future[T], Coroutine[Any, Any, T]):
    """What the ``a*`` twins return: an :class:`isolate.Future` that is also a coroutine.

    The call starts at once (as ``submit``'s does). ``await`` it,
    ``asyncio.create_task(...)`` or ``TaskGroup.create_task(...)`` it,
    ``asyncio.gather(...)`` it; from a thread, ``.result()`` it. Like any
    coroutine it cannot be handed to ``asyncio.wait`` directly (wrap it in a
    task). Cancelling the task that drives it stops the script.
    """

    _driver: "Generator[Any, None, T] | None" = None
    _driven_by: Any = None

    def _drive(self) -> Generator[Any, None, T]:
        # As a coroutine it is driven by one task (each plain `await` gets an iterator of its
        # own, as for any future). A second task would share the first one's iterator and end
        # with None: refused, as asyncio refuses a coroutine that is already being awaited.
        import asyncio

        try:
            task = asyncio.current_task()
        except RuntimeError:   # no running loop: driven by hand
            task = None
        # The task by weak reference: it holds this coroutine, so a strong one would be a
        # cycle (each awaited call then freed by the cyclic garbage collector only).
        if self._driver is None:
            self._driver, self._driven_by = self.__await__(), (None if task is None else weakref.ref(task))
        elif task is not (None if self._driven_by is None else self._driven_by()):
            raise RuntimeError("this isolate.AsyncFuture is already driven by another task: await that "
                               "task, or await the future itself")
        return self._driver

    def send(self, value: Any) -> Any:
        return self._drive().send(value)

    def throw(self, typ: Any, val: Any = None, tb: Any = None) -> Any:  # type: ignore[override]
        # The driving task abandons the await (it is being cancelled): the call is not wanted
        # any more. (Another task's throw is refused by _drive before it cancels anything.)
        driver = self._drive()
        self.cancel()
        if val is None and tb is None:
            return driver.throw(typ)
        return driver.throw(typ, val, tb)

    def close(self) -> None:
        driver = self._driver
        if driver is not None:
            if not self.done():
                self.cancel()
            driver.close()


class CallThreads:
    """The threads the ``a*`` twins (and the module-level ``arun_*``) run their calls on.

    One thread per call in flight, started on demand and reused once idle, up
    to ``max_threads`` (past that, calls wait for a thread in order). A call
    that waits for a busy worker thus never holds up a call for an idle one,
    and its queue deadline counts from when it was made. The threads are
    daemons: a call left running at interpreter exit does not hold the exit.
    """

    def __init__(self, max_threads: int, name: str):
        self._max_threads = max_threads
        self._name = name
        self._lock = threading.Lock()
        self._queue: "queue.SimpleQueue[tuple[AsyncFuture, Callable[[], Any]] | None]" = queue.SimpleQueue()
        self._threads = 0     # started and not ended
        self._idle = 0        # waiting on the queue with no item meant for them yet
        self._stopped = False

    def submit(self, fn: Callable[[], T]) -> AsyncFuture[T]:
        future: AsyncFuture[T] = AsyncFuture()
        item = (future, fn)
        with self._lock:
            if self._stopped:
                self._threads += 1   # a thread of its own: the call fails fast on the closed pool
            elif self._idle:
                self._idle -= 1
                self._queue.put(item)
                return future
            elif self._threads < self._max_threads:
                self._threads += 1
            else:
                self._queue.put(item)
                return future
        start_daemon(self._serve, args=(item,), name=self._name)
        return future

    def _serve(self, item: "tuple[AsyncFuture, Callable[[], Any]] | None") -> None:
        while item is not None:
            run_into(*item)
            with self._lock:
                try:
                    item = self._queue.get_nowait()   # a waiting call, or None: stop
                    continue
                except queue.Empty:
                    if self._stopped:
                        break
                    self._idle += 1
            item = self._queue.get()
        with self._lock:
            self._threads -= 1

    def stop(self) -> None:
        """End the idle threads, and the others once their call ends. Calls already
        queued still run first (they fail fast on a closed pool)."""
        with self._lock:
            self._stopped = True
            self._idle = 0
            threads = self._threads
        for _ in range(threads):
            self._queue.put(None)


def run_into(future: Future[T], fn: Callable[[], T]) -> None:
    if not future.set_running_or_notify_cancel():
        return
    with running_future(future):
        try:
            result = fn()
        except BaseException as exc:  # delivered through the future
            settle(future, exception=exc)
        else:
            settle(future, result=result)


def settle(future: Future, *, result: Any = None, exception: BaseException | None = None) -> None:
    # A future cancelled while running is already resolved (as cancelled).
    try:
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)
    except concurrent.futures.InvalidStateError:
        pass


_END = object()


async def aiterate(results: Iterator[T], name: str = "isolate-aiter") -> AsyncIterator[T]:
    """``async for`` over a blocking iterator of results (``map``, ``run_batch``).

    Each ``next()`` runs on a thread of this iteration's own, so the event
    loop never waits. Leaving the loop early (``break``, an exception, the
    task cancelled) cancels the calls the stream has in flight at once —
    their scripts are stopped — and closes the stream.
    """
    spawned: "weakref.WeakSet[Future]" = weakref.WeakSet()
    thread = CallThreads(1, name)   # one daemon thread: a generator runs on one thread at a time

    def step() -> Any:
        _current.sink = spawned   # the futures the stream makes on this thread are ours to cancel
        try:
            return next(results, _END)
        finally:
            _current.sink = None

    def finish() -> None:
        close = getattr(results, "close", None)
        if close is not None:
            close()

    try:
        while True:
            item = await thread.submit(step)
            if item is _END:
                return
            yield item
    finally:
        # A next() still waiting on its thread wakes once its futures are cancelled;
        # the stream is closed after it, on the same thread.
        for future in list(spawned):
            future.cancel()
        thread.submit(finish)
        thread.stop()


def run_in_thread(fn: Callable[[], T], name: str) -> Future[T]:
    """Run ``fn`` on a daemon thread; its outcome settles the returned Future."""
    future: Future[T] = Future()

    def target() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(fn())
        except BaseException as exc:  # delivered through the future
            future.set_exception(exc)

    start_daemon(target, name=name)
    return future
