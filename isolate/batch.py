"""Work in bulk: futures, streaming map, asyncio twins and job records.

Sits on top of the pool's blocking calls. A small set of dispatcher threads
(twice the pool size, so each worker has a call queued while it answers
another) runs submitted calls; each call's :class:`isolate.Future` can be
waited on, awaited, passed to ``concurrent.futures.wait``/``as_completed``,
and cancelled — a running call is then stopped in its worker (interrupt, then
the kill ladder), so cancelling always resolves the future promptly.

``run_batch`` turns each job into a record (``id``, ``status``, ``value`` or
``error``, ``wall_ms``, ``cpu_ms``, ``memory``, ``pid``); a job's failure never
stops the batch.
"""

from __future__ import annotations

import base64
import collections
import concurrent.futures
import datetime as _dt
import functools
import math
import queue
import threading
import time
from typing import Any, Callable, Iterable, Iterator

from .protocol.values import (
    BigInt, JSDate, JSRegExp, JSSet, JSSymbol, JSTypedArray, Unhashable, UndefinedType, bigint_decimal,
)

from .errors import (
    ContextLostError, InvalidArgTypeError, PoolClosedError, PromisePendingError, JSError, JSMemoryError,
    ScriptNotCached, ScriptTimeoutError, WorkerCrashedError, WorkerMemoryError,
)
from .api import Script
from .context import Context, _snapshot
from .handles import JSFunction, JSHandle, JSPromise, queue_bound
from .futures import Future, run_into
from .jobgroups import GROUP_SIZE, Job, finish_job, run_group
from .scripts import ScriptSource
from .options import (
    ContextOptions, check_int, check_str, compile_options, describe, fmt_number, parse_size,
    run_options,
)
from .threads import start_daemon

__all__ = ["Dispatcher", "run_batch", "jsonable", "settled", "JOB_STATUSES"]

JOB_STATUSES = ("ok", "error", "timeout", "memory", "crashed", "invalid")

class Dispatcher:
    """Threads that run submitted calls against a pool (started on first use)."""

    def __init__(self, threads: int, name: str = "isolate-dispatch"):
        self._threads = threads
        self._name = name
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._started = False
        self._lock = threading.Lock()

    def submit(self, fn: Callable[[], Any]) -> Future:
        future = Future()
        with self._lock:
            if not self._started:
                for i in range(self._threads):
                    start_daemon(self._run, name=f"{self._name}-{i}")
                self._started = True
        self._queue.put((fn, future))
        return future

    def stop(self) -> None:
        with self._lock:
            if self._started:
                for _ in range(self._threads):
                    self._queue.put(None)
                self._started = False

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, future = item
            run_into(future, fn)


def stream(submit: Callable[[Any], Future], items: Iterable[Any], *, ordered: bool,
           max_in_flight: int) -> Iterator[Future]:
    """Yield settled futures for ``items``, keeping at most ``max_in_flight`` running.

    Input is consumed lazily, so memory stays bounded however long it is.
    On close (or an exception in the consumer) the futures still in flight
    are cancelled.
    """
    source = iter(items)
    window: collections.deque[Future] = collections.deque()
    exhausted = False

    def refill():
        nonlocal exhausted
        while not exhausted and len(window) < max_in_flight:
            try:
                item = next(source)
            except StopIteration:
                exhausted = True
                return
            window.append(submit(item))

    try:
        refill()
        while window:
            if ordered:
                future = window.popleft()
                concurrent.futures.wait([future])
            else:
                done, _ = concurrent.futures.wait(window, return_when=concurrent.futures.FIRST_COMPLETED)
                future = next(f for f in window if f in done)
                window.remove(future)
            refill()
            yield future
    finally:
        for future in window:
            future.cancel()


def check_in_flight(value: Any, default: int) -> int:
    if value is None:
        return default
    return check_int(value, "max_in_flight", 1, 100_000, integral_floats=False)


def checked_iter(items: Any, name: str) -> Iterator[Any]:
    """``iter(items)``, or a typed error naming the argument."""
    try:
        return iter(items)
    except Exception as exc:  # not iterable, or its own __iter__ failed
        raise InvalidArgTypeError(f'The "{name}" argument must be an iterable. Received {describe(items)} '
                                  f"({type(exc).__name__})") from None


def check_ordered(value: Any) -> bool:
    if not isinstance(value, bool):
        raise InvalidArgTypeError(f'The "ordered" argument must be of type bool. Received {describe(value)}')
    return value


# -- promises -----------------------------------------------------------------------

def settled(value: Any) -> Any:
    """A job's value, with a returned promise awaited, as ``isolate run`` does.

    A promise's jobs run inside the call that made it, within its timeout,
    so by now its outcome is known: its value, or its rejection raised. One
    still pending can never settle (nothing else runs in a job's fresh
    context): PromisePendingError. Reading the outcome is a property read,
    bounded as every one is (``Limits.access_timeout_s``).
    """
    if isinstance(value, JSPromise):
        return value.result()
    return value


# -- job records ------------------------------------------------------------------

def status_of(exc: BaseException) -> str:
    """The job status a failure maps to (see JOB_STATUSES)."""
    if isinstance(exc, ScriptTimeoutError):
        return "timeout"
    if isinstance(exc, (JSMemoryError, WorkerMemoryError, MemoryError)):
        return "memory"
    if isinstance(exc, (WorkerCrashedError, ContextLostError)):
        return "crashed"
    return "error"


def error_of(exc: BaseException) -> dict:
    if isinstance(exc, JSError):
        return {"name": exc.name, "message": exc.message, "stack": exc.stack}
    name = getattr(exc, "code", None) or type(exc).__name__
    return {"name": type(exc).__name__, "message": str(exc), "stack": "", "code": name}


def run_batch(pool, jobs: Iterable[Any], *, script=None, timeout: int | None = None,
              memory_limit: int | str | None = None, retries: int = 0, ordered: bool = False,
              max_in_flight: int | None = None, filename: str | None = None,
              queue_timeout: float | None = None) -> Iterator[dict]:
    """One record per job, as jobs complete (or in input order with ``ordered=True``).

    A job is ``{"id": ..., "code": "..."}``, or with ``script`` (a ``Script``
    or source string run over every job) ``{"id": ..., "context": {...}}``
    whose context becomes the globals. Each runs in a fresh context. A
    record: ``id``, ``status`` (``ok``, ``error``, ``timeout``, ``memory``,
    ``crashed``, or ``invalid`` for a malformed job), ``value`` or ``error``
    (``name``, ``message``, ``stack``), ``wall_ms``, ``cpu_ms`` (the worker's
    CPU time for the job), ``memory`` (engine bytes at the end), ``pid``.
    A job whose value is a promise is awaited (see :func:`settled`): the
    record holds what it settled with, and ``promise`` says ``"fulfilled"``,
    ``"rejected"`` (status ``error``, its reason as the error) or
    ``"pending"`` (it never settled: status ``error``).
    ``retries`` re-runs a job whose worker crashed (off by default: a script
    that crashes its worker may do it again).
    """

    # Checked here, at the call (the records come from a generator, which would
    # only check them at its first next()).
    retries = check_int(retries, "retries", 0, 1000, integral_floats=False)
    ordered = check_ordered(ordered)
    filename = check_str(filename, "filename")
    limit = parse_size(memory_limit, "memory_limit")
    # A job waits for a free worker as long as it takes unless asked otherwise:
    # the batch keeps at most max_in_flight jobs going, so only its own wait.
    run_opts = run_options({"timeout": timeout, "queue_timeout": queue_timeout if queue_timeout is not None
                            else pool.queue_timeout if pool.queue_timeout is not None else float("inf")})
    if script is not None and not isinstance(script, Script):
        script = Script(script, filename=filename or "script.js", pool=pool)
    default_compile = compile_options({"filename": filename} if filename else {})
    in_flight = check_in_flight(max_in_flight, 2 * pool.size)
    source = checked_iter(jobs, "jobs")

    def run_job(job: Any) -> dict:
        record: dict = {"id": None}
        try:
            return _run_job(job, record)
        except PoolClosedError:
            raise  # the batch is over: no record for a job that did not run
        except Exception as exc:  # even a job that cannot be read is only that job's failure
            record.update(status="invalid", error={"name": "InvalidJob", "message": f"the job could not be read: "
                                                   f"{type(exc).__name__}", "stack": ""})
            return record

    def _run_job(job: Any, record: dict) -> dict:
        record["id"] = dict.get(job, "id") if isinstance(job, dict) else None
        problem = _invalid(job, script is not None)
        if problem:
            record.update(status="invalid", error={"name": "InvalidJob", "message": problem, "stack": ""})
            return record
        context = dict.get(job, "context")
        sandbox = dict(dict.items(context)) if context else {}
        if script is not None:
            code, compile_opts = script.code, script._compile
        else:
            code, compile_opts = str.__str__(dict.get(job, "code")), default_compile
        ctx_opts = ContextOptions(name=f"job {_label(record['id'])}", memory_limit=limit)
        for attempt in range(retries + 1):
            start = time.monotonic()
            report: dict = {}
            record.pop("promise", None)
            try:
                # One round trip on whichever worker is free first: a job that
                # never started (its worker died first) runs elsewhere, so only
                # a job that was running when its worker died is "crashed".
                value, _ = Context._run_new(pool, sandbox, ctx_opts, code, compile_opts, run_opts,
                                            stats=True, report=report)
                if isinstance(value, JSPromise):
                    record["promise"] = "pending"  # until its outcome is read
                    value = settled(value)
                    record["promise"] = "fulfilled"
                record.update(status="ok", value=value)
            except PoolClosedError:
                raise
            except Exception as exc:  # any failure is this job's, never the batch's
                if record.get("promise") == "pending" and not isinstance(exc, PromisePendingError):
                    record["promise"] = "rejected" if isinstance(exc, JSError) else "unread"
                record.update(status=status_of(exc), error=error_of(exc))
                record.pop("value", None)
            record["wall_ms"] = round((time.monotonic() - start) * 1000.0, 3)
            stats = report.get("stats")
            record["cpu_ms"] = round(stats["cpu_ms"], 3) if stats else None
            record["memory"] = stats["memory"] if stats else None
            record["pid"] = report.get("pid")
            if record["status"] != "crashed" or attempt == retries:
                break
            record["retried"] = attempt + 1
        return record

    def submit(job):
        pool._check_open()  # stop reading input once the pool is closed
        return pool._dispatcher.submit(lambda: run_job(job))

    def records():
        for future in stream(submit, source, ordered=ordered, max_in_flight=in_flight):
            yield future.result()

    if retries:
        return records()  # a crashed job runs again: each job alone, as its own call

    # Jobs go to the workers in groups (isolate.jobgroups): a window of groups.
    grouped_in_flight = check_in_flight(max_in_flight, 2 * pool.size * GROUP_SIZE)
    shared_source = ScriptSource.of(script.code, script._compile) if script is not None else None
    timeout_ms = run_opts.timeout
    queue_ms = queue_bound(pool, run_opts.queue_timeout, run_opts.timeout)

    def make(job: Any) -> _Entry:
        record: dict = {"id": None}
        try:
            record["id"] = dict.get(job, "id") if isinstance(job, dict) else None
            problem = _invalid(job, script is not None)
            if not problem:
                context = dict.get(job, "context")
                sandbox = dict(dict.items(context)) if context else {}
                if shared_source is not None:
                    source_, compile_opts = shared_source, script._compile
                else:
                    compile_opts = default_compile
                    source_ = ScriptSource.of(str.__str__(dict.get(job, "code")), compile_opts)
                ctx_opts = ContextOptions(name=f"job {_label(record['id'])}", memory_limit=limit)
                # Nothing mirrors into `sandbox` (a copy nobody sees): the worker need not send globals back.
                made = new_job(pool, None, sandbox, source_, compile_opts, run_opts, ctx_opts, True)
                if made is None:
                    return _Entry(submit(job), lambda f: f.result())
                return _Entry(made.future, functools.partial(_job_record, pool, job=made, record=record,
                                                             original=job), made)
        except PoolClosedError:
            raise
        except Exception as exc:
            problem = f"the job could not be read: {type(exc).__name__}"
        record.update(status="invalid", error={"name": "InvalidJob", "message": problem, "stack": ""})
        done: concurrent.futures.Future = concurrent.futures.Future()
        done.set_result(record)
        return _Entry(done, lambda f: f.result())

    def alone(job: Any) -> dict:
        return run_job(job)

    def _job_record(pool, future, *, job: Job, record: dict, original: Any) -> dict:
        start = time.monotonic()
        try:
            try:
                value, _ = finish_job(pool, job, future.result(), True)
            except ScriptNotCached:
                # The worker had not cached the group's script (its compile failed
                # before): this job never ran; it runs alone, with the code.
                return alone(original)
            if isinstance(value, JSPromise):
                record["promise"] = "pending"
                value = settled(value)
                record["promise"] = "fulfilled"
            record.update(status="ok", value=value)
        except PoolClosedError:
            raise
        except Exception as exc:
            if record.get("promise") == "pending" and not isinstance(exc, PromisePendingError):
                record["promise"] = "rejected" if isinstance(exc, JSError) else "unread"
            record.update(status=status_of(exc), error=error_of(exc))
            record.pop("value", None)
        wall = job.wall_ms if job.wall_ms is not None else 0.0
        record["wall_ms"] = round(wall + (time.monotonic() - start) * 1000.0, 3)
        stats = getattr(job.context, "_last_stats", None)
        record["cpu_ms"] = round(stats["cpu_ms"], 3) if stats else None
        record["memory"] = stats["memory"] if stats else None
        record["pid"] = job.worker.pid if job.worker is not None else None
        return record

    return grouped_stream(pool, make, source, ordered=ordered, max_in_flight=grouped_in_flight,
                          timeout_ms=timeout_ms, queue_timeout_ms=queue_ms)


def _label(job_id: Any) -> str:
    """A job id as a context name (no user code runs: only exact str and int are shown)."""
    if type(job_id) is str:
        return job_id[:80]
    if type(job_id) is int:
        return fmt_number(job_id)
    return f"<{type(job_id).__name__}>"


def _invalid(job: Any, with_script: bool) -> str | None:
    if not isinstance(job, dict):
        return f"a job must be an object, got {type(job).__name__}"
    if not dict.__contains__(job, "id"):
        return 'a job needs an "id"'
    context = dict.get(job, "context")
    if context is not None and not isinstance(context, dict):
        return '"context" must be an object'
    if not with_script and not isinstance(dict.get(job, "code"), str):
        return 'a job needs "code" (a string), or run the batch with a script'
    return None


def jsonable(value: Any) -> Any:
    """A JSON-ready form of a value from JS, as ``JSON.stringify`` would see it where it can.

    ``undefined``, NaN and ±Infinity become null; BigInt a decimal string;
    Dates ISO strings; Maps objects; Sets and typed arrays lists; bytes
    base64; functions and other handles a ``"[Function name]"``-style string.
    """
    seen: set[int] = set()

    def conv(v):
        if v is None or isinstance(v, (bool, str)):
            return v
        if isinstance(v, BigInt):
            return bigint_decimal(v)  # no int/str digit limit (2n ** 20000n has 6,000+ digits)
        if isinstance(v, int):
            return v
        if isinstance(v, float):
            return v if math.isfinite(v) else None
        if isinstance(v, UndefinedType):
            return None
        if id(v) in seen:
            return "[Circular]"
        if isinstance(v, (dict, list, JSSet, set)):
            seen.add(id(v))
        try:
            if isinstance(v, dict):
                return {str(k.value if isinstance(k, Unhashable) else k): conv(x) for k, x in v.items()
                        if not isinstance(x, UndefinedType)}
            if isinstance(v, (list, tuple)):
                return [conv(x) for x in v]
            if isinstance(v, (set, JSSet)):
                return [conv(x.value if isinstance(x, Unhashable) else x) for x in v]
        finally:
            seen.discard(id(v))
        if isinstance(v, _dt.datetime):
            return v.isoformat().replace("+00:00", "Z")
        if isinstance(v, JSDate):
            return None
        if isinstance(v, JSRegExp):
            return {}
        if isinstance(v, JSTypedArray):
            return v.tolist() if v.kind != "BigInt64Array" and v.kind != "BigUint64Array" else [str(x) for x in v.tolist()]
        if isinstance(v, (bytes, bytearray)):
            return base64.b64encode(bytes(v)).decode()
        if isinstance(v, JSSymbol):
            return None
        if isinstance(v, JSError):
            return {"name": v.name, "message": v.message}

        if isinstance(v, JSFunction):
            return f"[Function {v.name}]" if v.name else "[Function]"
        if isinstance(v, JSHandle):
            return f"[object {v._ref.class_name}]"
        return repr(v)

    return conv(value)


# -- fresh-context jobs in groups (map and run_batch) ---------------------------------

class _Entry:
    """One input's place in a grouped stream: its future and how its result is read."""

    __slots__ = ("future", "finish", "job")

    def __init__(self, future: concurrent.futures.Future, finish: Callable[[concurrent.futures.Future], Any],
                 job: Job | None = None):
        self.future = future
        self.finish = finish
        self.job = job   # sent in a group, or None: under way already (or done)


def group_size_for(pool, max_in_flight: int) -> int:
    """Jobs per message: up to GROUP_SIZE, leaving two groups in flight per worker
    (and no more than a worker may serve before it is recycled)."""
    size = max(1, min(GROUP_SIZE, max_in_flight // (2 * pool.size)))
    return min(size, pool.max_tasks_per_worker) if pool.max_tasks_per_worker else size


def grouped_stream(pool, make: Callable[[Any], _Entry], items: Iterator[Any], *, ordered: bool,
                   max_in_flight: int, timeout_ms, queue_timeout_ms) -> Iterator[Any]:
    """Yield each input's finished result (``entry.finish(future)``), sending jobs in groups.

    ``make(item)`` gives an :class:`_Entry`: with a job, sent in a group; else
    already under way (or done). At most ``max_in_flight`` inputs are
    taken ahead, refilled a group at a time, so memory stays bounded; a partial
    group is sent at once rather than held back. On close, what is in flight is cancelled.
    """
    size = group_size_for(pool, max_in_flight)
    # Ordered: a queue in input order. Unordered: a set, and the entries that
    # finished in a queue their futures' callbacks fill (O(1) per result, where
    # concurrent.futures.wait over the window would be O(window)).
    window: collections.deque[_Entry] = collections.deque()
    running: dict[concurrent.futures.Future, _Entry] = {}
    finished: queue.SimpleQueue = queue.SimpleQueue()  # of futures: a callback that held its
    # entry would make a cycle (future -> callback -> entry -> future), each result then
    # waiting for the cyclic garbage collector
    pending: list[Job] = []
    exhausted = False

    def send():
        nonlocal pending
        if pending:
            jobs, pending = pending, []
            pool._dispatcher.submit(lambda: run_group(pool, jobs, timeout_ms, queue_timeout_ms))

    def refill():
        nonlocal exhausted
        while not exhausted and (len(window) if ordered else len(running)) < max_in_flight:
            try:
                item = next(items)
            except StopIteration:
                exhausted = True
                break
            entry = make(item)
            if ordered:
                window.append(entry)
            else:
                running[entry.future] = entry
                entry.future.add_done_callback(finished.put)
            if entry.job is not None:
                pending.append(entry.job)
                if len(pending) >= size:
                    send()
        send()

    try:
        pool._check_open()
        refill()
        while window or running:
            if ordered:
                entry = window.popleft()
            else:
                entry = running.pop(finished.get())
            if (len(window) if ordered else len(running)) <= max_in_flight - size:
                pool._check_open()
                refill()
            yield entry.finish(entry.future)  # (ordered: waits for it there)
    finally:
        for entry in list(window) + list(running.values()):
            entry.future.cancel()


def new_job(pool, mirrored: Any, globals_: dict, script: ScriptSource, compile_opts, run_opts, ctx_opts,
            stats: bool) -> Job | None:
    """A job for ``grouped_stream``: a blank Context that its answer fills in
    (``mirrored``: the sandbox object its globals are mirrored into, or None).
    None for a job that must run alone: one given a host callable, whose calls
    back into Python need the lone path's serving."""
    context = Context._blank(pool, mirrored, ctx_opts.name, ctx_opts.origin, ctx_opts.memory_limit)
    params = {"name": context.name, "origin": context.origin, "memory_limit": ctx_opts.memory_limit,
              "code_generation": ctx_opts.code_generation,
              "globals": context._encode_globals(globals_)}
    if context._host_functions:
        return None
    options = context._run_options(compile_opts, run_opts, stats)
    options.pop("queue_timeout", None)  # the host's own bound, not the worker's
    return Job(Future(), context, params, script, options, compile_opts)


def grouped_map(pool, code_or_script: Any, source: Iterator[Any], opts: dict, *, ordered: bool,
                max_in_flight: int | None) -> Iterator[Any] | None:
    """``Pool.map`` with its runs sent in groups, or None where each must run alone
    (options it cannot check once for all, ``break_on_sigint``, dynamic ``import()``)."""
    from .api import _check_context_object, _split_options
    from .context import context_of, contextify

    from .options import check_code, context_options, finish

    opts = dict(opts)
    if isinstance(code_or_script, Script):
        script = code_or_script
        code = script.code
        opts.setdefault("filename", script.filename)
        opts.setdefault("line_offset", script.line_offset)
        opts.setdefault("column_offset", script.column_offset)
    elif isinstance(code_or_script, str):
        code = code_or_script
    else:
        return None
    if "queue_timeout" not in opts:
        opts["queue_timeout"] = pool.queue_timeout if pool.queue_timeout is not None else float("inf")
    try:
        code = check_code(code)
        all_opts, compile_opts, run_opts = _split_options(None, opts)
        ctx_opts = context_options(all_opts, prefix="context_")
        finish(all_opts, "run_in_new_context()")
    except Exception:
        return None  # each call raises it, as it would alone
    if run_opts.break_on_sigint or compile_opts.import_module_dynamically is not None:
        return None
    script_source = ScriptSource.of(code, compile_opts)
    in_flight = check_in_flight(max_in_flight, 2 * pool.size * GROUP_SIZE)

    def alone(obj: Any) -> _Entry:
        future = pool.submit(code_or_script, obj, **opts)
        return _Entry(future, lambda f: f.result())

    def make(obj: Any) -> _Entry:
        try:
            checked = _check_context_object(obj)
        except Exception:
            return alone(obj)  # its error, at its turn
        try:
            contextified = isinstance(obj, Context) or (obj is not None and context_of(obj) is not None)
        except Exception:
            contextified = True
        if contextified:
            return alone(obj)  # already a context: the code runs there
        job = new_job(pool, checked, _snapshot(checked), script_source, compile_opts, run_opts, ctx_opts, False)
        if job is None:
            return alone(obj)

        def result(future, job=job, obj=obj):
            try:
                value, context = finish_job(pool, job, future.result(), False)
            except ScriptNotCached:
                return alone(obj).future.result()  # it never ran: alone, with the code
            if obj is not None and context is not None:
                contextify(obj, context, strong=False)
            return settled(value)

        return _Entry(job.future, result, job)

    return grouped_stream(pool, make, source, ordered=ordered, max_in_flight=in_flight,
                          timeout_ms=run_opts.timeout,
                          queue_timeout_ms=queue_bound(pool, run_opts.queue_timeout, run_opts.timeout))
