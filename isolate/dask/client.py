"""The client side: DaskPool chunks jobs, streams them to the cluster, yields records."""

from __future__ import annotations

import collections
import itertools
import math
import re
import signal
import threading
import uuid
from typing import Any, Iterable, Iterator

import dask.base
import distributed

from ..api import Script
from ..batch import check_in_flight, check_ordered, checked_iter, error_of
from ..errors import InvalidArgTypeError, InvalidArgValueError, IsolateError, PoolClosedError
from ..futures import Future
from ..futures import settle as settle_future
from ..options import check_int, check_str, check_timeout, describe, parse_size, run_options
from ..pool import Limits
from .worker import (
    ClusterError, IsolatePoolPlugin, _check_script, _job_id, _rebuild_error, _run_chunk, _run_map_chunk,
    _run_one,
)

__all__ = ["DaskPool", "DEFAULT_CHUNK_SIZE", "open_for_cli"]

# Jobs per Dask task: large enough that Dask's per-task cost (a few ms of
# scheduling and transfer) is small next to the jobs' own, small enough that
# a chunk rerun after a lost worker repeats little and both workers stay busy.
DEFAULT_CHUNK_SIZE = 256
# A chunk's default deadline, when the jobs have a timeout: every job of the
# chunk in turn on one isolate worker, each at its full timeout plus this
# much (kill grace, a worker restart), and then this slack on top.
_PER_JOB_SLACK_S = 1.0
_CHUNK_SLACK_S = 30.0
# A chunk cancelled under us (client.restart()) is sent again this many times.
_RESUBMITS = 3
# The options a Pool takes (the plugin passes them through).
_POOL_OPTIONS = ("size", "env", "spare_workers", "worker_memory_limit", "max_tasks_per_worker",
                 "max_worker_rss", "default_loader_root", "limits", "queue_timeout", "sandbox")


_LOCAL = re.compile(r"local:(\d+)")


def _connect(client_or_address: Any):
    """(client, cluster we own or None, client we own?) for a Client, an address, or ``local:N``."""
    if isinstance(client_or_address, distributed.Client):
        return client_or_address, None, False
    if not isinstance(client_or_address, str):
        raise InvalidArgTypeError('The "client_or_address" argument must be a distributed.Client or a str '
                                  f"(a scheduler address, or local:N). Received {describe(client_or_address)}")
    match = _LOCAL.fullmatch(client_or_address)
    cluster = None
    try:
        if match:
            n = check_int(int(match.group(1)), "local:N", 1, 256, integral_floats=False)
            cluster = _local_cluster(n)
            client = distributed.Client(cluster)
        else:
            client = distributed.Client(client_or_address, timeout="10s")
    except IsolateError:
        raise
    except Exception as exc:  # OSError, TimeoutError, a malformed address...
        if cluster is not None:
            cluster.close()
        raise ClusterError(f"could not connect to the Dask cluster {client_or_address!r}: "
                           f"{type(exc).__name__}: {exc}") from None
    return client, cluster, True


def _local_cluster(n: int):
    """A LocalCluster of ``n`` single-threaded worker processes that ignore SIGINT.

    Ctrl+C in a terminal reaches the whole process group; the cluster's
    workers inherit an ignored SIGINT (it survives exec), so the owner alone
    decides how to stop (``isolate batch`` stops cleanly and closes them).
    """
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        # One thread per Dask worker: the isolate pool inside it is the parallelism.
        return distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                        dashboard_address=None)
    finally:
        if previous is not None:
            signal.signal(signal.SIGINT, previous)


def _script_spec(script: Any, filename: str | None) -> dict | None:
    if script is None:
        return None
    if isinstance(script, Script):
        return {"code": script.code, "filename": script.filename, "line_offset": script.line_offset,
                "column_offset": script.column_offset}
    if not isinstance(script, str):
        raise InvalidArgTypeError(f'The "script" argument must be of type str or an isolate.Script. '
                                  f"Received {describe(script)}")
    return {"code": script, "filename": filename or "script.js", "line_offset": 0, "column_offset": 0}


class DaskPool:
    """Stateless jobs on a Dask cluster, with :class:`Pool`'s ``submit``, ``map`` and ``run_batch``.

    ``client_or_address`` is a ``distributed.Client``, a scheduler address
    (``"tcp://host:8786"``), or ``"local:N"`` for a ``LocalCluster`` of N
    worker processes (one thread each) that this pool owns and closes.
    ``pool_options`` are :class:`Pool`'s (``size``, ``spare_workers``,
    ``worker_memory_limit``, ...), for the pool in every Dask worker.
    ``chunk_size`` jobs travel per Dask task. Every job runs in a fresh
    context; contexts that live across calls stay on a local :class:`Pool`.
    """

    def __init__(self, client_or_address: Any, *, chunk_size: int = DEFAULT_CHUNK_SIZE, **pool_options: Any):
        unknown = sorted(set(pool_options) - set(_POOL_OPTIONS))
        if unknown:
            raise InvalidArgValueError(f"The property 'options.{unknown[0]}' is not an option of Pool")
        self.chunk_size = check_int(chunk_size, "chunk_size", 1, 1_000_000, integral_floats=False)
        # The pool's own checks run on the workers; the cheap ones run here too, so a bad
        # value fails at this call with the same error as Pool's.
        if pool_options.get("size") is not None:
            check_int(pool_options["size"], "size", 1, 1024, integral_floats=False)
        if "spare_workers" in pool_options:
            check_int(pool_options["spare_workers"], "spare_workers", 0, 64, integral_floats=False)
        for name, minimum in (("worker_memory_limit", 64 * 1024 * 1024), ("max_worker_rss", 16 * 1024 * 1024)):
            if pool_options.get(name) is not None:
                pool_options[name] = parse_size(pool_options[name], name, minimum=minimum)
        if pool_options.get("limits") is not None and type(pool_options["limits"]) is not Limits:
            raise InvalidArgTypeError('The "limits" argument must be an isolate.Limits. '
                                      f"Received {describe(pool_options['limits'])}")
        self.pool_options = pool_options
        self.queue_timeout = check_timeout(pool_options.get("queue_timeout"), "queue_timeout", allow_inf=True)
        self._closed = False
        self.client, self._cluster, self._owns_client = _connect(client_or_address)
        self.plugin_name = f"isolate-pool-{uuid.uuid4().hex[:12]}"
        try:
            self.client.register_plugin(IsolatePoolPlugin(self.plugin_name, pool_options), name=self.plugin_name)
        except Exception as exc:
            self._close_connection()
            if isinstance(exc, IsolateError):
                raise
            raise ClusterError(f"could not start the isolate pools on the Dask workers: "
                               f"{type(exc).__name__}: {exc}") from None

    # -- lifecycle ---------------------------------------------------------------------
    def __enter__(self) -> "DaskPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Close the pools on the workers (and the client and cluster this pool started). Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.client.status == "running":
                self.client.unregister_worker_plugin(self.plugin_name)
        except Exception:  # noqa: BLE001 - workers already gone: their pools went with them
            pass
        self._close_connection()

    def _close_connection(self) -> None:
        if self._owns_client:
            self.client.close()
        if self._cluster is not None:
            self._cluster.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise PoolClosedError("the pool is closed")

    @property
    def size(self) -> int:
        """Threads across the cluster's workers (at least 1)."""
        try:
            return max(1, sum(self.client.nthreads().values()))
        except Exception:  # noqa: BLE001 - the scheduler is unreachable: one is the honest floor
            return 1

    def __repr__(self) -> str:
        return f"<DaskPool {self.client.scheduler.address if self.client.scheduler else '?'} " \
               f"{'closed' if self._closed else 'open'}>"

    # -- one call ------------------------------------------------------------------------
    def submit(self, code_or_script, context_object=None, options=None, /, **kwargs) -> Future:
        """Run in a fresh context on some Dask worker's pool; an :class:`isolate.Future` of its value.

        As :meth:`Pool.submit`. Cancelling the future drops the task if it
        has not started; a running one ends at its own ``timeout``.
        """
        self._check_open()
        if "queue_timeout" not in kwargs and not (isinstance(options, dict) and (
                "queue_timeout" in options or "queueTimeout" in options)):
            kwargs["queue_timeout"] = self.queue_timeout if self.queue_timeout is not None else float("inf")
        code = _script_spec(code_or_script, None) if isinstance(code_or_script, Script) else code_or_script
        remote = self.client.submit(_run_one, self.plugin_name, code, context_object, options, kwargs, pure=False)
        future = Future()

        def settle(done):
            if future.cancelled():
                return
            try:
                kind, payload = done.result()
            except BaseException as exc:  # the task itself failed (KilledWorker, cancelled)
                settle_future(future, exception=ClusterError(f"the Dask task failed: {type(exc).__name__}: {exc}"))
                return
            if kind == "ok":
                settle_future(future, result=payload)
            else:
                settle_future(future, exception=_rebuild_error(payload))

        future.add_done_callback(lambda f: remote.cancel() if f.cancelled() else None)
        remote.add_done_callback(settle)
        return future

    # -- many calls -----------------------------------------------------------------------
    def map(self, code_or_script, context_objects, *, timeout=None, ordered=True, max_in_flight=None,
            chunk_size=None, **options) -> Iterator[Any]:
        """As :meth:`Pool.map`: the values in order (or as chunks complete with ``ordered=False``).

        Calls travel ``chunk_size`` at a time. A failed call raises its error
        when its turn comes; the rest are cancelled.
        """
        ordered = check_ordered(ordered)
        in_flight = check_in_flight(max_in_flight, 2 * self.size)
        size = self._chunk_size(chunk_size)
        if timeout is not None:
            options["timeout"] = check_timeout(timeout, "timeout")
        if "queue_timeout" not in options:
            options["queue_timeout"] = self.queue_timeout if self.queue_timeout is not None else float("inf")
        source = checked_iter(context_objects, "context_objects")
        code = _script_spec(code_or_script, None) if isinstance(code_or_script, Script) else code_or_script
        self._check_open()

        def run(chunk, index):
            return self.client.submit(_run_map_chunk, self.plugin_name, code, chunk, options, pure=False)

        def values():
            for _chunk, outcomes in self._stream(_chunks(source, size), run, ordered, in_flight, size):
                if isinstance(outcomes, BaseException):
                    raise ClusterError(f"a chunk of map() failed on the cluster: {type(outcomes).__name__}: "
                                       f"{outcomes}")
                for kind, payload in outcomes:
                    if kind == "ok":
                        yield payload
                    else:
                        raise _rebuild_error(payload)

        return values()

    def run_batch(self, jobs: Iterable[Any], *, script=None, timeout: int | None = None,
                  memory_limit: int | str | None = None, retries: int = 0, ordered: bool = False,
                  max_in_flight: int | None = None, filename: str | None = None,
                  queue_timeout: float | None = None, chunk_size: int | None = None,
                  chunk_timeout: float | None = None) -> Iterator[dict]:
        """One record per job, as :func:`isolate.batch.run_batch` makes them; see there.

        Jobs travel ``chunk_size`` at a time (default :data:`DEFAULT_CHUNK_SIZE`);
        at most ``max_in_flight`` jobs (default: two chunks per Dask thread)
        are on the cluster at once. ``chunk_timeout`` (seconds) is each
        chunk's deadline; by default, with a ``timeout``, it is every job of
        the chunk in turn at its full timeout, plus slack (without a timeout
        there is none: a job runs as long as it runs, as on a local pool).
        A job whose chunk passes it gets status ``timeout`` and a
        ``ChunkTimeoutError``. A value holding a live handle arrives in its
        JSON form.
        """
        # Checked here, at the call, with batch.run_batch's own checks.
        retries = check_int(retries, "retries", 0, 1000, integral_floats=False)
        ordered = check_ordered(ordered)
        filename = check_str(filename, "filename")
        limit = parse_size(memory_limit, "memory_limit")
        run_options({"timeout": timeout, "queue_timeout": queue_timeout})
        size = self._chunk_size(chunk_size)
        if chunk_timeout is not None:
            chunk_timeout = check_timeout(chunk_timeout * 1000.0 if isinstance(chunk_timeout, (int, float))
                                          and not isinstance(chunk_timeout, bool) else chunk_timeout,
                                          "chunk_timeout") / 1000.0
        elif timeout is not None:
            per_job = timeout / 1000.0 + _PER_JOB_SLACK_S
            chunk_timeout = math.ceil(size / self._pool_size()) * per_job * (retries + 1) + _CHUNK_SLACK_S
        default_flight = 2 * self.size * size
        in_flight = check_in_flight(max_in_flight, min(default_flight, 100_000))
        spec = _script_spec(script, filename)
        source = checked_iter(jobs, "jobs")
        self._check_open()
        if spec is not None:
            self._check_script(spec)  # a syntax error raises here, as Pool.run_batch's Script() does
        options = {"timeout": timeout, "memory_limit": limit, "retries": retries, "filename": filename,
                   "queue_timeout": queue_timeout}

        def run(chunk, index):
            return self.client.submit(_run_chunk, self.plugin_name, chunk, options, spec, chunk_timeout, ordered,
                                      key=_chunk_key(self.plugin_name, index, options, spec, chunk))

        def records():
            for chunk, result in self._stream(_chunks(source, size), run, ordered, in_flight, size):
                if isinstance(result, BaseException):  # the chunk could not run at all
                    yield from (_failed_record(job, result) for job in chunk)
                else:
                    yield from result

        return records()

    def check_script(self, code: str, filename: str | None = None) -> None:
        """Compile ``code`` on a Dask worker without running it; raises its JSSyntaxError."""
        self._check_open()
        self._check_script(_script_spec(code, filename))

    def _check_script(self, spec: dict) -> None:
        kind, payload = self.client.submit(_check_script, self.plugin_name, spec, pure=False).result()
        if kind == "error":
            raise _rebuild_error(payload)

    def _chunk_size(self, value: Any) -> int:
        if value is None:
            return self.chunk_size
        return check_int(value, "chunk_size", 1, 1_000_000, integral_floats=False)

    def _pool_size(self) -> int:
        size = self.pool_options.get("size")
        if size is not None:
            return size
        try:
            return max(1, min(self.client.nthreads().values()))
        except Exception:  # noqa: BLE001
            return 1

    def _stream(self, chunks: Iterator[list], run, ordered: bool, in_flight_jobs: int, size: int):
        """Yield ``(chunk, result or exception)`` per chunk, keeping about ``in_flight_jobs`` on the cluster.

        A chunk whose task was cancelled under us (``client.restart()``) is
        sent again, under the same key; one that failed (the Dask workers
        running it kept dying: KilledWorker) yields the exception.
        """
        max_chunks = max(1, in_flight_jobs // size)
        window: collections.deque = collections.deque()   # [chunk, future, resubmits, index(, result)]
        done_queue = distributed.as_completed()
        exhausted = False
        counter = itertools.count()

        def refill():
            nonlocal exhausted
            while not exhausted and len(window) < max_chunks:
                self._check_open()
                chunk = next(chunks, None)
                if chunk is None:
                    exhausted = True
                    return
                index = next(counter)
                entry = [chunk, run(chunk, index), 0, index]
                window.append(entry)
                done_queue.add(entry[1])

        def outcome(entry):
            """The chunk's result, an exception for a chunk that cannot run, or None: sent again."""
            future = entry[1]
            if future.status == "error":  # the task itself failed (KilledWorker): final
                try:
                    return future.exception() or ClusterError("the chunk's Dask task failed")
                except Exception as exc:  # noqa: BLE001
                    return ClusterError(f"the chunk's Dask task failed: {type(exc).__name__}: {exc}")
            failure: BaseException = ClusterError(f"the chunk's Dask task ended as {future.status}")
            if future.status == "finished":
                try:
                    return future.result()
                except Exception as exc:  # noqa: BLE001 - lost between done and fetch (a restart)
                    failure = exc
            # Cancelled (client.restart()), or its result was lost: the same key again.
            if entry[2] < _RESUBMITS:
                entry[2] += 1
                entry[1] = run(entry[0], entry[3])
                done_queue.add(entry[1])
                return None
            return failure

        try:
            refill()
            while window:
                future = next(done_queue)
                entry = next((e for e in window if e[1] is future), None)
                if entry is None:
                    continue  # a cancelled future we already sent again
                if ordered:
                    # Settle this one; yield from the head while the head is settled.
                    result = outcome(entry)
                    if result is None:
                        continue
                    entry.append(result)
                    while window and len(window[0]) == 5:
                        head = window.popleft()
                        head[1].release()
                        yield head[0], head[4]
                else:
                    result = outcome(entry)
                    if result is None:
                        continue
                    window.remove(entry)
                    future.release()
                    yield entry[0], result
                refill()
        finally:
            for entry in window:
                entry[1].cancel()
            done_queue.clear()


def _chunks(source: Iterator[Any], size: int) -> Iterator[list]:
    while True:
        chunk = list(itertools.islice(source, size))
        if not chunk:
            return
        yield chunk


def _chunk_key(plugin_name: str, index: int, options: dict, spec: dict | None, chunk: list) -> str:
    """The same chunk at the same place of the same batch on the same pool has the same key,
    however often it runs (and two equal chunks of one batch have two keys)."""
    return f"isolate-chunk-{index}-{dask.base.tokenize(plugin_name, options, spec, chunk)}"


def _failed_record(job: Any, exc: BaseException) -> dict:
    """The record of a job whose chunk could not run (its Dask workers kept dying)."""
    error = error_of(exc)
    error["message"] = f"the job's chunk could not run on the cluster: {error['message']}"
    return {"id": _job_id(job), "status": "crashed", "error": error, "wall_ms": None, "cpu_ms": None,
            "memory": None, "pid": None}


def open_for_cli(cluster: str, *, size: int | None, worker_memory_limit: int | None) -> DaskPool:
    """The pool ``isolate batch --cluster`` runs on (ClusterError if the cluster is out of reach)."""
    options: dict = {"size": size}
    if worker_memory_limit is not None:
        options["worker_memory_limit"] = worker_memory_limit
    return DaskPool(cluster, **options)
