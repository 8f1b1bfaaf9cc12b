"""What runs inside the Dask workers: the pool plugin and the tasks (chunks, calls).

Every function here is sent to the workers by reference (``isolate.dask.worker``
must be importable there: the same isolate version, with the extra). A task
never raises for a job's own failure; it raises ``distributed.Reschedule``
when its worker's pool is closing (the chunk runs elsewhere).
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import threading
import time
from typing import Any

import distributed
from distributed.diagnostics.plugin import WorkerPlugin

from ..api import Script
from ..batch import jsonable
from ..context import JSHandle
from ..errors import IsolateError, PoolClosedError, UnsupportedError
from ..pool import Pool

__all__ = ["IsolatePoolPlugin", "ClusterError", "ChunkTimeoutError"]

# How often a chunk starts over on a fresh pool (another chunk's deadline replaced it) before
# it gives up: each start over runs only the jobs that have no record yet.
_POOL_ATTEMPTS = 10


class ClusterError(IsolateError):
    """The Dask cluster could not be reached, started, or set up for isolate."""

    code = "ERR_ISOLATE_CLUSTER"


class ChunkTimeoutError(IsolateError):
    """A chunk ran past its deadline; the jobs it had not finished were stopped."""

    code = "ERR_ISOLATE_CHUNK_TIMEOUT"


# -- the plugin ---------------------------------------------------------------------------

class IsolatePoolPlugin(WorkerPlugin):
    """Starts an isolate :class:`Pool` in a Dask worker at setup; closes it at teardown.

    Idempotent: registering it again under the same name keeps the running
    pool. ``size`` defaults to the Dask worker's thread count. The Dask
    nanny measures only its worker's own RSS, never the isolate workers
    (children of the pool's zygote), so unless ``worker_memory_limit`` is
    given each isolate worker is capped at an equal share of the Dask
    worker's memory limit: the pool, with its spares, stays inside it.
    """

    idempotent = True

    def __init__(self, name: str, pool_options: dict):
        self.name = name
        self.pool_options = dict(pool_options)
        self._pool: Pool | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._memory_limit: int | None = None
        self._nthreads = 1

    def __getstate__(self):
        return {"name": self.name, "pool_options": self.pool_options}

    def __setstate__(self, state):
        self.__init__(state["name"], state["pool_options"])

    # Both run off the worker's event loop: starting or closing a pool takes a
    # moment (more on a loaded machine), and a blocked loop misses heartbeats
    # and a nanny's deadline to close (then client.restart() drops the worker).
    async def setup(self, worker) -> None:
        self._nthreads = max(1, int(getattr(worker.state, "nthreads", 1) or 1))
        self._memory_limit = getattr(getattr(worker, "memory_manager", None), "memory_limit", None) or None
        await asyncio.to_thread(self.pool)

    async def teardown(self, worker) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            await asyncio.to_thread(pool.close)

    def options(self) -> dict:
        """The pool's options with this worker's defaults filled in."""
        options = dict(self.pool_options)
        if options.get("size") is None:
            options["size"] = self._nthreads
        if options.get("worker_memory_limit") is None and self._memory_limit:
            processes = options["size"] + options.get("spare_workers", 1) + 1  # +1: the Dask worker
            options["worker_memory_limit"] = max(64 * 1024 * 1024, self._memory_limit // processes)
        return options

    def pool(self) -> Pool:
        """This worker's pool (a new one if the last was replaced); PoolClosedError after teardown."""
        with self._lock:
            if self._closed:
                raise PoolClosedError("the Dask worker's isolate pool is closed")
            if self._pool is None or self._pool.closed:
                self._pool = Pool(**self.options())
            return self._pool

    def replace(self, stale: Pool) -> None:
        """Close ``stale`` (its running calls end); the next :meth:`pool` starts a fresh one."""
        with self._lock:
            if self._pool is stale:
                self._pool = None
        stale.close()


def _plugin(name: str) -> IsolatePoolPlugin:
    worker = distributed.get_worker()
    plugin = worker.plugins.get(name)
    if not isinstance(plugin, IsolatePoolPlugin):
        # Not set up here (yet, or any more): let the scheduler place the task again.
        raise distributed.Reschedule()
    return plugin


def _script_on(pool: Pool, spec: dict | None) -> Script | None:
    """The batch script compiled on ``pool`` (each isolate worker compiles it once, by content)."""
    if spec is None:
        return None
    return Script(spec["code"], filename=spec["filename"], line_offset=spec["line_offset"],
                  column_offset=spec["column_offset"], pool=pool)


def _id_key(job_id: Any) -> Any:
    try:
        hash(job_id)
    except TypeError:
        return ("unhashable", repr(job_id))
    return (type(job_id), job_id)


def _job_id(job: Any) -> Any:
    return dict.get(job, "id") if isinstance(job, dict) else None


def _without(jobs: list, records: list[dict]) -> list:
    """The jobs that have no record yet (a record names its job by id; equal ids are interchangeable)."""
    owed = collections.Counter(_id_key(r.get("id")) for r in records)
    left = []
    for job in jobs:
        key = _id_key(_job_id(job))
        if owed[key] > 0:
            owed[key] -= 1
        else:
            left.append(job)
    return left


def _holds_handle(value: Any, seen: set) -> bool:
    if isinstance(value, JSHandle):
        return True
    if isinstance(value, (dict, list, tuple, set, frozenset)):
        if id(value) in seen:
            return False
        seen.add(id(value))
        items = itertools.chain(value.keys(), value.values()) if isinstance(value, dict) else value
        return any(_holds_handle(item, seen) for item in items)
    return False


def _portable_record(record: dict) -> dict:
    if "value" in record and _holds_handle(record["value"], set()):
        record["value"] = jsonable(record["value"])
    return record


def _deadline_record(job: Any, seconds: float, started: float) -> dict:
    return {"id": _job_id(job), "status": "timeout",
            "error": {"name": "ChunkTimeoutError", "code": ChunkTimeoutError.code, "stack": "",
                      "message": f"the job's chunk ran past its deadline ({seconds:g} s) before the job "
                                 "finished (it was stopped, or never started)"},
            "wall_ms": round((time.monotonic() - started) * 1000.0, 3), "cpu_ms": None, "memory": None,
            "pid": None}


def _run_chunk(plugin_name: str, jobs: list, options: dict, script: dict | None,
               chunk_timeout: float | None, ordered: bool) -> list[dict]:
    """One Dask task: the records of ``jobs``, by this worker's pool's own run_batch."""
    plugin = _plugin(plugin_name)
    started = time.monotonic()
    pending = list(jobs)
    records: list[dict] = []
    expired = threading.Event()
    for attempt in itertools.count():
        if not pending or expired.is_set():
            break
        if attempt == _POOL_ATTEMPTS:
            # Pools that keep closing under the chunk: this is the worker's failure, not the jobs'.
            raise ClusterError(f"the isolate pool of this Dask worker closed {attempt} times under one chunk")
        try:
            pool = plugin.pool()
        except PoolClosedError:
            raise distributed.Reschedule() from None  # this worker is closing: run it elsewhere
        timer = None
        if chunk_timeout is not None:
            left = chunk_timeout - (time.monotonic() - started)
            if left <= 0:
                break

            def expire(pool=pool):
                expired.set()
                plugin.replace(pool)  # ends every call still running; the next chunk gets a fresh pool

            timer = threading.Timer(left, expire)
            timer.daemon = True
            timer.start()
        got: list[dict] = []
        try:
            # Ordered: the whole chunk in flight, so no job waits behind a slow one to start.
            for record in pool.run_batch(pending, script=_script_on(pool, script), ordered=ordered,
                                         max_in_flight=min(len(pending), 100_000) if ordered else None,
                                         **options):
                got.append(_portable_record(record))
        except PoolClosedError:
            pass  # replaced (this chunk's deadline, or another's): what has no record runs again
        finally:
            if timer is not None:
                timer.cancel()
        records.extend(got)
        pending = _without(pending, got)
    records.extend(_deadline_record(job, chunk_timeout, started) for job in pending)
    return records


def _run_one(plugin_name: str, code: Any, context_object: Any, options: Any, kwargs: dict) -> Any:
    """One submit(): the value, or the error rebuilt on the client (see _portable_error)."""
    plugin = _plugin(plugin_name)
    try:
        pool = plugin.pool()
    except PoolClosedError:
        raise distributed.Reschedule() from None
    if isinstance(code, dict):
        code = _script_on(pool, code)
    try:
        value = pool.submit(code, context_object, options, **kwargs).result()
    except PoolClosedError:
        raise distributed.Reschedule() from None
    except BaseException as exc:
        return ("error", _portable_error(exc))
    return _outcome_of(value)


def _outcome_of(value: Any) -> tuple:
    """("ok", value) for plain data; a live handle cannot leave its Dask worker."""
    if _holds_handle(value, set()):
        return ("error", _portable_error(UnsupportedError(
            "the value holds a live handle (a function, a promise, an object by reference), which cannot "
            "leave its Dask worker; return plain data from a job run on a cluster")))
    return ("ok", value)


def _run_map_chunk(plugin_name: str, code: Any, context_objects: list, kwargs: dict) -> list:
    """A chunk of map(): every call submitted at once; an outcome per context object, in order."""
    plugin = _plugin(plugin_name)
    try:
        pool = plugin.pool()
    except PoolClosedError:
        raise distributed.Reschedule() from None
    if isinstance(code, dict):
        code = _script_on(pool, code)
    futures = [pool.submit(code, obj, **kwargs) for obj in context_objects]
    outcomes = []
    for future in futures:
        try:
            value = future.result()
        except PoolClosedError:
            for f in futures:
                f.cancel()
            raise distributed.Reschedule() from None
        except BaseException as exc:
            outcomes.append(("error", _portable_error(exc)))
            continue
        outcomes.append(_outcome_of(value))
    return outcomes


def _check_script(plugin_name: str, spec: dict) -> Any:
    plugin = _plugin(plugin_name)
    try:
        _script_on(plugin.pool(), spec)
    except PoolClosedError:
        raise distributed.Reschedule() from None
    except BaseException as exc:
        return ("error", _portable_error(exc))
    return ("ok", None)


# -- errors across processes ------------------------------------------------------------
# Not every IsolateError pickles (several take other arguments than their
# message), so an error travels as its class, message and attributes, and is
# rebuilt as the same class without running its __init__.

def _portable_error(exc: BaseException) -> tuple:
    cls = type(exc)
    state = {}
    for key, value in vars(exc).items():
        if key == "value" and value is exc:
            continue  # JSError.value is the error itself: set again on the client
        if not _holds_handle(value, set()):
            state[key] = value
    message = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
    return (cls.__module__, cls.__qualname__, message, state, "value" in vars(exc))


def _rebuild_error(portable: tuple) -> BaseException:
    import importlib

    module, qualname, message, state, had_value = portable
    try:
        cls = importlib.import_module(module)
        for part in qualname.split("."):
            cls = getattr(cls, part)
        if not (isinstance(cls, type) and issubclass(cls, BaseException)):
            raise TypeError(qualname)
        exc = cls.__new__(cls)
        BaseException.__init__(exc, message)
    except Exception:  # a class the client cannot import: the message and code survive
        exc = IsolateError(f"{qualname}: {message}")
    exc.__dict__.update(state)
    if had_value and "value" not in state:
        exc.value = exc
    return exc
