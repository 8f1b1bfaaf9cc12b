"""Every call's lifecycle, decided in one place under one lock.

Where it sits::

    pool       routing, replacement, recycling          (isolate.pool)
    scheduler  every call's lifecycle, the kill ladder  (this module)
    supervisor one worker process                       (isolate.supervisor)

A :class:`Call` moves forward only::

    QUEUED ──▶ RUNNING ──▶ DONE      (the worker answered)
       │          │
       │          └──────▶ FAILED    (killed at its deadline, worker lost, pool closed)
       └─────────────────▶ FAILED    (queue deadline passed, cancelled, pool closed: it never ran)
    RUNNING ──▶ QUEUED                (its worker died before starting it: rerouted)

Rules that make the guarantees hold:

* **A worker gets a top-level request only when it is idle.** Calls wait in
  the host, never in a worker's pipe: a call pinned to a worker (one of its
  contexts) in that worker's queue, a call that needs no particular worker
  (a fresh context, a compile) in the pool-wide queue, taken by whichever
  worker frees first. So a call starts when it is written, its kill
  deadline counts from then, and nothing queued behind a script that gets
  killed is lost with it.
* **A call that never started is never reported as crashed.** When a worker
  dies, the host reads from the page it shares with the worker which request
  the worker had started; a call it had not started goes back to the
  pool-wide queue (or, pinned to a context, fails with ContextLostError).
* **Every call has a bound when it has a deadline.** A queued call fails with
  ``ScriptTimeoutError(stage="queued")`` at its queue deadline, without ever
  running. A running call is killed (its worker with it) at deadline + grace.
* **Nested calls** (a host callable calling back into the worker that is
  waiting for it) are written at once: they run inside the call they are
  nested in.

The threads: a caller submits and waits on its call's inbox, serving the
host-function requests of its own call as they come; a worker's reader thread
delivers responses and starts the worker's next call (the worker is idle at
that moment, so that write cannot deadlock against the worker's output).
"""

from __future__ import annotations

import bisect
import concurrent.futures
import enum
import itertools
import queue
import select
import threading
import time
from typing import TYPE_CHECKING, Any

from .protocol import ProtocolError, Request, Response, WireError, error_triple, finish_values

from .errors import (
    ContextLostError, IsolateError, NestingTooDeepError, PoolClosedError, ProtocolViolationError,
    ScriptInterruptedError, ScriptTimeoutError, describe_exit, error_from_value, error_from_wire,
)
from .futures import current_future
from .hostcalls import innermost_served, serve_host_call, serving_in
from .supervisor import WorkerHandle, WorkerState
from .threads import start_daemon

if TYPE_CHECKING:
    from .pool import Pool

__all__ = ["Scheduler", "Call", "CallState", "ANYWHERE"]

ANYWHERE = None  # the target of a call that any worker can run
_OVERRUN = "its worker {pid} was killed: a script on it overran its timeout"
_STOPPABLE = frozenset(("run", "call", "run_new", "module_evaluate"))


# How often a breakOnSigint call's waiting thread wakes up to run a pending SIGINT
# handler (see Scheduler._await): the latency of breakOnSigint at worst.
SIGINT_POLL_S = 0.05


class CallState(enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Call:
    """One request to a worker, from submission to outcome."""

    __slots__ = ("method", "params", "decode", "timeout_ms", "queue_timeout_ms", "queue_deadline",
                 "interruptible", "owner", "pinned", "places_context", "placed", "worker", "state",
                 "msgid", "parent", "started_at", "stop_deadline", "interrupted", "inbox", "seq", "confirmed",
                 "group")

    def __init__(self, method: str, params, *, decode, timeout_ms, queue_timeout_ms, interruptible, owner,
                 pinned: WorkerHandle | None, places_context: bool, seq: int, group=None):
        self.method = method
        self.params = params                  # a list, or a function of the worker that runs it
        self.decode = decode
        self.timeout_ms = timeout_ms
        self.queue_timeout_ms = queue_timeout_ms
        self.queue_deadline = (time.monotonic() + queue_timeout_ms / 1000.0
                               if queue_timeout_ms is not None else None)
        self.interruptible = interruptible
        self.owner = owner                    # the Context making the call, for host calls nested in it
        self.pinned = pinned                  # the worker it must run on, or None (any)
        self.places_context = places_context  # it creates a context: counts in its worker's load
        self.placed = False                   # whether it is counted in worker.live_contexts now
        self.worker: WorkerHandle | None = pinned
        self.state = CallState.QUEUED
        self.msgid = 0
        self.parent = 0                       # the call_host it is nested in (0: top level)
        self.started_at: float | None = None
        self.stop_deadline: float | None = None   # after an interrupt: kill if still running then
        self.interrupted = False
        self.confirmed = False                # the start check is done (see Scheduler._kill_wedged)
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.seq = seq
        # A group of fresh-context jobs (isolate.jobgroups.JobGroup) sent as one
        # request: each job has a msgid of its own, answered on its own.
        self.group = group

    @property
    def nested(self) -> bool:
        return self.parent != 0

    def __repr__(self) -> str:
        return f"<Call {self.method} #{self.msgid} {self.state.value}>"


class _Dead:
    """Delivered to a call that ended without an answer."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException):
        self.error = error


class _Interrupted:
    """break_on_sigint: the host's SIGINT, relayed to the call (from the signal handler)."""

    __slots__ = ()


_WAKE = object()  # the call's state changed (it started): recompute its deadline


class Scheduler:
    """The calls of one pool: queues, dispatch, deadlines, and what a worker's loss means."""

    def __init__(self, pool: "Pool"):
        self.pool = pool
        self.limits = pool.limits
        self.lock = threading.Lock()
        self._anywhere: list[Call] = []   # ordered by seq
        self._seq = itertools.count()
        self.closed = False
        # Workers that reached max_tasks_per_worker on an answer, marked draining under
        # the lock before the next call could go to them, whose replacement the
        # answer's reader thread is about to start (see on_response).
        self._recycling: set[WorkerHandle] = set()

    # -- submitting ------------------------------------------------------------------
    def request(self, target: WorkerHandle | None, method: str, params, *, decode=None,
                timeout_ms: float | None = None, queue_timeout_ms: float | None = None,
                interruptible: bool = False, owner=None, places_context: bool = False) -> Any:
        """Run one request and wait for its outcome (serving its host calls meanwhile).

        ``target`` is the worker it must run on (one of its contexts), or
        ANYWHERE. ``params`` are wire-encoded, or a function of the worker
        chosen (for calls that depend on what that worker has cached).
        ``decode(value, needs_finish)`` finishes the result. ``timeout_ms``
        arms the kill ladder once the call starts; ``queue_timeout_ms`` bounds
        the wait before it starts.
        """
        call = self.submit(target, method, params, decode=decode, timeout_ms=timeout_ms,
                           queue_timeout_ms=queue_timeout_ms, interruptible=interruptible, owner=owner,
                           places_context=places_context)
        return self.wait(call)

    def submit(self, target: WorkerHandle | None, method: str, params, *, decode=None,
               timeout_ms: float | None = None, queue_timeout_ms: float | None = None,
               interruptible: bool = False, owner=None, places_context: bool = False, group=None) -> Call:
        """Queue (or start) a call; :meth:`wait` gives its outcome."""
        call = Call(method, params, decode=decode, timeout_ms=timeout_ms, queue_timeout_ms=queue_timeout_ms,
                    interruptible=interruptible, owner=owner, pinned=target, places_context=places_context,
                    seq=next(self._seq), group=group)
        # Nested: this thread serves a host call of the worker concerned (for a
        # call that can run anywhere: of the innermost worker it serves).
        host = target if target is not None else innermost_served()
        parent, depth = serving_in(host) if host is not None else (0, 0)
        if parent:
            if depth >= self.limits.max_nesting:
                raise NestingTooDeepError(f"nested calls deeper than {self.limits.max_nesting}")
            call.parent = parent
            call.pinned = call.worker = host
        future = current_future() if not parent else None
        if future is not None and future.cancelled():
            # Cancelled between two requests of the same job: send nothing more.
            raise concurrent.futures.CancelledError()
        with self.lock:
            if self.closed:
                raise PoolClosedError("the pool is closed")
            start = None
            if parent:
                self._require_ready(host)
                self._start(call, host)
                start = call
            elif target is None:
                worker = self._idle_worker()
                if worker is not None:
                    self._start(call, worker)
                    start = call
                else:
                    self._anywhere.append(call)
            else:
                self._require_ready(target)
                if target.running is None and not target.queue:
                    self._start(call, target)
                    start = call
                else:
                    target.queue.append(call)
            if interruptible and target is not None:
                # Queued or started: a SIGINT relayed to this worker reaches the call
                # either way (queued, it never runs). A call for any worker is
                # registered when it starts (_start).
                target.interruptible_call = call
        if future is not None and method in _STOPPABLE:
            future._stop_running = lambda: self.abandon(call)
        if start is not None:
            self._send(start)
        return call

    def _require_ready(self, worker: WorkerHandle) -> None:
        if worker.state is not WorkerState.READY:
            if worker.state is WorkerState.CLOSED:
                raise PoolClosedError("the worker is closed")
            raise worker.failure or ContextLostError(f"worker {worker.pid} is gone")

    # -- dispatch (all *_locked helpers run under self.lock) ---------------------------
    def _start(self, call: Call, worker: WorkerHandle) -> None:
        call.worker = worker
        call.msgid = worker.next_msgid()
        if call.group is not None:
            call.group.reserve(worker)  # the jobs' msgids follow the group's
        call.state = CallState.RUNNING
        call.started_at = time.monotonic()
        if call.parent:
            worker.nested[call.msgid] = call
        else:
            worker.running = call
        if call.interruptible:
            worker.interruptible_call = call
        if call.places_context and not call.placed:
            worker.live_contexts += 1
            call.placed = True

    def _send(self, call: Call) -> None:
        """Write a started call's request (outside the lock)."""
        worker = call.worker
        try:
            params = call.params(worker) if callable(call.params) else call.params
            if worker.write(Request(call.msgid, call.method, [call.parent, *params])) > select.PIPE_BUF:
                # A large request took a while to write: its timeout (and the kill
                # ladder after it) counts from when the worker can read it whole.
                call.started_at = time.monotonic()
        except (OSError, ValueError):
            # The worker's input is closed: it is gone (or the pool is closing
            # it). Take it out of rotation now rather than when its reader
            # notices, so this call, which it never read, moves on at once.
            self.on_worker_exiting(worker)
        except BaseException as exc:
            if getattr(exc, "isolate_frame_sent", False):
                # Ctrl-C came while the request went out, held until it was whole
                # (WorkerHandle.write): the worker has it, so the call runs. Nobody
                # will wait for it now: stop it, as for any caller who gave up.
                self.abandon(call)
                raise
            # Building the request failed: it was never sent.
            with self.lock:
                ended = call.state is CallState.RUNNING and (worker.running is call or call.parent)
                if ended:
                    call.state = CallState.FAILED
                    self._unplace(call)
                    if worker.running is call:
                        worker.running = None
                    worker.nested.pop(call.msgid, None)
                    following = self._next_locked(worker)
                else:
                    following = None
            if ended:
                call.inbox.put(_Dead(exc))
            if following is not None:
                self._send(following)

    def _idle_worker(self) -> WorkerHandle | None:
        idle = [w for w in self.pool._workers
                if w.state is WorkerState.READY and w.running is None and not w.queue]
        fresh = [w for w in idle if not w.draining]
        if fresh:
            return min(fresh, key=lambda w: w.live_contexts)
        if idle and not self._accepting_workers():
            return min(idle, key=lambda w: w.live_contexts)
        return None

    def _accepting_workers(self) -> bool:
        """Whether some live worker takes new contexts, or one is starting in place of
        a draining worker (else draining ones must). While a replacement starts, new
        calls wait for it (a few ms), so that max_tasks_per_worker holds: a draining
        worker that took them would serve a burst's calls until it was up."""
        return bool(self._recycling or self.pool._replacing) or any(
            w.state is WorkerState.READY and not w.draining for w in self.pool._workers)

    def _next_locked(self, worker: WorkerHandle) -> Call | None:
        """Start the next call for an idle worker: its own queue or the pool's, oldest first."""
        if worker.state is not WorkerState.READY or worker.running is not None:
            return None
        own = worker.queue[0] if worker.queue else None
        shared = None
        if self._anywhere and (not worker.draining or not self._accepting_workers()):
            shared = self._anywhere[0]
        if own is None and shared is None:
            return None
        if shared is None or (own is not None and own.seq < shared.seq):
            worker.queue.pop(0)
            call = own
        else:
            self._anywhere.pop(0)
            call = shared
        self._start(call, worker)
        if call.queue_deadline is not None or call.timeout_ms is not None:
            call.inbox.put(_WAKE)  # its waiter now counts the kill deadline instead of the queue's
        # (An untimed call's waiter finds out on its own: see _deadline.)
        return call

    def _dispatch_anywhere_locked(self) -> list[Call]:
        started = []
        while self._anywhere:
            worker = self._idle_worker()
            if worker is None:
                break
            call = self._next_locked(worker)
            if call is None:
                break
            started.append(call)
        return started

    @staticmethod
    def _has_started(call: Call, started_msgid: int) -> bool:
        """Whether the worker started ``call`` (for a group: the group or one of its jobs)."""
        if started_msgid == call.msgid:
            return True
        return call.group is not None and call.msgid < started_msgid <= call.group.last

    def _unplace(self, call: Call) -> None:
        if call.placed:
            call.worker.live_contexts -= 1
            call.placed = False

    def _requeue_locked(self, call: Call) -> None:
        """A call its worker never started goes back to the pool-wide queue, in order."""
        self._unplace(call)
        call.state = CallState.QUEUED
        call.worker = None
        call.started_at = None
        call.confirmed = False
        keys = [c.seq for c in self._anywhere]
        self._anywhere.insert(bisect.bisect(keys, call.seq), call)

    # -- events from workers (reader threads) -----------------------------------------
    def on_response(self, worker: WorkerHandle, response: Response) -> None:
        following = None
        recycle = False
        call = worker.running
        if (call is not None and call.group is not None and response.msgid != call.msgid
                and call.group.owns(response.msgid)):
            # One job of a group answered (even after the kill ladder claimed the
            # group: it is that job's true outcome). The next job starts now, so
            # the group's kill deadline (the running job's) counts from here.
            call.started_at = time.monotonic()
            worker.tasks += 1  # each job counts, for max_tasks_per_worker
            call.group.on_answer(response)
            return
        with self.lock:
            call = worker.running
            if call is not None and call.msgid == response.msgid:
                if call.state is not CallState.RUNNING:
                    return  # claimed by the kill ladder: the answer lost the race, as the context will
                worker.running = None
                if call.group is None:
                    worker.tasks += 1
                limit = self.pool.max_tasks_per_worker
                if limit and worker.tasks >= limit and not worker.draining:
                    # Drained here, before the next call is chosen: marked later (by
                    # the caller's _after_call), the worker had already taken the
                    # next queued call, and a burst's calls after it.
                    self._mark_recycling_locked(worker, f"it served {worker.tasks} calls (max_tasks_per_worker)")
                    recycle = True
                following = self._next_locked(worker)
            else:
                call = worker.nested.pop(response.msgid, None)
                if call is None and not 0 < response.msgid <= worker.last_msgid:
                    # An answer to nothing this host ever asked: the worker is broken or lying.
                    raise ProtocolError(f"an answer to msgid {response.msgid}, which was never sent")
                if call is None or call.state is not CallState.RUNNING:
                    return  # an answer to a call that was abandoned or claimed
            call.state = CallState.DONE
            closed = worker.state is WorkerState.CLOSED
        if worker.interruptible_call is call:
            worker.interruptible_call = None
        # The worker's next request first: it idles until it arrives, while this
        # answer's caller can wait the moment it takes.
        if following is not None:
            self._send(following)
        if recycle:
            self._replace_recycled(worker)
        # Once the pool closed, every call still in flight ends with PoolClosedError.
        call.inbox.put(_Dead(PoolClosedError("the pool was closed during the call")) if closed else response)

    # -- recycling ----------------------------------------------------------------------
    def recycle(self, worker: WorkerHandle, reason: str) -> None:
        """Drain ``worker`` (it takes no new calls) and give its slot to a replacement.

        Marked under the lock, with its replacement pending in the same step: a
        worker seen draining while nothing else accepted calls would take the
        next one itself (see _accepting_workers), so a mark set apart from the
        replacement let a draining worker take a whole group more.
        """
        with self.lock:
            if worker.draining:
                return
            self._mark_recycling_locked(worker, reason)
        self._replace_recycled(worker)

    def _mark_recycling_locked(self, worker: WorkerHandle, reason: str) -> None:
        worker.draining = True
        worker.drain_reason = reason
        self._recycling.add(worker)

    def _replace_recycled(self, worker: WorkerHandle) -> None:
        try:
            self.pool._log_recycled(worker)
            self.pool._replace_draining(worker)  # a spare at once, else one starting
        finally:
            with self.lock:
                self._recycling.discard(worker)
            # The calls that waited go on: to the replacement (a spare that took
            # the slot), or to this worker if nothing could replace it.
            self.on_worker_ready(worker)

    def on_host_request(self, worker: WorkerHandle, request: Request) -> None:
        parent = request.params[0] if request.params else None
        with self.lock:
            call = worker.running if worker.running is not None and worker.running.msgid == parent else \
                worker.nested.get(parent)
            alive = call is not None and call.state is CallState.RUNNING
        if alive:
            call.inbox.put(request)
        else:
            # The worker waits for this answer, so it is reading: writing from the reader is safe.
            worker.write_quietly(Response(request.msgid, error_triple(
                WireError.INVALID_PARAMS, f"call_host nested in unknown call {parent}"), None))

    def on_worker_exiting(self, worker: WorkerHandle) -> None:
        """The worker's stream ended: take it out of rotation, reroute what it never started.

        Runs before the exit status is known (see on_worker_lost), so that no
        new call is routed to it and queued work moves on at once.
        """
        with self.lock:
            closing = worker.state is WorkerState.CLOSED
            if not closing:
                worker.state = WorkerState.BROKEN
                worker.failure = worker.failure or ContextLostError(f"worker {worker.pid} is gone")
            running = worker.running
            if (running is not None and running.state is CallState.RUNNING and not closing
                    and running.pinned is None and not self._has_started(running, worker.started_msgid())):
                worker.running = None
                self._requeue_locked(running)
            started = self._dispatch_anywhere_locked()
        if not closing:
            reason = (_OVERRUN.format(pid=worker.pid) if worker.overrun is not None
                      else f"its worker {worker.pid} died")
            for context in list(worker.contexts):
                context._lost(reason)
        for call in started:
            self._send(call)

    def on_worker_lost(self, worker: WorkerHandle, error: IsolateError) -> None:
        """The worker is gone and reaped: every call still tied to it ends, once."""
        failed: list[tuple[Call, BaseException]] = []
        with self.lock:
            closed = worker.state is WorkerState.CLOSED
            if not closed:
                worker.failure = error
            started_msgid = worker.started_msgid()
            running, worker.running = worker.running, None
            nested, worker.nested = worker.nested, {}
            queued, worker.queue = worker.queue, []
            for call in ([running] if running is not None else []) + list(nested.values()) + queued:
                if call.group is not None and call.group.worker is worker:
                    call.group.on_lost(started_msgid)
                if call.state not in (CallState.RUNNING, CallState.QUEUED):
                    continue  # claimed by the kill ladder already
                never_ran = call.state is CallState.QUEUED or (
                    call is running and not self._has_started(call, started_msgid))
                call.state = CallState.FAILED
                self._unplace(call)
                failed.append((call, self._loss_error(worker, call, error, closed, never_ran)))
        for call, exc in failed:
            call.inbox.put(_Dead(exc))
        self.pool._on_worker_broken(worker)

    def _loss_error(self, worker: WorkerHandle, call: Call, error: IsolateError, closed: bool,
                    never_ran: bool) -> BaseException:
        if closed:
            return PoolClosedError("the pool was closed during the call")
        if worker.overrun is not None:
            return ContextLostError(_OVERRUN.format(pid=worker.pid))
        if never_ran and call.owner is not None:
            return ContextLostError(f"its worker {worker.pid} died ({describe_exit(worker.process.exitcode)}) "
                                    "before the call started")
        return error

    def on_worker_ready(self, worker: WorkerHandle) -> None:
        """A worker joined the pool (a spare took a slot, or a replacement started)."""
        with self.lock:
            started = self._dispatch_anywhere_locked()
        for call in started:
            self._send(call)

    def fail_waiting(self, error: IsolateError) -> None:
        """No worker can be started: calls waiting for any worker fail with ``error``."""
        with self.lock:
            if any(w.state is WorkerState.READY for w in self.pool._workers):
                return
            waiting, self._anywhere = self._anywhere, []
            for call in waiting:
                call.state = CallState.FAILED
        for call in waiting:
            call.inbox.put(_Dead(error))

    def close(self, workers: list[WorkerHandle], *, pool: bool = True) -> None:
        """``workers`` close (with the whole pool unless ``pool=False``, as when one is
        retired): their queued calls fail now, running ones when their worker exits."""
        with self.lock:
            if pool:
                self.closed = True
                queued, self._anywhere = self._anywhere, []
            else:
                queued = []
            for worker in workers:
                worker.state = WorkerState.CLOSED
                queued.extend(worker.queue)
                worker.queue = []
            for call in queued:
                call.state = CallState.FAILED
        for call in queued:
            call.inbox.put(_Dead(PoolClosedError("the pool was closed before the call started")))

    # -- waiting ----------------------------------------------------------------------
    def wait(self, call: Call) -> Any:
        """The call's outcome, serving its host calls meanwhile; runs the kill ladder."""
        try:
            return self._await(call)
        except BaseException as exc:
            # KeyboardInterrupt (or SystemExit) while the script still runs: stop it.
            if not isinstance(exc, Exception) and call.state in (CallState.QUEUED, CallState.RUNNING):
                self.abandon(call)
            raise

    def _await(self, call: Call) -> Any:
        grace = self.limits.kill_grace_s
        while True:
            deadline = self._deadline(call, grace)
            if call.interruptible:
                # breakOnSigint: a SIGINT the kernel gave to another thread (it may: any
                # thread that does not block it) leaves Python's handler to run in this
                # thread, which a blocked wait never does. Wake up to let it run.
                poll_at = time.monotonic() + SIGINT_POLL_S
                deadline = poll_at if deadline is None else min(deadline, poll_at)
            try:
                item = call.inbox.get(timeout=None if deadline is None else max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self._on_deadline(call, grace)
                continue
            if isinstance(item, Response):
                try:
                    return self._outcome(call, item)
                finally:
                    # A call that places a context leaves the recycling check to
                    # its caller, once the context is counted (or not) on the worker.
                    if not call.parent and not call.places_context:
                        self.pool._after_call(call.worker)
            if isinstance(item, _Dead):
                raise item.error
            if item is _WAKE:
                continue
            if isinstance(item, _Interrupted):
                self._interrupt(call, grace)
                continue
            self._serve(call, item)

    def _deadline(self, call: Call, grace: float) -> float | None:
        state = call.state
        if state is CallState.QUEUED:
            if call.queue_deadline is not None:
                return call.queue_deadline
            # No deadline while queued, and no wake-up when it starts (a context
            # switch per call saved): look every start_timeout_s, so a call sent
            # to a stopped worker is still found out (within twice that).
            return time.monotonic() + self.limits.start_timeout_s
        if state is not CallState.RUNNING:
            return None
        if call.stop_deadline is not None:
            kill_at = call.stop_deadline
        elif call.timeout_ms is not None:
            kill_at = call.started_at + call.timeout_ms / 1000.0 + grace
        else:
            kill_at = None
        if call.confirmed or call.parent:
            return kill_at
        if self._has_started(call, call.worker.started_msgid()):
            call.confirmed = True
            return kill_at
        # Not started yet (the worker is reading the request, or is stopped):
        # look again at the kill deadline, and at the start check at the latest.
        check = call.started_at + self.limits.start_timeout_s
        return min(check, kill_at) if kill_at is not None and kill_at > time.monotonic() else check

    def _on_deadline(self, call: Call, grace: float) -> None:
        with self.lock:
            if call.state is CallState.QUEUED:
                if call.queue_deadline is None or time.monotonic() < call.queue_deadline:
                    return
                self._dequeue_locked(call)
                call.state = CallState.FAILED
                raise ScriptTimeoutError(call.queue_timeout_ms, stage="queued")
        if call.state is not CallState.RUNNING:
            return
        now = time.monotonic()
        if not call.confirmed and not call.parent:
            if self._has_started(call, call.worker.started_msgid()):
                call.confirmed = True
            elif now >= call.started_at + self.limits.start_timeout_s:
                call.confirmed = True  # checked once per dispatch
                self._kill_wedged(call)
                return
            else:
                return  # not started, not overdue: the next deadline is the start check
        kill_at = self._deadline(call, grace)
        if kill_at is not None and now >= kill_at:
            self._kill_overrun(call)

    def _kill_wedged(self, call: Call) -> None:
        """The worker has not started a call sent to it while idle: it is stopped
        (SIGSTOP) or wedged. It is killed; the call, which never ran, moves on as
        any call its worker never started does (see on_worker_exiting)."""
        with self.lock:
            worker = call.worker
            if (call.state is not CallState.RUNNING or worker.running is not call
                    or worker.state is not WorkerState.READY or self._has_started(call, worker.started_msgid())):
                return
        worker.kill()

    def _dequeue_locked(self, call: Call) -> None:
        if call in self._anywhere:
            self._anywhere.remove(call)
        elif call.pinned is not None and call in call.pinned.queue:
            call.pinned.queue.remove(call)

    def _kill_overrun(self, call: Call) -> None:
        """Stage 2: the call outlived its deadline (+ grace); kill its worker.

        The call is claimed first, so an answer racing the kill is dropped and
        the caller's outcome (a stop at stage "kill") agrees with the lost context.
        """
        with self.lock:
            worker = call.worker
            if call.state is not CallState.RUNNING or worker.state is not WorkerState.READY:
                return
            call.state = CallState.FAILED
            worker.overrun = call
            if call.group is not None:
                call.group.note_overrun()
            # Out of rotation now: `running` keeps pointing at the call, and calls
            # for its contexts fail at once, naming the reason.
            worker.state = WorkerState.BROKEN
            worker.failure = ContextLostError(_OVERRUN.format(pid=worker.pid))
            worker.nested.pop(call.msgid, None)
        if call.interrupted:
            error: IsolateError = ScriptInterruptedError(stage="kill")
        else:
            error = ScriptTimeoutError(call.timeout_ms, stage="kill")
        for context in list(worker.contexts):
            context._lost(_OVERRUN.format(pid=worker.pid))
        call.inbox.put(_Dead(error))
        worker.kill()

    # -- stopping ------------------------------------------------------------------------
    def abandon(self, call: Call) -> None:
        """The caller gave up (KeyboardInterrupt, a cancelled future): stop the call.

        Queued: it is dropped and never runs. Running: the script is
        interrupted at once, and its worker killed after the grace if it
        ignores that (stuck in native code), so an abandoned call never
        wedges its worker.
        """
        with self.lock:
            if call.state is CallState.QUEUED:
                self._dequeue_locked(call)
                call.state = CallState.FAILED
                dropped = True
            elif call.state is CallState.RUNNING:
                dropped = False
            else:
                return
        if dropped:
            call.inbox.put(_Dead(concurrent.futures.CancelledError()))
            return
        call.interrupted = True
        call.worker.cancel(call.msgid)
        timer = threading.Timer(self.limits.kill_grace_s, self._kill_overrun, (call,))
        timer.daemon = True
        timer.start()

    def interrupt(self, worker: WorkerHandle) -> None:
        """break_on_sigint: relay the host's SIGINT to the interruptible call on ``worker``.

        Called from a signal handler: it only posts to the call's inbox
        (SimpleQueue.put is reentrant); the waiting thread does the rest.
        """
        call = worker.interruptible_call
        if call is None:
            return
        if call.state is CallState.RUNNING and call.worker is worker:
            # At once, even while this thread runs one of the call's host
            # callables: the cell and a signal (no lock taken, safe here).
            if worker.cancel(call.msgid):
                call.interrupted = True
                call.stop_deadline = time.monotonic() + self.limits.kill_grace_s
        call.inbox.put(_Interrupted())  # the waiter takes it from there (a queued call: it never runs)

    def _interrupt(self, call: Call, grace: float) -> None:
        with self.lock:
            if call.state is CallState.QUEUED:
                self._dequeue_locked(call)
                call.state = CallState.FAILED
                raise ScriptInterruptedError()
            running = call.state is CallState.RUNNING
        if call.interrupted:
            return  # already asked from the signal handler
        if running and call.worker.cancel(call.msgid):
            # The same ladder as a timeout: a script stuck in native code that
            # ignores the interrupt is killed after the grace.
            call.interrupted = True
            call.stop_deadline = time.monotonic() + grace

    # -- outcomes -------------------------------------------------------------------------
    def _outcome(self, call: Call, response: Response) -> Any:
        decode = call.decode or _decode_plain
        try:
            if response.error is None:
                return decode(response.result, response.needs_finish)
            code, message, data = (list(response.error) + [None, None, None])[:3]
            error = error_from_wire(code, message, data, response.needs_finish, decode)
            from .hostcalls import link_host_cause  # on errors only: a host callable's exception as cause
            error = link_host_cause(call.worker, call.msgid, error)
        except IsolateError:
            raise
        except (ProtocolError, TypeError, ValueError, IndexError, KeyError, AttributeError) as exc:
            # The worker's answer does not decode: that call fails, typed; the worker goes on.
            raise ProtocolViolationError(f"malformed answer to {call.method!r} from worker "
                                         f"{call.worker.pid}: {type(exc).__name__}: {exc}") from None
        # The error's traceback holds this frame and its callers', which hold it (the
        # decoded data holds it too, finished in place): let go of it, or each error
        # would wait for the cyclic garbage collector with everything it refers to.
        response.error = response.result = None
        try:
            raise error
        finally:
            del error, data

    # -- host calls ---------------------------------------------------------------------------
    def _serve(self, call: Call, request: Request) -> None:
        if call.timeout_ms is None and call.stop_deadline is None:  # no kill deadline to keep
            serve_host_call(call.worker, request, call.owner)
        else:
            # A host callable could block past the deadline: run it aside so
            # that this thread keeps the deadline. (A callable that never
            # returns keeps its thread; Python threads cannot be killed.)
            start_daemon(serve_host_call, args=(call.worker, request, call.owner),
                         name=f"isolate-host-call-{request.msgid}")


def _decode_plain(value: Any, needs_finish: bool) -> Any:
    """Finish a value that belongs to no context (errors become JSErrors; no handles)."""
    return finish_values(value, needs_finish, make_error=error_from_value)
