"""The supervisor: a pool of worker processes and the calls that travel to them.

Data flow::

    caller thread ──request──▶ WorkerHandle ──pipe──▶ worker process
         ▲                        │ reader thread
         └──── CallSlot queue ◀───┘ (responses, and nested call_host requests)

* **Pool** owns the workers, picks the least-loaded one for a new context,
  keeps the table of host callables exposed to JS, and closes everything
  (context manager, ``close()``, atexit).
* **WorkerHandle** owns one worker process: its pipes, a state that only
  moves forward (STARTING -> READY -> BROKEN/CLOSED), the pending calls and
  a reader thread. The reader routes each response to its caller's
  :class:`CallSlot`, and each nested ``call_host`` request to the slot of the
  call it is nested in, so the *caller's* thread runs the host callable. That
  thread can call back into the same worker while it serves (nested calls
  both ways); the reader never blocks on user code.
* When the worker dies, the reader fails every pending call with one
  :class:`WorkerCrashedError` naming the exit code and signal.
* Workers are forked by one long-lived spawner thread: Linux's
  ``PR_SET_PDEATHSIG`` (which kills a worker when the host dies, even by
  SIGKILL) fires when the *thread* that forked it exits, so that thread must
  live as long as the pool.
"""

from __future__ import annotations

import atexit
import enum
import itertools
import os
import queue
import mmap
import select
import signal
import struct
import time
import threading
import weakref
import concurrent.futures
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import psutil

from protocol import (
    MAX_NESTING, PROTOCOL_VERSION, ErrorValue, HostFunctionRef, MessageStream, Notification,
    ProtocolError, Request, Response, StreamClosed, WireError, encode_value,
    error_triple, finish_values,
)

from .errors import (
    ContextLostError, InvalidArgValueError, IsolateError, describe_exit, JSError, NestingTooDeepError, PoolClosedError,
    ProtocolViolationError, ScriptInterruptedError, ScriptNotCached, ScriptTimeoutError, UnsupportedError,
    WorkerMemoryError, UnencodableValueError, WorkerCrashedError,
)
from .scripts import KnownScripts

if TYPE_CHECKING:
    from .futures import Future

__all__ = ["Pool", "Limits", "WorkerHandle", "WorkerState"]


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
    # How often the supervisor samples worker RSS against worker_memory_limit.
    # The OS cap (RLIMIT_DATA) acts at once; the sample catches what it cannot
    # see (e.g. memory a native library maps some other way) within this delay.
    rss_check_interval_s: float = 0.1


class WorkerState(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    BROKEN = "broken"   # terminal: the process died or the stream is corrupt
    CLOSED = "closed"   # terminal: the pool closed it


# Each thread's stack of call_host requests it is serving, per worker:
# requests it makes to that worker meanwhile are nested in the innermost one.
_serving = threading.local()


def _serving_stack(worker: "WorkerHandle") -> list[int]:
    stacks = getattr(_serving, "stacks", None)
    if stacks is None:
        stacks = _serving.stacks = {}
    return stacks.setdefault(id(worker), [])


class _Dead:
    """Put in a CallSlot when the worker died or closed under the call."""

    def __init__(self, error: IsolateError):
        self.error = error


class CallSlot:
    """Where one pending request's response (or nested requests) is delivered."""

    __slots__ = ("msgid", "method", "inbox", "owner")

    def __init__(self, msgid: int, method: str, owner=None):
        self.msgid = msgid
        self.method = method
        self.owner = owner  # the Context making the call, for host calls nested in it
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()


class _Started:
    """The worker began executing a timed call (its `started` notification)."""

    __slots__ = ("at",)

    def __init__(self, at: float):
        self.at = at


class _Interrupted:
    """The host relayed a SIGINT to the worker for this call (break_on_sigint)."""

    __slots__ = ("at",)

    def __init__(self, at: float):
        self.at = at


class RerouteCall(WorkerCrashedError):
    """A call that targeted no context was lost with its worker: send it elsewhere."""


class WorkerHandle:
    """One worker process, its pipes, pending calls and reader thread."""

    def __init__(self, pool: "Pool", index: int):
        self.pool = pool
        self.index = index
        self.state = WorkerState.STARTING
        # Two locks, so that the reader thread never waits for a writer: a
        # caller blocked writing a large request into a full pipe must not keep
        # the reader from draining the worker's (large) answer, or both sides
        # would wait on each other forever.
        self._lock = threading.Lock()          # guards state, _pending, _failure
        self._write_lock = threading.Lock()    # serializes writes to the worker
        self._fd_lock = threading.Lock()       # guards closing the pipe ends (see _close_fd)
        self._pending: dict[int, CallSlot] = {}
        self._msgids = itertools.count(1)
        self._failure: IsolateError | None = None
        self._overrun: tuple[int, Any] | None = None  # (msgid, timeout or "interrupt") killed at stage 2
        self._interruptible_slot: CallSlot | None = None
        self._memory_kill: int | None = None  # the RSS that got this worker killed
        self.tasks = 0          # calls answered, for max_tasks_per_worker
        self.draining = False   # recycling: no new contexts; retired once idle
        # Releases of handles and contexts, queued by GC finalizers (which may
        # run inside any code, even while this thread holds _lock: so they
        # only enqueue) and flushed before the next request is written.
        self._releases: queue.SimpleQueue = queue.SimpleQueue()
        self.contexts: "weakref.WeakSet" = weakref.WeakSet()
        self.live_contexts = 0
        self.scripts = KnownScripts()  # keys of scripts this worker compiled (see isolate.scripts)
        # Shared with the worker (an anonymous MAP_SHARED page survives fork):
        # the msgid an interrupt is meant for. See workers.worker.Interrupts.
        self._cancel_cell = mmap.mmap(-1, 8)
        self.process, self._stream = pool._spawner.submit(self._fork).result()
        self.pid = self.process.pid
        self._pidfd = _pidfd_open(self.pid)
        self._reader = threading.Thread(target=self._read_loop, name=f"isolate-reader-{self.pid}",
                                        daemon=True)
        self._handshake()
        self._reader.start()

    def _fork(self):
        to_worker_r, to_worker_w = os.pipe()
        from_worker_r, from_worker_w = os.pipe()
        # Imported here, not at `import isolate`: the host needs the engine only
        # to fork workers from (they inherit the loaded modules), and this runs
        # on the spawner thread, off the import path.
        import multiprocess
        import workers

        ctx = multiprocess.get_context("fork")
        process = ctx.Process(
            target=workers.main, name=f"isolate-worker-{self.index}",
            args=(to_worker_r, from_worker_w, os.getpid(), dict(self.pool._env),
                  self.pool.worker_memory_limit, self._cancel_cell), daemon=True)
        try:
            process.start()
        finally:
            os.close(to_worker_r)
            os.close(from_worker_w)
        return process, MessageStream(from_worker_r, to_worker_w)

    def _handshake(self) -> None:
        result: dict = {}

        def exchange():
            try:
                self._stream.write(Request(0, "hello", [PROTOCOL_VERSION]))
                result["reply"] = self._stream.read()
            except BaseException as exc:  # reported below, in the caller's thread
                result["error"] = exc

        t = threading.Thread(target=exchange, daemon=True)
        t.start()
        t.join(self.pool.limits.handshake_timeout_s)
        reply = result.get("reply")
        if not isinstance(reply, Response) or reply.error is not None:
            self.process.kill()
            self._wait_exit(self.pool.limits.reap_timeout_s)
            self._close_fds()
            detail = reply.error[1] if isinstance(reply, Response) else result.get("error", "no answer")
            raise WorkerCrashedError(self.pid, self.process.exitcode, f"handshake failed: {detail}")
        self.info = reply.result
        self.state = WorkerState.READY

    # -- reader thread -------------------------------------------------------
    def _read_loop(self) -> None:
        try:
            while True:
                message = self._stream.read()
                if isinstance(message, Response):
                    with self._lock:
                        slot = self._pending.pop(message.msgid, None)
                        closed = self.state is WorkerState.CLOSED
                    if slot is not None:
                        # Once the pool closed, every call still in flight ends
                        # with PoolClosedError, whatever the worker answers.
                        slot.inbox.put(_Dead(PoolClosedError("the pool was closed during the call"))
                                       if closed else message)
                elif isinstance(message, Notification) and message.method == "started":
                    with self._lock:
                        slot = self._pending.get(message.params[0] if message.params else None)
                    if slot is not None:
                        slot.inbox.put(_Started(time.monotonic()))
                elif isinstance(message, Request) and message.method == "call_host":
                    parent = message.params[0] if message.params else None
                    with self._lock:
                        slot = self._pending.get(parent)
                    if slot is not None:
                        slot.inbox.put(message)
                    else:
                        # Answered from another thread: the reader never writes,
                        # so it can never block on a full pipe.
                        threading.Thread(target=self._write_quietly, daemon=True, args=(Response(
                            message.msgid, error_triple(WireError.INVALID_PARAMS,
                                                        f"call_host nested in unknown call {parent}"), None),)).start()
                else:
                    raise ProtocolError(f"unexpected message from worker: {message!r:.100}")
        except StreamClosed:
            self._broken(None)
        except Exception as exc:  # the reader's top level: any failure breaks this worker only
            self._broken(exc)

    def _broken(self, cause: BaseException | None) -> None:
        """The worker is gone (or talks nonsense): fail every pending call, once."""
        with self._lock:
            if self.state is WorkerState.CLOSED:
                error: IsolateError = PoolClosedError("the pool was closed during the call")
            else:
                self.state = WorkerState.BROKEN
                # Set with the state, so a call made meanwhile is told the truth
                # (refined below once the exit status is known).
                self._failure = self._failure or WorkerCrashedError(self.pid, None, "it is gone")
                if cause is not None and not isinstance(cause, OSError):
                    self.process.kill()
                error = None  # type: ignore[assignment]
        overrun = self._overrun
        if error is None:
            self._wait_exit(self.pool.limits.reap_timeout_s)
            detail = f"protocol error: {cause}" if cause is not None else ""
            if self._memory_kill is not None:
                error = WorkerMemoryError(self.pid, self.process.exitcode,
                                          f"its RSS reached {self._memory_kill} bytes, over the pool's "
                                          f"worker_memory_limit of {self.pool.worker_memory_limit}")
            else:
                error = WorkerCrashedError(self.pid, self.process.exitcode, detail)
            reason = (f"its worker {self.pid} was killed: a script on it overran its timeout"
                      if overrun else f"its worker {self.pid} died ({describe_exit(self.process.exitcode)})")
            # Mark the contexts lost before failing the calls, so that a caller
            # retrying at once already gets ContextLostError.
            for context in list(self.contexts):
                context._lost(reason)
        with self._lock:
            self._failure = error
            pending, self._pending = self._pending, {}
        for slot in pending.values():
            slot.inbox.put(_Dead(self._error_for(slot, error, overrun)))
        self._close_fds()
        self.pool._on_worker_broken(self)

    def _wait_exit(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the process to exit, then reap it.

        Waits on a pidfd, not on multiprocess's sentinel: a worker closes
        every inherited descriptor, the sentinel's write end included, so the
        sentinel reads as "exited" while the worker still runs.
        """
        if self._pidfd is not None:
            try:
                ready, _, _ = select.select([self._pidfd], [], [], timeout)
            except (OSError, ValueError):  # the pidfd was closed by a concurrent close()
                ready = [True]
            if not ready:
                return False
        else:
            try:
                psutil.Process(self.pid).wait(timeout)
            except psutil.TimeoutExpired:
                return False
            except psutil.NoSuchProcess:
                pass
        self.process.join()
        return True

    def _error_for(self, slot: CallSlot, error: IsolateError | None, overrun) -> IsolateError:
        """What a pending call fails with when its worker is gone (or is being killed)."""
        if isinstance(error, PoolClosedError):
            return error
        if overrun is not None:
            msgid, timeout_ms = overrun
            if slot.msgid == msgid:
                if timeout_ms == "interrupt":
                    return ScriptInterruptedError(stage="kill")
                return ScriptTimeoutError(timeout_ms, stage="kill")
            if slot.method in ("create_context", "run_new"):
                return RerouteCall(self.pid, self.process.exitcode, "killed under a queued call")
            return ContextLostError(f"its worker {self.pid} was killed: a script on it overran its timeout")
        return error

    def _close_fds(self) -> None:
        self._close_fd("read_fd")
        self._close_fd("write_fd")

    def _close_fd(self, which: str) -> None:
        """Close one end of the pipe exactly once.

        A second close could hit the same number reused by a newer worker's
        pipe, so the number is forgotten (set to -1) before it is closed.
        """
        with self._fd_lock:
            fd = getattr(self._stream, which)
            setattr(self._stream, which, -1)
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass

    # -- calls ---------------------------------------------------------------
    def _write(self, message) -> None:
        self._stream.write(message)

    def queue_release(self, method: str, params: list) -> None:
        """Queue a release notification; safe to call from a GC finalizer."""
        self._releases.put((method, params))

    def _flush_releases(self) -> None:
        # Called with _write_lock held.
        while True:
            try:
                method, params = self._releases.get_nowait()
            except queue.Empty:
                return
            self._write(Notification(method, params))

    def request(self, method: str, params: list, decode: Callable[[Any, bool], Any] | None = None,
                timeout_ms: int | None = None, interruptible: bool = False, owner=None) -> Any:
        """Send a request and wait for its result, serving nested host calls meanwhile.

        ``params`` must already be wire-encoded. ``decode(value, needs_finish)``
        finishes the result (and the data of JS exceptions). With
        ``timeout_ms``, this is the kill ladder's stage 2: once the worker has
        acknowledged the call, if no answer comes by deadline + grace, the
        worker is killed and the call fails with ScriptTimeoutError(stage="kill").
        """
        stack = _serving_stack(self)
        if len(stack) >= self.pool.limits.max_nesting:
            raise NestingTooDeepError(f"nested calls deeper than {self.pool.limits.max_nesting}")
        parent = stack[-1] if stack else 0
        with self._write_lock:  # taken first: requests reach the worker in msgid order
            with self._lock:
                if self.state is not WorkerState.READY:
                    raise self._failure or PoolClosedError("the worker is closed")
                msgid = next(self._msgids)
                # An idle worker starts a call as soon as it arrives, so its kill
                # deadline can count from now, and the worker need not acknowledge
                # the start (a message and a context switch saved per timed call).
                counts_from_send = timeout_ms is not None and not self._pending and not stack
                if counts_from_send and params and isinstance(params[-1], dict):
                    params = [*params[:-1], {**params[-1], "ack": False}]
                sent_at = time.monotonic()
                slot = self._pending[msgid] = CallSlot(msgid, method, owner)
                if interruptible:
                    self._interruptible_slot = slot
                owner = _dispatch_current()
                if owner is not None and not stack:
                    if owner.cancelled():
                        # Cancelled between two requests of the same job: send nothing more.
                        del self._pending[msgid]
                        raise concurrent.futures.CancelledError()
                    if method in ("run", "call", "run_new", "module_evaluate"):
                        owner._stop_running = lambda: self._abandon(slot)
            try:
                self._flush_releases()
                self._write(Request(msgid, method, [parent, *params]))
            except OSError:
                # The worker died and its reader has not noticed yet: take it out
                # of rotation now, and send calls that target no context elsewhere.
                with self._lock:
                    self._pending.pop(msgid, None)
                    self.state = WorkerState.BROKEN
                    self._failure = self._failure or WorkerCrashedError(self.pid, None, "its input pipe is closed")
                if method in ("create_context", "run_new"):
                    raise RerouteCall(self.pid, None, "its input pipe is closed") from None
                raise WorkerCrashedError(self.pid, self.process.exitcode, "its input pipe is closed") from None
        try:
            return self._await(slot, decode, timeout_ms, stack,
                               sent_at if counts_from_send else None)
        except BaseException as exc:
            # KeyboardInterrupt (or SystemExit) while the script still runs: stop it.
            if not isinstance(exc, Exception) and method in ("run", "call", "run_new", "module_evaluate"):
                with self._lock:
                    still_pending = msgid in self._pending
                if still_pending:
                    self._abandon(slot)
            raise

    def _await(self, slot: CallSlot, decode, timeout_ms: int | None, stack: list,
               started_at: float | None = None) -> Any:
        """Wait for a call's outcome, serving its nested host calls; run the kill ladder."""
        msgid = slot.msgid
        kill_deadline = None
        if started_at is not None:
            kill_deadline = started_at + timeout_ms / 1000 + self.pool.limits.kill_grace_s
        interrupted = False
        while True:
            try:
                item = slot.inbox.get(timeout=None if kill_deadline is None
                                      else max(0.0, kill_deadline - time.monotonic()))
            except queue.Empty:
                self._kill_overrun(msgid, timeout_ms, interrupted=interrupted)
                kill_deadline = None
                continue  # the reader delivers the outcome once the worker is gone
            if isinstance(item, Response):
                self.tasks += 1
                try:
                    return self._outcome(item, decode)
                finally:
                    if not stack:
                        self.pool._after_call(self)
            if isinstance(item, _Dead):
                raise item.error
            if isinstance(item, _Started):
                if timeout_ms is not None and not interrupted:
                    kill_deadline = item.at + timeout_ms / 1000 + self.pool.limits.kill_grace_s
                continue
            if isinstance(item, _Interrupted):
                # The same ladder as a timeout: a script stuck in native code
                # that ignores the interrupt is killed after the grace.
                interrupted = True
                kill_deadline = item.at + self.pool.limits.kill_grace_s
                continue
            if kill_deadline is None:
                self._serve_host_call(item, slot.owner)
            else:
                # A host callable could block past the deadline: run it aside so
                # that this thread keeps the deadline. (A callable that never
                # returns keeps its thread; Python threads cannot be killed.)
                threading.Thread(target=self._serve_host_call, args=(item, slot.owner), daemon=True,
                                 name=f"isolate-host-call-{item.msgid}").start()

    def kill_for_memory(self, rss: int) -> None:
        with self._lock:
            if self.state is not WorkerState.READY:
                return
            self._memory_kill = rss
        try:
            self.process.kill()
        except OSError:
            pass

    def interrupt(self) -> None:
        """break_on_sigint: stop the interruptible call running here (SIGUSR1, then the ladder)."""
        slot = self._interruptible_slot
        if slot is not None and self.cancel(slot.msgid):
            slot.inbox.put(_Interrupted(time.monotonic()))

    def cancel(self, msgid: int) -> bool:
        """Ask the worker to stop request ``msgid`` (ignored there if it is not running)."""
        struct.pack_into("<q", self._cancel_cell, 0, msgid)
        try:
            os.kill(self.pid, signal.SIGUSR1)
        except ProcessLookupError:
            return False
        return True

    def _abandon(self, slot: CallSlot) -> None:
        """The caller gave up waiting (KeyboardInterrupt): stop the script, or the worker.

        The script is interrupted at once; one stuck in native code is killed
        after the grace, so an abandoned call never wedges its worker.
        """
        self.cancel(slot.msgid)
        state = {"asked_while_running": False}

        def kill_if_still_running():
            with self._lock:
                if slot.msgid not in self._pending or self.state is not WorkerState.READY:
                    return  # answered (or the worker is gone already)
                # The worker runs requests in order: only the oldest pending one
                # can be the script ignoring the interrupt. One still queued is
                # answered at once when its turn comes (the worker checks the
                # cancel cell first): look again later rather than kill.
                running = next(iter(self._pending)) == slot.msgid
            if running and state["asked_while_running"]:
                self._kill_overrun(slot.msgid, None, interrupted=True)
                return
            if running:
                # The cancel cell names one request at a time: ask again now
                # that this one is running, then kill if it still ignores it.
                self.cancel(slot.msgid)
                state["asked_while_running"] = True
            arm()

        def arm():
            timer = threading.Timer(self.pool.limits.kill_grace_s, kill_if_still_running)
            timer.daemon = True
            timer.start()

        arm()

    def _kill_overrun(self, msgid: int, timeout_ms: int | None, interrupted: bool = False) -> None:
        """Stage 2: the call outlived deadline + grace; kill its worker.

        The call is claimed first: an answer racing the kill is dropped, so
        the caller's outcome (a stop at stage "kill") agrees with the lost
        context. A call already answered is left alone.
        """
        with self._lock:
            if self.state is not WorkerState.READY:
                return
            slot = self._pending.pop(msgid, None)
            if slot is None:
                return  # answered in time after all
            self._overrun = (msgid, "interrupt" if interrupted else timeout_ms)
        slot.inbox.put(_Dead(self._error_for(slot, None, self._overrun)))
        try:
            self.process.kill()
        except OSError:
            pass

    def _outcome(self, response: Response, decode) -> Any:
        decode = decode or (lambda value, needs: finish_values(value, needs))
        if response.error is None:
            return decode(response.result, response.needs_finish)
        code, message, data = (list(response.error) + [None, None, None])[:3]
        raise self.pool._error_from_wire(code, message, data, response.needs_finish, decode)

    def _serve_host_call(self, request: Request, owner=None) -> None:
        """Run a host callable for JS, in this (the calling) thread."""
        stack = _serving_stack(self)
        stack.append(request.msgid)
        try:
            _, context_id, function_id, args = request.params
            context = self.pool._context_by_id(self, context_id)
            if context is None and owner is not None and owner._id in (0, context_id):
                owner._id = context_id  # a context the worker made within this call (run_new)
                context = owner
            fn = self.pool._host_functions.get(function_id)
            if fn is None:
                raise ContextLostError(f"host function {function_id} was released")
            args = context._decode(args, request.needs_finish) if context is not None else \
                finish_values(args, request.needs_finish)
            result = fn(*args)
            encoded = context._encode(result) if context is not None else encode_value(result)
            response = Response(request.msgid, None, encoded)
        except BaseException as exc:  # a host callable's failure becomes a JS exception
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            response = Response(request.msgid, error_triple(
                WireError.HOST_EXCEPTION, str(exc), encode_value(_error_value_of(exc))), None)
        finally:
            stack.pop()
        self._write_quietly(response)

    def _write_quietly(self, message) -> None:
        """Write if the worker is still there; a worker gone is reported by its reader."""
        with self._write_lock:
            if self.state is WorkerState.READY:
                try:
                    self._write(message)
                except OSError:
                    pass

    def close(self) -> None:
        self.begin_close()
        self.finish_close(time.monotonic() + self.pool.limits.close_grace_s)

    def begin_close(self) -> None:
        """Ask the worker to exit (end of its input); returns at once."""
        with self._lock:
            if self.state is WorkerState.CLOSED:
                self._closing_done = getattr(self, "_closing_done", True)
                return
            was_ready = self.state is WorkerState.READY
            self.state = WorkerState.CLOSED
            self._closing_done = False
        if was_ready:
            # End of input: the worker's loop reads EOF and exits.
            self._close_fd("write_fd")

    def finish_close(self, grace_deadline: float) -> None:
        """Wait for the worker until ``grace_deadline``, then kill it; reap it."""
        if getattr(self, "_closing_done", True):
            return
        self._closing_done = True
        if not self._wait_exit(max(0.0, grace_deadline - time.monotonic())):
            self.process.kill()
            self._wait_exit(self.pool.limits.reap_timeout_s)
        if threading.current_thread() is not self._reader:
            self._reader.join(self.pool.limits.reap_timeout_s)
        with self._fd_lock:
            pidfd, self._pidfd = self._pidfd, None
        if pidfd is not None:
            os.close(pidfd)

    def load(self) -> int:
        return self.live_contexts + len(self._pending)


def _dispatch_current():
    from .batch import current_future

    return current_future()


def _pidfd_open(pid: int) -> int | None:
    """A descriptor that becomes readable when ``pid`` exits (Linux 5.3+), or None."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _error_value_of(exc: BaseException) -> ErrorValue:
    if isinstance(exc, JSError):
        return ErrorValue(exc.name, exc.message, exc.stack)
    name = {TypeError: "TypeError", ValueError: "RangeError", NameError: "ReferenceError"}.get(
        type(exc), "Error")
    props = {"pythonType": type(exc).__name__}
    if isinstance(exc, IsolateError):
        # isolate's own errors mirror Node's (ERR_VM_*, ERR_INVALID_ARG_*): JS sees the code,
        # and the class Node throws them as.
        props["code"] = exc.code
        if isinstance(exc, (TypeError, InvalidArgValueError)):  # Node's ERR_INVALID_ARG_VALUE is a TypeError
            name = "TypeError"
        elif isinstance(exc, ValueError):
            name = "RangeError"
        else:
            name = "Error"
    message = str(exc) or type(exc).__name__
    return ErrorValue(name, message, f"{name}: {message}\n    at <host> ({type(exc).__name__})", props)


_live_pools: "weakref.WeakSet[Pool]" = weakref.WeakSet()
_atexit_registered = False
_shutting_down = False


def _close_live_pools() -> None:
    global _shutting_down
    _shutting_down = True
    for pool in list(_live_pools):
        pool.close()


def _register_atexit() -> None:
    """Close pools at exit *before* multiprocess's own exit handler runs.

    multiprocess registers its handler (which terminates daemonic children)
    when the first worker starts; atexit runs handlers last-in first-out, so
    ours is registered after that, once.
    """
    global _atexit_registered
    if not _atexit_registered:
        _atexit_registered = True
        atexit.register(_close_live_pools)


class Pool:
    """A supervised pool of worker processes hosting JavaScript contexts.

    ``size`` workers (default: one per CPU) are started at once. ``env``
    is the environment the workers see (default: empty; scripts never see
    it directly either). Thread-safe. Use as a context manager or call
    :meth:`close`; open pools are closed at interpreter exit.
    """

    def __init__(self, size: int | None = None, *, env: dict[str, str] | None = None,
                 spare_workers: int = 1, worker_memory_limit: int | str | None = None,
                 max_tasks_per_worker: int | None = None, max_worker_rss: int | str | None = None,
                 default_loader_root: str | None = None, limits: Limits | None = None):
        from .options import describe
        from .errors import InvalidArgTypeError, OutOfRangeError

        if size is None:
            size = os.cpu_count() or 1
        if isinstance(size, bool) or not isinstance(size, int):
            raise InvalidArgTypeError(f'The "size" argument must be of type int. Received {describe(size)}')
        if not 1 <= size <= 1024:
            raise OutOfRangeError(f'The value of "size" is out of range. It must be >= 1 && <= 1024. Received {size}')
        if isinstance(spare_workers, bool) or not isinstance(spare_workers, int):
            raise InvalidArgTypeError(
                f'The "spare_workers" argument must be of type int. Received {describe(spare_workers)}')
        if not 0 <= spare_workers <= 64:
            raise OutOfRangeError(
                f'The value of "spare_workers" is out of range. It must be >= 0 && <= 64. Received {spare_workers}')
        if env is not None and not (isinstance(env, dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in env.items())):
            raise InvalidArgTypeError(f'The "env" argument must be a dict of str to str. Received {describe(env)}')
        from .options import parse_size

        if max_tasks_per_worker is not None and (isinstance(max_tasks_per_worker, bool) or not isinstance(
                max_tasks_per_worker, int) or max_tasks_per_worker < 1):
            raise (OutOfRangeError if isinstance(max_tasks_per_worker, int) and not isinstance(
                max_tasks_per_worker, bool) else InvalidArgTypeError)(
                f'The "max_tasks_per_worker" argument must be an int >= 1. Received {describe(max_tasks_per_worker)}')
        # The directory constants.USE_MAIN_CONTEXT_DEFAULT_LOADER loads files from (isolate.modules):
        # import() never reaches outside it.
        if default_loader_root is not None:
            from .errors import InvalidArgValueError

            if not isinstance(default_loader_root, (str, os.PathLike)):
                raise InvalidArgTypeError('The "default_loader_root" argument must be of type str or os.PathLike. '
                                          f"Received {describe(default_loader_root)}")
            default_loader_root = os.path.realpath(os.fspath(default_loader_root))
            if not os.path.isdir(default_loader_root):
                raise InvalidArgValueError('The "default_loader_root" argument must be an existing directory. '
                                           f"Received {default_loader_root!r}")
        self.default_loader_root: str | None = default_loader_root
        self.worker_memory_limit = parse_size(worker_memory_limit, "worker_memory_limit",
                                              minimum=64 * 1024 * 1024)
        self.max_worker_rss = parse_size(max_worker_rss, "max_worker_rss", minimum=16 * 1024 * 1024)
        self.max_tasks_per_worker = max_tasks_per_worker
        self.size = size
        self.limits = limits or Limits()
        self._env = dict(env or {})
        self._lock = threading.RLock()
        self._workers_changed = threading.Condition(self._lock)  # notified when a slot gets a worker
        self._closed = False
        from .batch import Dispatcher

        # Forks every worker from one thread that lives as long as the pool
        # (PR_SET_PDEATHSIG follows the thread that forked, not the process).
        self._spawner = Dispatcher(1, name="isolate-spawner")
        self._workers: list[WorkerHandle] = []
        # Started, handshaken workers waiting to replace one that dies, so that
        # a replacement costs the caller nothing.
        self._spares: list[WorkerHandle] = []
        self.spare_workers = spare_workers
        # Recycling: workers out of rotation, closed once their contexts are gone,
        # and draining workers whose replacement is starting.
        self._retired: list[WorkerHandle] = []
        self._replacing: set[WorkerHandle] = set()
        self._host_functions: dict[int, Callable] = {}
        self._host_function_ids = itertools.count(1)
        self._contexts: "weakref.WeakValueDictionary" = weakref.WeakValueDictionary()
        self._main_context = None
        self._main_context_lock = threading.Lock()
        self._context_counter = itertools.count(1)
        # Threads for submit/map/run_batch and the a* twins: two per worker, so
        # each worker has one call queued while it answers another.
        self._dispatcher = Dispatcher(max(2, 2 * size))
        try:
            for index in range(size):
                self._workers.append(WorkerHandle(self, index))
            for _ in range(spare_workers):
                self._spares.append(WorkerHandle(self, -1))
        except BaseException:
            self.close()
            raise
        _live_pools.add(self)
        _register_atexit()
        self._watchdog_stop = threading.Event()
        if self.worker_memory_limit or self.max_worker_rss:
            threading.Thread(target=self._watch_memory, name="isolate-rss-watchdog", daemon=True).start()

    # -- lifecycle -----------------------------------------------------------
    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        """Stop every worker; pending calls fail with PoolClosedError. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            workers_ = list(self._workers) + list(self._spares) + list(self._retired)
            self._workers_changed.notify_all()
        if hasattr(self, "_watchdog_stop"):
            self._watchdog_stop.set()
        # All at once: every worker gets the same grace, not one grace each.
        for worker in workers_:
            worker.begin_close()
        grace_deadline = time.monotonic() + self.limits.close_grace_s
        for worker in workers_:
            worker.finish_close(grace_deadline)
        self._spawner.stop()
        if hasattr(self, "_dispatcher"):
            self._dispatcher.stop()

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
            if worker in self._spares:
                self._spares.remove(worker)
                slot_to_fill = None          # refill the spares
            elif worker in self._workers:
                index = self._workers.index(worker)
                if self._spares:
                    spare = self._spares.pop(0)
                    spare.index = worker.index
                    self._workers[index] = spare
                    self._workers_changed.notify_all()
                    slot_to_fill = None      # the spare took the slot: refill the spares
                else:
                    slot_to_fill = index
            else:
                return
        self._refill(slot_to_fill)

    def _refill(self, index: int | None) -> None:
        """Start one worker: into slot ``index`` if given, else as a spare."""
        try:
            fresh = WorkerHandle(self, -1 if index is None else index)
        except IsolateError:
            return  # the next pick finds no READY worker in that slot and uses another
        with self._lock:
            if self._closed:
                stale = fresh
            elif index is None:
                self._spares.append(fresh)
                stale = None
            else:
                self._workers[index] = fresh
                self._workers_changed.notify_all()
                stale = None
        if stale is not None:
            stale.close()

    # -- memory and recycling ----------------------------------------------------
    def _watch_memory(self) -> None:
        """Sample worker RSS: kill a worker over worker_memory_limit, mark one over
        max_worker_rss for recycling (drained between calls, never killed mid-call)."""
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
                    worker.draining = True
                    self._retire_if_idle(worker)

    def _after_call(self, worker: WorkerHandle) -> None:
        """Recycling check between calls (never mid-call)."""
        if self.max_tasks_per_worker and worker.tasks >= self.max_tasks_per_worker:
            worker.draining = True
        if worker.draining:
            self._retire_if_idle(worker)

    def _retire_if_idle(self, worker: WorkerHandle) -> None:
        """Replace a draining worker once it hosts no live context and runs no call.

        A worker with live contexts is drained, not killed: it keeps serving
        them and gets no new ones. Its replacement takes its slot first (a
        spare at once, else a fresh worker started off the caller's path);
        the old worker is closed only once idle (see _close_idle_retired).
        """
        with self._lock:
            if (self._closed or worker not in self._workers or worker.live_contexts > 0
                    or worker._pending or worker in self._replacing):
                return
            if self._spares:
                spare = self._spares.pop(0)
                spare.index = worker.index
                self._workers[self._workers.index(worker)] = spare
                self._workers_changed.notify_all()
                self._retired.append(worker)
                refill = True
            else:
                self._replacing.add(worker)
                refill = False
        target = self._refill if refill else self._replace_retiring
        threading.Thread(target=target, args=(None,) if refill else (worker,),
                         name=f"isolate-recycle-{worker.pid}", daemon=True).start()
        self._close_idle_retired()

    def _replace_retiring(self, worker: WorkerHandle) -> None:
        try:
            fresh = WorkerHandle(self, worker.index)
        except IsolateError:
            with self._lock:
                self._replacing.discard(worker)
            return  # keep the draining worker: better than no worker
        with self._lock:
            self._replacing.discard(worker)
            if self._closed or worker not in self._workers:
                stale = fresh
            else:
                self._workers[self._workers.index(worker)] = fresh
                self._workers_changed.notify_all()
                self._retired.append(worker)
                stale = None
        if stale is not None:
            stale.close()
        self._close_idle_retired()

    def _close_idle_retired(self) -> None:
        """Close retired workers whose last context is gone (they take no new ones)."""
        with self._lock:
            idle = [w for w in self._retired if w.live_contexts <= 0 and not w._pending]
            for w in idle:
                self._retired.remove(w)
        for w in idle:
            threading.Thread(target=w.close, name=f"isolate-retire-{w.pid}", daemon=True).start()

    def _worker_memory(self, worker: WorkerHandle, eager: bool) -> dict:
        return worker.request("memory", [bool(eager)])

    def measure_memory(self, mode: str = "summary", execution: str = "default", /, **kwargs) -> "Future":
        """``vm.measureMemory``: an :class:`isolate.Future` of Node's result shape.

        ``{"total": {"jsMemoryEstimate": n, "jsMemoryRange": [lo, hi]}}`` over
        every context of the pool (QuickJS's own accounting: bytes in use, and
        bytes allocated as the upper end of the range); ``mode="detailed"``
        adds ``"current"`` (the main context) and ``"other"`` (one entry per
        other context). ``execution="eager"`` collects garbage first. Beyond
        Node: ``"workers"``, each worker's pid, RSS and USS (from psutil) and
        the contexts it hosts.
        """
        from .errors import InvalidArgTypeError, InvalidArgValueError
        from .futures import run_in_thread
        from .options import describe

        options = dict(kwargs)
        mode = options.pop("mode", mode)
        execution = options.pop("execution", execution)
        for name, value, allowed in (("mode", mode, ("summary", "detailed")),
                                     ("execution", execution, ("default", "eager"))):
            if not isinstance(value, str):
                raise InvalidArgTypeError(f'The "options.{name}" property must be of type str. Received {describe(value)}')
            if value not in allowed:
                raise InvalidArgValueError(
                    f"The property 'options.{name}' must be one of: {', '.join(map(repr, allowed))}. Received {value!r}")
        if options:
            raise InvalidArgValueError(f"The property 'options.{next(iter(options))}' is not a known option of measure_memory()")
        self._check_open()
        return run_in_thread(lambda: self._measure(mode == "detailed", execution == "eager"),
                             "isolate-measure-memory")

    def _measure(self, detailed: bool, eager: bool) -> dict:
        with self._lock:
            workers_ = [w for w in self._workers if w.state is WorkerState.READY]
        main = self._main_context
        total_used = total_alloc = 0
        current = {"jsMemoryEstimate": 0, "jsMemoryRange": [0, 0]}
        other = []
        worker_reports = []
        for worker in workers_:
            figures = self._worker_memory(worker, eager)
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
        result = {"total": {"jsMemoryEstimate": total_used, "jsMemoryRange": [total_used, total_alloc]}}
        if detailed:
            result["current"] = current
            result["other"] = other
        result["workers"] = worker_reports
        return result

    def _pick_worker(self) -> WorkerHandle:
        with self._lock:
            self._check_open()
            # A draining worker whose last context went away retires now (its
            # contexts are released by GC, so this is where we notice).
            for worker in [w for w in self._workers if w.draining]:
                self._retire_if_idle(worker)
            if self._retired:
                self._close_idle_retired()
            deadline = time.monotonic() + self.limits.handshake_timeout_s
            while True:
                ready = [w for w in self._workers if w.state is WorkerState.READY and not w.draining]
                if not ready:
                    ready = [w for w in self._workers if w.state is WorkerState.READY]
                if ready:
                    return min(ready, key=lambda w: w.load())
                # Every worker just died: wait for a replacement (they are started
                # at once), not longer than a worker takes to start.
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise WorkerCrashedError(-1, None, "no live worker in the pool")
                self._workers_changed.wait(remaining)
                self._check_open()

    # -- host functions ------------------------------------------------------
    def _register_host_function(self, fn: Callable) -> HostFunctionRef:
        with self._lock:
            function_id = next(self._host_function_ids)
            self._host_functions[function_id] = fn
        return HostFunctionRef(function_id, getattr(fn, "__name__", "") or "")

    def _release_host_functions(self, ids: list[int]) -> None:
        with self._lock:
            for function_id in ids:
                self._host_functions.pop(function_id, None)

    def _context_by_id(self, worker: WorkerHandle, context_id: int):
        return self._contexts.get((id(worker), context_id))

    # -- errors from the wire --------------------------------------------------
    def _error_from_wire(self, code, message, data, needs_finish, decode) -> IsolateError:
        if code == WireError.JS_EXCEPTION.value:
            # data is [thrown value, the context's globals after the failed run or None,
            # and (when asked for) the call's stats]
            thrown, globals_, *stats = decode(data, needs_finish)
            error = _thrown(thrown)
            error._mirror = globals_
            error._stats = stats[0] if stats else None
            return error
        if code == WireError.SCRIPT_INTERRUPTED.value:
            return ScriptInterruptedError()
        if code == WireError.SCRIPT_TIMEOUT.value:
            return ScriptTimeoutError(data if isinstance(data, (int, float)) else 0)
        if code == WireError.CONTEXT_UNUSABLE.value:
            return ContextLostError(f"the context can no longer run code: {message}")
        if code == WireError.UNKNOWN_CONTEXT.value:
            return ContextLostError(str(message))
        if code == WireError.UNSUPPORTED.value:
            return UnsupportedError(str(message))
        if code == WireError.UNKNOWN_SCRIPT.value:
            return ScriptNotCached(str(message))
        if code == WireError.UNENCODABLE.value:
            return UnencodableValueError(str(message))
        if code == WireError.NESTING_TOO_DEEP.value:
            return NestingTooDeepError(str(message))
        return ProtocolViolationError(f"{code}: {message}")

    # -- the API ---------------------------------------------------------------
    def create_context(self, context_object=None, options=None, /, **kwargs):
        """Like ``vm.createContext``: see :func:`isolate.create_context`."""
        from .api import _create_context
        return _create_context(self, context_object, options, kwargs)

    @property
    def main_context(self):
        """The pool's persistent context for ``run_in_this_context`` (created on first use)."""
        # Its own lock, not the pool's: creating it is a round trip, and a
        # Context finalizer (run by the garbage collector on whatever thread,
        # even a reader thread that this round trip waits for) takes the pool's.
        with self._main_context_lock:
            if self._main_context is None:
                from .context import Context
                self._main_context = Context._create(self, None, name="main", origin="")
            return self._main_context

    def run_in_context(self, code, context, options=None, /, **kwargs):
        from .api import run_in_context
        return run_in_context(code, context, options, **kwargs)

    def run_in_new_context(self, code, context_object=None, options=None, /, **kwargs):
        from .api import _run_in_new_context
        return _run_in_new_context(self, code, context_object, options, kwargs)

    def run_in_this_context(self, code, options=None, /, **kwargs):
        from .api import _run_in_this_context
        return _run_in_this_context(self, code, options, kwargs)

    def compile_function(self, code, params=(), options=None, /, **kwargs):
        from .api import _compile_function
        return _compile_function(self, code, params, options, kwargs)

    # -- futures and asyncio ------------------------------------------------------
    # One shape: every call that can take a while has a twin that returns an
    # isolate.Future at once. A Future is a concurrent.futures.Future (wait on
    # it, pass it to concurrent.futures.wait/as_completed) and is awaitable
    # (`await pool.arun_in_new_context(...)` never blocks the event loop);
    # cancelling it, or the asyncio task awaiting it, stops the call.

    def submit(self, code_or_script, context_object=None, options=None, /, **kwargs) -> "Future":
        """Run ``code_or_script`` in a fresh context on any worker (as run_in_new_context)."""
        from .api import Script, _run_in_new_context

        self._check_open()
        if isinstance(code_or_script, Script):
            script = code_or_script
            return self._dispatcher.submit(
                lambda: _run_script_in_new_context(self, script, context_object, options, kwargs))
        return self._dispatcher.submit(
            lambda: _run_in_new_context(self, code_or_script, context_object, options, kwargs))

    def arun_in_new_context(self, code, context_object=None, options=None, /, **kwargs) -> "Future":
        """The awaitable twin of run_in_new_context (same as submit)."""
        return self.submit(code, context_object, options, **kwargs)

    def arun_in_context(self, code, context, options=None, /, **kwargs) -> "Future":
        """The awaitable twin of run_in_context."""
        self._check_open()
        return self._dispatcher.submit(lambda: self.run_in_context(code, context, options, **kwargs))

    def arun_in_this_context(self, code, options=None, /, **kwargs) -> "Future":
        """The awaitable twin of run_in_this_context."""
        self._check_open()
        return self._dispatcher.submit(lambda: self.run_in_this_context(code, options, **kwargs))

    def acall(self, fn, *args, timeout=None) -> "Future":
        """The awaitable twin of calling a JSFunction: ``await pool.acall(fn, 1, 2)``."""
        self._check_open()
        return self._dispatcher.submit(lambda: fn(*args, timeout=timeout))

    def map(self, code_or_script, context_objects, *, timeout=None, ordered=True,
            max_in_flight=None, **options):
        """Run the script once per context object; yield the completion values.

        Streams: input is consumed lazily and at most ``max_in_flight``
        (default twice the pool size) calls are in flight, so memory stays
        bounded however long the input is. ``ordered=False`` yields as calls
        complete. ``timeout`` is each script's timeout in milliseconds (as
        everywhere in isolate). A failed call raises its error when its turn
        comes, like ``concurrent.futures.Executor.map``; the rest are cancelled.
        """
        from .batch import check_in_flight, stream

        in_flight = check_in_flight(max_in_flight, 2 * self.size)
        if timeout is not None:
            options["timeout"] = timeout
        for future in stream(lambda obj: self.submit(code_or_script, obj, **options), context_objects,
                             ordered=ordered, max_in_flight=in_flight):
            yield future.result()

    def run_batch(self, jobs, **options):
        """One record per job; see :func:`isolate.batch.run_batch`."""
        from .batch import run_batch

        return run_batch(self, jobs, **options)


def _run_script_in_new_context(pool, script, context_object, options, kwargs):
    from .api import _run_in_new_context

    opts = dict(kwargs)
    if isinstance(options, dict):
        opts.update(options)
    opts.setdefault("filename", script.filename)
    opts.setdefault("line_offset", script.line_offset)
    opts.setdefault("column_offset", script.column_offset)
    return _run_in_new_context(pool, script.code, context_object, None, opts)


def _thrown(value: Any) -> IsolateError:
    """The exception to raise for a thrown JS value."""
    if isinstance(value, JSError):
        return value
    err = JSError(f"Uncaught {_js_repr(value)}", name="Error", value=value)
    err.thrown_non_error = True
    return err


def _js_repr(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "null"
    return str(value)
