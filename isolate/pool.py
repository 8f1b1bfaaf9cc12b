"""The pool: routing, replacement and recycling of worker processes.

Where it sits::

    api / context / modules   node:vm's surface and the proxies
    pool        which worker hosts what; spares, replacement, recycling, memory  (this module)
    scheduler   every call's lifecycle, the kill ladder                          (isolate.scheduler)
    supervisor  one worker process: spawn, read, kill, reap                      (isolate.supervisor)

* **Pool** owns the workers (``size`` in rotation plus warm spares), keeps
  the table of host callables exposed to JS, replaces a worker that dies
  (a spare takes its place at once), retires workers past their task or
  RSS limits between calls, and closes everything (context manager,
  ``close()``, atexit).
* Workers come from the pool's zygote (isolate.zygote): a process exec'd
  with the pool's environment only, which forks them on request, so a
  worker holds nothing of the host; each is confined before it runs code.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from dataclasses import dataclass
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from .protocol import MAX_NESTING

from . import defaults
from .api import (
    Script, _compile_function, _create_context, _run_in_new_context, _run_in_this_context, run_in_context,
)
from .batch import (
    Dispatcher, check_in_flight, check_ordered, checked_iter, grouped_map, run_batch, settled, stream,
)
from .context import Context
from .handles import JSFunction
from .errors import (
    ContextLostError, InvalidArgTypeError, InvalidArgValueError, IsolateError, OutOfRangeError, PoolClosedError,
    UnsupportedError, WorkerCrashedError,
)
from .futures import AsyncFuture, CallThreads, Future, aiterate, run_in_thread
from .options import check_bool, check_choice, check_engine, check_int, check_timeout, describe, fmt_number, parse_size, plain
from .scheduler import Scheduler
from .supervisor import WorkerHandle, WorkerState
from .threads import start_daemon
from .zygote import Zygote

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .optiontypes import (
        BatchKwargs, CompileFunctionKwargs, CreateContextKwargs, MapKwargs, MeasureMemoryKwargs, NewContextKwargs,
        OptionsArg, RunCodeKwargs,
    )

__all__ = ["Pool", "Limits"]

# Replacements and recycling, for operators (INFO; a worker that cannot be started:
# WARNING). Records carry worker_pid, event ("replaced", "recycled", "start_failed")
# and reason; a worker's start and end are logged by isolate.supervisor.
log = logging.getLogger("isolate.pool")


def _log(level: int, event: str, pid: int | None, reason: str, message: str, *args) -> None:
    log.log(level, message, *args, extra={"worker_pid": pid, "event": event, "reason": reason,
                                          "exitcode": None, "signal": None})


@dataclass(frozen=True)
class Limits:
    """Tunables of the supervisor, each with the reason for its value."""

    # A forked worker answers its handshake in ~40 ms; 10 s covers a loaded CI
    # machine without leaving a broken pool hanging for long.
    handshake_timeout_s: float = 10.0
    # After close() asks a worker to exit (end of its input), how long it gets
    # before SIGKILL. Workers exit at once unless stuck in native code.
    close_grace_s: float = 1.0
    # How long to wait for a dead worker's exit status, to name it in errors.
    reap_timeout_s: float = 1.0
    # Host-side bound on nested host <-> worker calls (the worker has its own).
    max_nesting: int = MAX_NESTING
    # Stage 2 of a timeout: a worker that has not answered `grace` after the
    # call's deadline is killed. Stage 1 (the worker's own timer) lands within
    # a millisecond unless the script sits in one long native operation; the
    # grace covers a worker that is merely slow to answer on a loaded 2-core
    # machine (scheduling delays of tens of ms), and keeps "timeout + grace"
    # well under half a second for the common 100 ms timeouts.
    kill_grace_s: float = 0.1
    # An idle worker starts a request within microseconds (a 100 MB request
    # within a few hundred ms). One that has not started a call this long
    # after it was sent is stopped (SIGSTOP) or wedged: it is killed, and the
    # call, which never ran, runs elsewhere (or, for a lost context, fails).
    start_timeout_s: float = 1.0
    # How often the supervisor samples worker RSS against worker_memory_limit.
    # The OS cap (RLIMIT_DATA) acts at once; the sample catches what it cannot
    # see (e.g. memory a native library maps some other way) within this delay.
    rss_check_interval_s: float = 0.1
    # Reading or writing a context's globals or a handle's properties (ctx[k],
    # obj[k], keys, the dict mirror's refresh) runs script getters, setters and
    # Proxy traps, which Node runs unbounded. Here they get this timeout, with
    # the kill ladder behind it: a property access that takes a second is a
    # bug or an attack, and a caller reading a dict must get control back.
    access_timeout_s: float = 1.0
    # Compiling (Script(), compile_function, the syntax check of a function
    # body) runs no script code unless a body closes its function wrapper;
    # the worker stops such a check at this bound (a SyntaxError), and the
    # kill ladder backs it. Compiling even megabytes of source takes far less.
    compile_timeout_s: float = 2.0

    def __post_init__(self):
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if name == "max_nesting":
                check_int(value, "limits.max_nesting", 1, MAX_NESTING, integral_floats=False)
                continue
            value = plain(value)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidArgTypeError(f'The "limits.{name}" field must be a number of seconds. '
                                          f"Received {describe(value)}")
            if not 0 < value <= 3600:  # False for NaN too
                raise OutOfRangeError(f'The value of "limits.{name}" is out of range. It must be > 0 && <= 3600 '
                                      f"(seconds). Received {fmt_number(value)}")
            object.__setattr__(self, name, value)  # the exact number, not a caller's subclass


def _check_env(env: Any) -> dict[str, str]:
    """The workers' environment: a dict of str to str, copied as exact strs."""
    if env is None:
        return {}
    if not isinstance(env, dict):
        raise InvalidArgTypeError(f'The "env" argument must be a dict of str to str. Received {describe(env)}')
    out = {}
    for key, value in dict.items(env):
        if not isinstance(key, str) or not isinstance(value, str):
            raise InvalidArgTypeError(
                f'The "env" argument must be a dict of str to str. Received an item {describe(key)}: {describe(value)}')
        key, value = plain(key), plain(value)
        if not key or "=" in key or "\0" in key or "\0" in value:
            raise InvalidArgValueError(f'The "env" argument has an invalid variable (a name must be non-empty, '
                                       f'without "=" or NUL; a value without NUL). Received {describe(key)}')
        out[key] = value
    return out


def _check_directory(value: Any, name: str) -> str:
    """An existing directory, as its real path."""
    if isinstance(value, str):
        path = plain(value)
    elif isinstance(value, os.PathLike):
        try:
            path = os.fspath(value)
        except Exception as exc:  # the caller's own __fspath__
            raise InvalidArgTypeError(f'The "{name}" argument could not be read as a path: '
                                      f"{type(exc).__name__}. Received {describe(value)}") from None
        if not isinstance(path, str):
            raise InvalidArgTypeError(f'The "{name}" argument must be a str path. Received {describe(value)}')
        path = plain(path)
    else:
        raise InvalidArgTypeError(f'The "{name}" argument must be of type str or os.PathLike. '
                                  f"Received {describe(value)}")
    try:
        path = os.path.realpath(path)
    except ValueError:  # an embedded NUL
        raise InvalidArgValueError(f'The "{name}" argument is not a valid path. Received {describe(value)}') from None
    if not os.path.isdir(path):
        raise InvalidArgValueError(f'The "{name}" argument must be an existing directory. Received {describe(path)}')
    return path


_live_pools: "weakref.WeakSet[Pool]" = weakref.WeakSet()
_atexit_registered = False
_shutting_down = False


def _close_live_pools() -> None:
    global _shutting_down
    _shutting_down = True
    for pool in list(_live_pools):
        pool.close()


def _register_atexit() -> None:
    """Close open pools at interpreter exit (once): workers and zygotes end, no zombies."""
    global _atexit_registered
    if not _atexit_registered:
        _atexit_registered = True
        atexit.register(_close_live_pools)


class Pool:
    """A supervised pool of worker processes hosting JavaScript contexts.

    ``size`` workers (default: one per CPU) are started at once. ``env``
    is the environment the workers see (default: empty; scripts never see
    it directly either). ``queue_timeout`` (ms) bounds how long a call may
    wait for its worker before it starts (see the README's guarantee).
    Workers are forked by a zygote process exec'd for this pool and confined
    (no_new_privs, rlimits, seccomp, Landlock: see :attr:`sandbox`);
    ``sandbox=False`` turns the confinement off, for debugging only.
    Thread-safe. Use as a context manager or call :meth:`close`; open pools
    are closed at interpreter exit.
    """

    def __init__(self, size: int | None = None, *, env: dict[str, str] | None = None,
                 spare_workers: int = 1, worker_memory_limit: int | str | None = None,
                 max_tasks_per_worker: int | None = None, max_worker_rss: int | str | None = None,
                 default_loader_root: str | None = None, limits: Limits | None = None,
                 queue_timeout: float | None = None, sandbox: bool = True, engine: str = "quickjs"):

        # Everything is validated before the first worker starts (a bad option
        # leaks nothing), on exact copies: no override of a caller's subclass runs.
        size = os.cpu_count() or 1 if size is None else check_int(size, "size", 1, 1024, integral_floats=False)
        spare_workers = check_int(spare_workers, "spare_workers", 0, 64, integral_floats=False)
        env = _check_env(env)
        if max_tasks_per_worker is not None:
            max_tasks_per_worker = check_int(max_tasks_per_worker, "max_tasks_per_worker", 1, 2**63,
                                             integral_floats=False)
        check_bool(sandbox, "sandbox")
        # The workers' JavaScript engine: QuickJS, or V8 (the `v8` extra; see the README's engine table).
        self.engine = check_engine(engine)
        if limits is not None and type(limits) is not Limits:
            raise InvalidArgTypeError(f'The "limits" argument must be an isolate.Limits. Received {describe(limits)}')
        # The directory constants.USE_MAIN_CONTEXT_DEFAULT_LOADER loads files from (isolate.modules):
        # import() never reaches outside it.
        if default_loader_root is not None:
            default_loader_root = _check_directory(default_loader_root, "default_loader_root")
        self.default_loader_root: str | None = default_loader_root
        self.worker_memory_limit = parse_size(worker_memory_limit, "worker_memory_limit",
                                              minimum=64 * 1024 * 1024)
        self.max_worker_rss = parse_size(max_worker_rss, "max_worker_rss", minimum=16 * 1024 * 1024)
        self.queue_timeout = check_timeout(queue_timeout, "queue_timeout", allow_inf=True)
        self.max_tasks_per_worker = max_tasks_per_worker
        self.size = size
        self.limits = limits or Limits()
        self._env = env
        self._lock = threading.RLock()   # guards the worker lists (taken before the scheduler's lock)
        self._closed = False
        self._scheduler = Scheduler(self)
        # Workers are forked by a process exec'd for this pool (isolate.zygote),
        # never by this one: they hold nothing of the host, and are confined.
        self._zygote: Zygote | None = None
        self._workers: list[WorkerHandle] = []
        # Started, handshaken workers waiting to replace one that dies, so that
        # a replacement costs the caller nothing.
        self._spares: list[WorkerHandle] = []
        self.spare_workers = spare_workers
        # Recycling: workers out of rotation, closed once their contexts are gone,
        # and draining workers whose replacement is starting.
        self._retired: list[WorkerHandle] = []
        self._replacing: set[WorkerHandle] = set()
        self._contexts: "weakref.WeakValueDictionary" = weakref.WeakValueDictionary()
        self._main_context = None
        self._main_context_loss: str | None = None   # reported once by the next run_in_this_context
        self._main_context_lock = threading.Lock()
        # Threads for submit/map/run_batch: two per worker, so each worker has
        # one call queued while it answers another.
        self._dispatcher = Dispatcher(max(2, 2 * size))
        # The a* twins' threads: one per call in flight (see isolate.futures.CallThreads).
        self._async_threads = CallThreads(max(64, 16 * size), "isolate-async")
        self._watchdog_stop = threading.Event()
        try:
            self._zygote = Zygote(self._env, worker_memory_limit=self.worker_memory_limit, sandbox=sandbox,
                                  engine=self.engine)
            for index in range(size):
                self._workers.append(self._new_worker(index))
            for _ in range(spare_workers):
                self._spares.append(self._new_worker(-1))
        except BaseException:
            self.close()
            raise
        _live_pools.add(self)
        _register_atexit()
        if self.worker_memory_limit or self.max_worker_rss:
            start_daemon(self._watch_memory, name="isolate-rss-watchdog")

    def _new_worker(self, index: int) -> WorkerHandle:
        assert self._zygote is not None  # made before the first worker, kept until close
        return WorkerHandle(self._scheduler, index, zygote=self._zygote)

    @property
    def sandbox(self) -> dict[int, dict]:
        """What each live worker actually runs under, by pid (its own report at start-up):
        ``no_new_privs``, ``rlimits``, ``seccomp``, ``landlock``, and what degraded, if anything."""
        with self._lock:
            workers_ = [w for w in self._workers if w.state is WorkerState.READY]
        return {w.pid: dict(w.info.get("sandbox") or {}) for w in workers_}

    # -- lifecycle -----------------------------------------------------------
    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> "Pool":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """:meth:`close` for asyncio: the workers are stopped on a thread, and the loop
        runs meanwhile. Cancelling the awaiting task does not stop the close."""
        import asyncio

        if self._closed:
            return
        await asyncio.shield(asyncio.get_running_loop().run_in_executor(None, self.close))

    def close(self) -> None:
        """Stop every worker; pending calls fail with PoolClosedError. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            workers_ = list(self._workers) + list(self._spares) + list(self._retired)
        self._watchdog_stop.set()
        self._scheduler.close(workers_)
        # All at once: every worker gets the same grace, not one grace each.
        for worker in workers_:
            worker.begin_close()
        grace_deadline = time.monotonic() + self.limits.close_grace_s
        for worker in workers_:
            worker.finish_close(grace_deadline)
        if self._zygote is not None:
            self._zygote.close()
        self._dispatcher.stop()
        self._async_threads.stop()

    @property
    def closed(self) -> bool:
        return self._closed

    def worker_pids(self) -> list[int]:
        """Pids of the live workers."""
        with self._lock:
            return [w.pid for w in self._workers if w.state is WorkerState.READY]

    def _check_open(self) -> None:
        if self._closed:

            raise PoolClosedError("the pool is closed")

    def _on_worker_broken(self, worker: WorkerHandle) -> None:
        """Replace a dead worker so the pool keeps its size (its contexts are lost).

        A warm spare takes its place at once; the worker started next (a new
        spare, or the replacement itself when no spare was left) is started
        here, in the dead worker's reader thread, off every caller's path.
        """
        with self._lock:
            if self._closed or _shutting_down:
                return
            promoted = None
            if worker in self._spares:
                self._spares.remove(worker)
                slot_to_fill = None          # refill the spares
            elif worker in self._workers:
                index = self._workers.index(worker)
                if self._spares:
                    promoted = self._spares.pop(0)
                    promoted.index = worker.index
                    self._workers[index] = promoted
                    slot_to_fill = None      # the spare took the slot: refill the spares
                else:
                    slot_to_fill = index
            else:
                if worker in self._retired:
                    self._retired.remove(worker)
                return
        if promoted is not None:
            _log(logging.INFO, "replaced", worker.pid, "it died", "worker %d replaced by spare %d",
                 worker.pid, promoted.pid)
        elif slot_to_fill is not None:
            _log(logging.INFO, "replaced", worker.pid, "it died", "worker %d replaced: no spare ready, "
                 "starting a new worker", worker.pid)
        if promoted is not None:
            self._scheduler.on_worker_ready(promoted)
        self._refill(slot_to_fill)

    def _refill(self, index: int | None) -> None:
        """Start one worker: into slot ``index`` if given, else as a spare."""
        try:
            fresh = self._new_worker(-1 if index is None else index)
        except IsolateError as exc:
            _log(logging.DEBUG if self._closed else logging.WARNING, "start_failed", None, str(exc),
                 "a new worker failed to start: %s", exc)
            # Calls waiting for any worker cannot wait for one that does not come.
            self._scheduler.fail_waiting(WorkerCrashedError(-1, None, f"no live worker in the pool: {exc}"))
            return
        with self._lock:
            if self._closed:
                stale = fresh
            elif index is None:
                self._spares.append(fresh)
                stale = None
            else:
                self._workers[index] = fresh
                stale = None
        if stale is not None:
            self._scheduler.close([stale], pool=False)
            stale.begin_close()
            stale.finish_close(time.monotonic() + self.limits.close_grace_s)
        elif index is not None:
            self._scheduler.on_worker_ready(fresh)

    # -- memory and recycling ----------------------------------------------------
    def _watch_memory(self) -> None:
        """Sample worker RSS: kill a worker over worker_memory_limit, mark one over
        max_worker_rss for recycling (drained between calls, never killed mid-call)."""
        import psutil  # here, not at import: it costs a cold start ~20 ms

        while not self._watchdog_stop.wait(self.limits.rss_check_interval_s):
            with self._lock:
                workers_ = [w for w in self._workers if w.state is WorkerState.READY]
            for worker in workers_:
                try:
                    rss = psutil.Process(worker.pid).memory_info().rss
                except psutil.Error:
                    continue
                if self.worker_memory_limit and rss > self.worker_memory_limit:
                    worker.kill_for_memory(rss)
                elif self.max_worker_rss and rss > self.max_worker_rss and not worker.draining:
                    self._scheduler.recycle(worker, f"its RSS reached {rss} bytes, over max_worker_rss")
            if self._retired:
                self._close_idle_retired()

    def _after_call(self, worker: WorkerHandle) -> None:
        """Recycling check between calls (never mid-call)."""
        if self.max_tasks_per_worker and worker.tasks >= self.max_tasks_per_worker and not worker.draining:
            # (Reached mid-group: a group's jobs count as they answer.)
            self._scheduler.recycle(worker, f"it served {worker.tasks} calls (max_tasks_per_worker)")
        elif worker.draining:
            self._replace_draining(worker)  # again, if no replacement could start before
        if self._retired:
            self._close_idle_retired()

    @staticmethod
    def _log_recycled(worker: WorkerHandle) -> None:
        _log(logging.INFO, "recycled", worker.pid, worker.drain_reason, "worker %d recycled: %s; it takes "
             "no new calls and is closed once idle", worker.pid, worker.drain_reason)

    @staticmethod
    def _idle(worker: WorkerHandle) -> bool:
        return worker.live_contexts <= 0 and worker.running is None and not worker.queue and not worker.nested

    def _replace_draining(self, worker: WorkerHandle) -> None:
        """Give a draining worker's slot to its replacement now: a spare at once, else a
        fresh worker started off the caller's path.

        The old worker is drained, not killed: it finishes what it already has (the
        call it runs, the calls queued on it, its live contexts) and gets nothing
        new once its replacement serves, then it is closed (see _close_idle_retired).
        Waiting for it to be idle first kept a busy worker forever: with calls
        always queued (a `map`, a burst of `submit`) it never was, and took every
        new call while no other worker accepted them.
        """
        with self._lock:
            if self._closed or worker not in self._workers or worker in self._replacing:
                return
            if self._spares:
                spare = self._spares.pop(0)
                spare.index = worker.index
                self._workers[self._workers.index(worker)] = spare
                self._retired.append(worker)
                promoted = spare
            else:
                self._replacing.add(worker)
                promoted = None
        target: Callable[..., None]
        args: tuple[Any, ...]
        if promoted is not None:
            _log(logging.INFO, "replaced", worker.pid, worker.drain_reason, "worker %d replaced by spare %d "
                 "(recycled: %s)", worker.pid, promoted.pid, worker.drain_reason)
            self._scheduler.on_worker_ready(promoted)
            target, args = self._refill, (None,)
        else:
            target, args = self._replace_retiring, (worker,)
        start_daemon(target, args=args, name=f"isolate-recycle-{worker.pid}")

    def _replace_retiring(self, worker: WorkerHandle) -> None:
        try:
            fresh = self._new_worker(worker.index)
        except IsolateError:
            with self._lock:
                self._replacing.discard(worker)
            # Keep the draining worker (better than no worker): the calls that waited
            # for its replacement go to it.
            self._scheduler.on_worker_ready(worker)
            return
        with self._lock:
            if self._closed or worker not in self._workers:
                stale = fresh
            else:
                # The slot first: the scheduler reads these without this lock, and a
                # moment with neither the replacement pending nor in the slot would
                # let the draining worker take a new call.
                self._workers[self._workers.index(worker)] = fresh
                self._retired.append(worker)
                stale = None
            self._replacing.discard(worker)
        if stale is not None:
            self._scheduler.close([stale], pool=False)
            stale.begin_close()
            stale.finish_close(time.monotonic() + self.limits.close_grace_s)
        else:
            _log(logging.INFO, "replaced", worker.pid, worker.drain_reason, "worker %d replaced by %d "
                 "(recycled: %s)", worker.pid, fresh.pid, worker.drain_reason)
            self._scheduler.on_worker_ready(fresh)
        self._close_idle_retired()

    def _close_idle_retired(self) -> None:
        """Close retired workers whose last context is gone (they take no new ones)."""
        with self._lock:
            idle = [w for w in self._retired if self._idle(w)]
            for w in idle:
                self._retired.remove(w)
        for w in idle:
            def close(w=w):
                self._scheduler.close([w], pool=False)
                w.begin_close()
                w.finish_close(time.monotonic() + self.limits.close_grace_s)
            start_daemon(close, name=f"isolate-retire-{w.pid}")

    def _worker_memory(self, worker: WorkerHandle, eager: bool) -> dict:
        return worker.request("memory", [bool(eager)],
                              timeout_ms=self.limits.access_timeout_s * 1000)  # type: ignore[arg-type]  # ms, float

    def measure_memory(self, mode: Literal["summary", "detailed"] = "summary",
                       execution: Literal["default", "eager"] = "default", /,
                       **kwargs: Unpack[MeasureMemoryKwargs]) -> Future[dict[str, Any]]:
        """``vm.measureMemory``: an :class:`isolate.Future` of Node's result shape.

        ``{"total": {"jsMemoryEstimate": n, "jsMemoryRange": [lo, hi]}}`` over
        every context of the pool (QuickJS's own accounting: bytes in use, and
        bytes allocated as the upper end of the range); ``mode="detailed"``
        adds ``"current"`` (the main context) and ``"other"`` (one entry per
        other context). ``execution="eager"`` collects garbage first. Beyond
        Node: ``"workers"``, each worker's pid, RSS and USS (from psutil) and
        the contexts it hosts. A worker that dies meanwhile is left out.
        """

        options: dict[str, Any] = dict(kwargs)
        detailed = check_choice(options.pop("mode", mode), "options.mode", ("summary", "detailed")) == "detailed"
        eager = check_choice(options.pop("execution", execution), "options.execution", ("default", "eager")) == "eager"
        if options:
            raise InvalidArgValueError(f"The property 'options.{next(iter(options))}' is not a known option of measure_memory()")
        self._check_open()
        return run_in_thread(lambda: self._measure(detailed, eager), "isolate-measure-memory")

    def _measure(self, detailed: bool, eager: bool) -> dict:
        with self._lock:
            workers_ = [w for w in self._workers if w.state is WorkerState.READY]
        main = self._main_context
        total_used = total_alloc = 0
        current = {"jsMemoryEstimate": 0, "jsMemoryRange": [0, 0]}
        import psutil  # here, not at import: it costs a cold start ~20 ms

        other = []
        worker_reports = []
        for worker in workers_:
            try:
                figures = self._worker_memory(worker, eager)
            except (WorkerCrashedError, ContextLostError):
                continue  # died meanwhile: its contexts are gone, nothing to measure
            try:
                mem = psutil.Process(worker.pid).memory_full_info()
                rss, uss = mem.rss, getattr(mem, "uss", None)
            except psutil.Error:
                rss = uss = None
            contexts = []
            for context_id, usage in figures.items():
                if usage is None:
                    raise UnsupportedError("the engine's memory accounting is unavailable in this installation")
                used, alloc = usage["memory_used_size"], max(usage["malloc_size"], usage["memory_used_size"])
                total_used += used
                total_alloc += alloc
                entry = {"jsMemoryEstimate": used, "jsMemoryRange": [used, alloc]}
                context = self._contexts.get((id(worker), int(context_id)))
                if main is not None and context is main:
                    current = entry
                else:
                    other.append(entry)
                contexts.append({"name": context.name if context is not None else None, **entry})
            worker_reports.append({"pid": worker.pid, "rss": rss, "uss": uss, "contexts": contexts})
        result: dict[str, Any] = {"total": {"jsMemoryEstimate": total_used,
                                            "jsMemoryRange": [total_used, total_alloc]}}
        if detailed:
            result["current"] = current
            result["other"] = other
        result["workers"] = worker_reports
        return result

    # -- contexts by worker ------------------------------------------------------
    def _context_by_id(self, worker: WorkerHandle, context_id: int):
        return self._contexts.get((id(worker), context_id))

    # -- the API ---------------------------------------------------------------
    def create_context(self, context_object: dict[str, Any] | list[Any] | Context | None = None,
                       options: OptionsArg = None, /, **kwargs: Unpack[CreateContextKwargs]) -> Context:
        """Like ``vm.createContext``: see :func:`isolate.create_context`."""
        return _create_context(self, context_object, options, kwargs)

    @property
    def main_context(self):
        """The pool's persistent context for ``run_in_this_context`` (created on first use).

        If its worker dies, the next use gets a new main context (its state
        is gone); ``run_in_this_context`` reports the loss once, with
        ContextLostError, before the new one serves.
        """
        # Its own lock, not the pool's: creating it is a round trip, and a
        # Context finalizer (run by the garbage collector on whatever thread,
        # even a reader thread that this round trip waits for) takes the pool's.
        with self._main_context_lock:
            context = self._main_context
            if context is None or context._lost_reason is not None:
                if context is not None:
                    self._main_context_loss = context._lost_reason
                self._main_context = Context._create(self, None, name="main", origin="")
            return self._main_context

    def _take_main_context_loss(self) -> str | None:
        """The reason the main context was lost, if not reported yet (then it is, once)."""
        with self._main_context_lock:
            context = self._main_context
            if context is not None and context._lost_reason is not None:
                reason = context._lost_reason
                self._main_context = None   # the next use makes a new one
                self._main_context_loss = None
                return reason
            reason, self._main_context_loss = self._main_context_loss, None
            return reason

    def run_in_context(self, code: str, context: Context | dict[str, Any], options: OptionsArg = None, /,
                       **kwargs: Unpack[RunCodeKwargs]) -> Any:
        return run_in_context(code, context, options, **kwargs)

    def run_in_new_context(self, code: str, context_object: dict[str, Any] | list[Any] | Context | None = None,
                           options: OptionsArg = None, /, **kwargs: Unpack[NewContextKwargs]) -> Any:
        return _run_in_new_context(self, code, context_object, options, kwargs)

    def run_in_this_context(self, code: str, options: OptionsArg = None, /, **kwargs: Unpack[RunCodeKwargs]) -> Any:
        return _run_in_this_context(self, code, options, kwargs)

    def compile_function(self, code: str, params: Sequence[str] = (), options: OptionsArg = None, /,
                         **kwargs: Unpack[CompileFunctionKwargs]) -> JSFunction:
        return _compile_function(self, code, params, options, kwargs)

    # -- futures and asyncio ------------------------------------------------------
    # One shape: every call that can take a while has a twin that returns an
    # isolate.Future at once. A Future is a concurrent.futures.Future (wait on
    # it, pass it to concurrent.futures.wait/as_completed) and is awaitable
    # (`await pool.arun_in_new_context(...)` never blocks the event loop);
    # cancelling it, or the asyncio task awaiting it, stops the call. The a*
    # twins return an AsyncFuture, a Future that is also a coroutine
    # (asyncio.create_task and TaskGroup take it), run on threads of their own
    # (one per call in flight), so a call waiting on a busy worker never holds
    # up one for an idle worker.

    def submit(self, code_or_script: str | Script, context_object: dict[str, Any] | None = None,
               options: OptionsArg = None, /, **kwargs: Unpack[NewContextKwargs]) -> Future[Any]:
        """Run ``code_or_script`` in a fresh context on any worker (as run_in_new_context).

        A returned promise is awaited: the future's result is its value (a
        rejection raises its reason; one that never settles,
        PromisePendingError). Like ``concurrent.futures.Executor.submit``, the call waits for a free
        worker as long as it takes unless ``queue_timeout`` (or the pool's)
        is given; its ``timeout`` counts from when it starts.
        """
        self._check_open()
        opts: dict[str, Any] = dict(kwargs)
        if "queue_timeout" not in opts and not (isinstance(options, dict) and (
                dict.__contains__(options, "queue_timeout") or dict.__contains__(options, "queueTimeout"))):
            opts["queue_timeout"] = self.queue_timeout if self.queue_timeout is not None else float("inf")
        # A job, like one of run_batch: a returned promise is awaited (isolate.batch.settled).
        run = self._new_context_call(code_or_script, context_object, options, opts)
        return self._dispatcher.submit(lambda: settled(run()))

    def _new_context_call(self, code_or_script: Any, context_object: Any, options: Any,
                          kwargs: dict[str, Any]) -> Callable[[], Any]:
        if isinstance(code_or_script, Script):
            script = code_or_script
            return lambda: _run_script_in_new_context(self, script, context_object, options, kwargs)
        return lambda: _run_in_new_context(self, code_or_script, context_object, options, kwargs)

    def arun_in_new_context(self, code: str | Script, context_object: dict[str, Any] | None = None,
                            options: OptionsArg = None, /, **kwargs: Unpack[NewContextKwargs]) -> AsyncFuture[Any]:
        """The awaitable twin of run_in_new_context (its queue wait bounded as that call's)."""
        self._check_open()
        return self._async_threads.submit(self._new_context_call(code, context_object, options, dict(kwargs)))

    def arun_in_context(self, code: str, context: Context | dict[str, Any], options: OptionsArg = None, /,
                        **kwargs: Unpack[RunCodeKwargs]) -> AsyncFuture[Any]:
        """The awaitable twin of run_in_context."""
        self._check_open()
        return self._async_threads.submit(lambda: run_in_context(code, context, options, **kwargs))

    def arun_in_this_context(self, code: str, options: OptionsArg = None, /,
                             **kwargs: Unpack[RunCodeKwargs]) -> AsyncFuture[Any]:
        """The awaitable twin of run_in_this_context."""
        self._check_open()
        return self._async_threads.submit(lambda: _run_in_this_context(self, code, options, kwargs))

    def acall(self, fn: JSFunction, *args: Any, timeout: int | None = None) -> AsyncFuture[Any]:
        """The awaitable twin of calling a JSFunction: ``await pool.acall(fn, 1, 2)``."""
        if not isinstance(fn, JSFunction):
            raise InvalidArgTypeError(f'The "fn" argument must be an isolate.JSFunction. Received {describe(fn)}')
        check_timeout(timeout, "timeout")
        self._check_open()
        return self._async_threads.submit(lambda: fn(*args, timeout=timeout))

    def map(self, code_or_script: str | Script, context_objects: Iterable[dict[str, Any] | None], *,
            timeout: int | None = None, ordered: bool = True, max_in_flight: int | None = None,
            **options: Unpack[MapKwargs]) -> Iterator[Any]:
        """Run the script once per context object; yield the completion values.

        Streams: input is consumed lazily and at most ``max_in_flight``
        (default twice the pool size) calls are in flight, so memory stays
        bounded however long the input is. ``ordered=False`` yields as calls
        complete. ``timeout`` is each script's timeout in milliseconds (as
        everywhere in isolate). A call waits for a free worker as long as it
        takes unless ``queue_timeout`` is given (the batch paces itself).
        A returned promise is awaited, as by :meth:`submit`.
        A failed call raises its error when its turn comes, like
        ``concurrent.futures.Executor.map``; the rest are cancelled.
        """

        # Checked here, at the call (the values come from a generator).
        in_flight = check_in_flight(max_in_flight, 2 * self.size)
        ordered = check_ordered(ordered)
        opts: dict[str, Any] = dict(options)
        if timeout is not None:
            opts["timeout"] = check_timeout(timeout, "timeout")
        source = checked_iter(context_objects, "context_objects")
        # Fresh-context runs go to the workers in groups where they can (isolate.jobgroups).
        grouped = grouped_map(self, code_or_script, source, opts, ordered=ordered, max_in_flight=max_in_flight)
        if grouped is not None:
            return grouped

        def values() -> Iterator[Any]:
            for future in stream(lambda obj: self.submit(code_or_script, obj, **opts), source,
                                 ordered=ordered, max_in_flight=in_flight):
                yield future.result()

        return values()

    def amap(self, code_or_script: str | Script, context_objects: Iterable[dict[str, Any] | None], *,
             timeout: int | None = None, ordered: bool = True, max_in_flight: int | None = None,
             **options: Unpack[MapKwargs]) -> AsyncIterator[Any]:
        """:meth:`map` for ``async for``: the same stream, and the event loop never waits.

        Arguments are checked at the call. Leaving the loop early (``break``,
        an exception, the task cancelled) cancels the calls in flight, which
        stops their scripts.
        """
        return aiterate(self.map(code_or_script, context_objects, timeout=timeout, ordered=ordered,
                                 max_in_flight=max_in_flight, **options), "isolate-amap")

    def run_batch(self, jobs: Iterable[Any], **options: Unpack[BatchKwargs]) -> Iterator[dict[str, Any]]:
        """One record per job; see :func:`isolate.batch.run_batch`."""
        return run_batch(self, jobs, **options)

    def arun_batch(self, jobs: Iterable[Any], **options: Unpack[BatchKwargs]) -> AsyncIterator[dict[str, Any]]:
        """:meth:`run_batch` for ``async for``: the same records, and the event loop never waits.

        Leaving the loop early cancels the jobs in flight (their scripts are stopped).
        """
        return aiterate(run_batch(self, jobs, **options), "isolate-arun-batch")

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<Pool size={self.size} workers={self.worker_pids()} {state}>"


def _run_script_in_new_context(pool, script, context_object, options, kwargs):

    opts = dict(kwargs)
    if isinstance(options, dict):
        opts.update(options)
    opts.setdefault("filename", script.filename)
    opts.setdefault("line_offset", script.line_offset)
    opts.setdefault("column_offset", script.column_offset)
    return _run_in_new_context(pool, script.code, context_object, None, opts)


defaults.register_pool_class(Pool)
