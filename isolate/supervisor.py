"""One worker process's life: spawn, handshake, read, write, signal, kill, reap.

The bottom of the host's stack::

    pool       routing, replacement, recycling          (isolate.pool)
    scheduler  every call's lifecycle, the kill ladder  (isolate.scheduler)
    supervisor one worker process                       (this module)
    protocol   messages on pipes                        (protocol)

A :class:`WorkerHandle` owns one worker: its process (forked by the pool's
zygote, see isolate.zygote), its pipes, the page of memory it shares with the host (the *cell*: which request the host asks to
stop, which request the worker has started) and a reader thread. The reader
hands every message to the scheduler and, when the stream ends or turns to
nonsense, reaps the process and reports the loss with its exit status named.
The handle never decides what happens to a call: it reports, the scheduler
decides (under its lock, which also guards this handle's ``state``).
"""

from __future__ import annotations

import enum
import itertools
import logging
import os
import queue
import select
import signal
import struct
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any

from .protocol import (
    PROTOCOL_VERSION, MessageStream, Notification, ProtocolError, Request, Response, StreamClosed,
    pack_message,
)

from .errors import IsolateError, ProtocolViolationError, WorkerCrashedError, WorkerMemoryError, describe_exit
from .scripts import KnownScripts
from .threads import start, start_daemon

if TYPE_CHECKING:
    from .scheduler import Call, Scheduler
    from .zygote import Zygote

__all__ = ["WorkerHandle", "WorkerState", "CELL_SIZE"]

# A worker's life, for operators: started (INFO), killed or died (WARNING: something
# went wrong), closed by its pool (DEBUG). Each record carries the attributes
# worker_pid, event ("started", "killed", "died", "closed"), reason, exitcode and
# signal (the signal's name, or None).
log = logging.getLogger("isolate.supervisor")

# The cell: bytes 0-8 hold the msgid the host asks the worker to stop (the
# host writes it, then sends SIGUSR1); bytes 8-16 the msgid of the top-level
# request the worker started last (the worker writes it before running
# anything), so that after a crash the host knows whether a call had started.
CELL_SIZE = 16
_STOP_AT, _STARTED_AT = 0, 8


class WorkerState(enum.Enum):
    STARTING = "starting"
    READY = "ready"
    BROKEN = "broken"   # terminal: the process died or the stream is corrupt
    CLOSED = "closed"   # terminal: the pool closed it


class WorkerHandle:
    """One worker process, its pipes, its shared cell and its reader thread.

    ``state``, ``running``, ``nested`` and ``queue`` belong to the scheduler
    and change only under its lock.
    """

    def __init__(self, scheduler: "Scheduler", index: int, *, zygote: "Zygote"):
        self.scheduler = scheduler
        self.limits = scheduler.limits
        self.index = index
        self.state = WorkerState.STARTING
        # Scheduler-owned call state (see isolate.scheduler).
        self.running: "Call | None" = None         # the top-level call the worker runs now
        self.nested: dict[int, "Call"] = {}        # calls made from host callables, inside `running`
        self.queue: list["Call"] = []              # calls pinned here, waiting for `running` to end
        self.overrun: "Call | None" = None         # the call whose deadline got this worker killed
        self.memory_kill: int | None = None        # the RSS that got this worker killed
        self.failure: IsolateError | None = None   # what later calls here fail with, once BROKEN
        self.interruptible_call: "Call | None" = None  # the break_on_sigint call a SIGINT stops
        self.tasks = 0          # top-level calls answered, for max_tasks_per_worker
        self.draining = False   # recycling: no new contexts; retired once idle
        self.drain_reason = ""  # why it is draining (for the log)
        self.killed = False     # the host sent it SIGKILL (a deadline, a memory cap, nonsense)
        self.live_contexts = 0
        self.contexts: "weakref.WeakSet" = weakref.WeakSet()  # Context proxies hosted here (to mark them lost)
        self.scripts = KnownScripts()  # keys of scripts this worker compiled (see isolate.scripts)
        self._msgids = itertools.count(1)
        self.last_msgid = 0   # the highest msgid sent: an answer above it answers nothing we asked
        # The reader never waits for a writer: a caller blocked writing a large
        # request into a full pipe must not keep the reader from draining the
        # worker's (large) answer, or both sides would wait on each other.
        self._write_lock = threading.Lock()
        self._fd_lock = threading.Lock()       # guards closing the pipe ends (see _close_fd)
        # Releases of handles and contexts, queued by GC finalizers (which may
        # run inside any code, even while some thread holds a lock: so they
        # only enqueue) and flushed before the next message is written.
        self._releases: queue.SimpleQueue = queue.SimpleQueue()
        # Forked by the pool's zygote (isolate.zygote): nothing of this process is
        # in the worker, and the shared page is this worker's and the host's only.
        self.process = zygote.spawn(f"#{index}" if index >= 0 else "spare")
        self.pid = self.process.pid
        self.cell = self.process.cell
        self._stream = MessageStream(self.process.read_fd, self.process.write_fd)
        self._closing_done = True
        self._reader = threading.Thread(target=self._read_loop, name=f"isolate-reader-{self.pid}",
                                        daemon=True)
        self._handshake()
        start(self._reader)
        log.info("worker %d started (%s)", self.pid, f"slot #{index}" if index >= 0 else "spare",
                 extra={"worker_pid": self.pid, "event": "started", "reason": "", "exitcode": None, "signal": None})

    def __repr__(self) -> str:
        return f"<WorkerHandle pid={self.pid} {self.state.value}>"

    def _handshake(self) -> None:
        result: dict = {}

        def exchange():
            try:
                self._stream.write(Request(0, "hello", [PROTOCOL_VERSION]))
                result["reply"] = self._stream.read()
            except BaseException as exc:  # reported below, in the caller's thread
                result["error"] = exc

        thread = start_daemon(exchange, name=f"isolate-handshake-{self.pid}")
        thread.join(self.limits.handshake_timeout_s)
        reply = result.get("reply")
        if not isinstance(reply, Response) or reply.error is not None:
            self.process.kill()
            self.wait_exit(self.limits.reap_timeout_s)
            self._close_fds()
            self.process.close()
            detail = reply.error[1] if isinstance(reply, Response) else result.get("error", "no answer")
            _log_end(logging.DEBUG if self._pool_closed() else logging.WARNING, self.pid, "killed",
                     f"its handshake failed: {detail}", self.process.exitcode)
            raise WorkerCrashedError(self.pid, self.process.exitcode, f"handshake failed: {detail}")
        self.info = reply.result
        self.state = WorkerState.READY

    # -- reading -------------------------------------------------------------------
    def _read_loop(self) -> None:
        cause: BaseException | None = None
        try:
            while True:
                message = self._stream.read()
                if isinstance(message, Response):
                    self.scheduler.on_response(self, message)
                elif isinstance(message, Request) and message.method == "call_host":
                    self.scheduler.on_host_request(self, message)
                else:
                    raise ProtocolError(f"unexpected message from worker: {message!r:.100}")
        except StreamClosed:
            pass
        except Exception as exc:  # the reader's top level: any failure breaks this worker only
            cause = exc
        self._lost(cause)

    def _lost(self, cause: BaseException | None) -> None:
        """The stream ended (or talked nonsense): kill if needed, reap, report once."""
        if cause is not None and not isinstance(cause, OSError):
            self.kill()  # a worker that talks nonsense is not trusted to exit by itself
        self.scheduler.on_worker_exiting(self)
        self.wait_exit(self.limits.reap_timeout_s)
        detail = f"protocol error: {cause}" if cause is not None and not isinstance(cause, OSError) else ""
        if cause is not None and not isinstance(cause, OSError):
            # It talked nonsense (a compromised or broken worker): the call it ran fails
            # with the protocol's error, not as a crash of the script's doing.
            error: IsolateError = ProtocolViolationError(
                f"worker {self.pid} sent a malformed message and was killed: {cause}")
        elif self.memory_kill is not None:
            error = WorkerMemoryError(
                self.pid, self.process.exitcode,
                f"its RSS reached {self.memory_kill} bytes, over the pool's worker_memory_limit")
        else:
            error = WorkerCrashedError(self.pid, self.process.exitcode, detail)
        self._log_end(cause)
        self.scheduler.on_worker_lost(self, error)
        self._close_fds()

    def _pool_closed(self) -> bool:
        return bool(getattr(self.scheduler.pool, "closed", False))

    def _log_end(self, cause: BaseException | None) -> None:
        exitcode = self.process.exitcode
        if self.state is WorkerState.CLOSED or self._pool_closed():
            # (also a worker still starting when its pool closed: the zygote ends it)
            _log_end(logging.DEBUG, self.pid, "closed", "its pool closed it", exitcode)
        elif cause is not None and not isinstance(cause, OSError):
            _log_end(logging.WARNING, self.pid, "killed", f"it sent a malformed message: {cause}", exitcode)
        elif self.memory_kill is not None:
            _log_end(logging.WARNING, self.pid, "killed", f"its RSS reached {self.memory_kill} bytes, "
                     "over the pool's worker_memory_limit", exitcode)
        elif self.overrun is not None:
            _log_end(logging.WARNING, self.pid, "killed", "a call ran past its deadline and did not stop "
                     "when interrupted", exitcode)
        elif self.killed:
            _log_end(logging.WARNING, self.pid, "killed", "it did not start a call sent to it "
                     f"within {self.limits.start_timeout_s:g} s (stopped or wedged)", exitcode)
        else:
            _log_end(logging.WARNING, self.pid, "died", "it ended by itself, or something else killed it",
                     exitcode)

    def started_msgid(self) -> int:
        """The msgid of the last top-level request the worker started (0: none)."""
        return struct.unpack_from("<q", self.cell, _STARTED_AT)[0]

    # -- writing -------------------------------------------------------------------
    def next_msgid(self) -> int:
        self.last_msgid = next(self._msgids)
        return self.last_msgid

    def write(self, message) -> int:
        """Write one message (queued releases first); its size in bytes. Raises OSError if
        the worker is gone.

        A frame is never left torn by Ctrl-C: see :func:`_write_holding_sigint`. An
        interrupt that came while the frame went out is raised once it is whole,
        marked ``isolate_frame_sent`` (the worker has the request: the caller's
        bookkeeping must say so); if the worker takes nothing more for the grace,
        the frame cannot be finished: the worker is killed and the interrupt raised.
        """
        data = pack_message(message)
        with self._write_lock:
            self._flush_releases()
            if len(data) <= select.PIPE_BUF or threading.current_thread() is not threading.main_thread():
                # One write(2) of at most PIPE_BUF bytes is whole or nothing, and
                # Python runs signal handlers in the main thread only.
                self._stream.write_bytes(data)
                return len(data)
            try:
                _write_holding_sigint(self._stream.write_fd, data, self.limits.kill_grace_s)
            except _FrameTorn as torn:
                self.kill()  # its input is half a message: nothing it reads next would make sense
                raise torn.interrupt from None
        return len(data)

    def write_quietly(self, message) -> None:
        """Write if the worker is still there; a worker gone is reported by its reader."""
        try:
            self.write(message)
        except (OSError, ValueError):
            pass

    def queue_release(self, method: str, params: list) -> None:
        """Queue a release notification; safe to call from a GC finalizer."""
        self._releases.put((method, params))

    def _flush_releases(self) -> None:
        # Called with _write_lock held. (Looked at first: get_nowait on an empty
        # queue raises, which costs more than the check, and it is almost always empty.)
        if self._releases.empty():
            return
        while True:
            try:
                method, params = self._releases.get_nowait()
            except queue.Empty:
                return
            self._stream.write(Notification(method, params))

    # -- signals -------------------------------------------------------------------
    def cancel(self, msgid: int) -> bool:
        """Ask the worker to stop request ``msgid`` (ignored there unless it runs it)."""
        struct.pack_into("<q", self.cell, _STOP_AT, msgid)
        return self.process.send_signal(signal.SIGUSR1)

    def interrupt(self) -> None:
        """break_on_sigint: stop the interruptible call here (safe in a signal handler)."""
        self.scheduler.interrupt(self)

    def kill(self) -> None:
        self.killed = True
        self.process.kill()

    def kill_for_memory(self, rss: int) -> None:
        if self.state is WorkerState.READY and self.memory_kill is None:
            self.memory_kill = rss
            self.kill()

    def wait_exit(self, timeout: float) -> bool:
        """Wait up to ``timeout`` s for the process to exit and its status to be known."""
        return self.process.wait(timeout) is not None

    # -- closing -------------------------------------------------------------------
    def begin_close(self) -> None:
        """Ask the worker to exit (end of its input); returns at once.

        The scheduler has already marked this handle CLOSED (and failed its
        queued calls); a call still running ends with PoolClosedError when the
        reader sees the stream end.
        """
        self._closing_done = False
        self._close_fd("write_fd")

    def finish_close(self, grace_deadline: float) -> None:
        """Wait for the worker until ``grace_deadline``, then kill it; reap it."""
        if self._closing_done:
            return
        self._closing_done = True
        if not self.wait_exit(max(0.0, grace_deadline - time.monotonic())):
            self.kill()
            self.wait_exit(self.limits.reap_timeout_s)
        if threading.current_thread() is not self._reader:
            self._reader.join(self.limits.reap_timeout_s)
        self.process.close()

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

    # -- convenience -----------------------------------------------------------------
    def request(self, method: str, params: list, decode=None, timeout_ms: int | None = None,
                interruptible: bool = False, owner=None) -> Any:
        """A call pinned to this worker (see :meth:`Scheduler.request`)."""
        return self.scheduler.request(self, method, params, decode=decode, timeout_ms=timeout_ms,
                                      interruptible=interruptible, owner=owner)

    def load(self) -> int:
        return self.live_contexts + len(self.queue) + (self.running is not None)


def _log_end(level: int, pid: int, event: str, reason: str, exitcode: int | None) -> None:
    """One record per worker that ends: what ended it, its exit code and signal named."""
    signal_name = None
    if exitcode is not None and exitcode < 0:
        try:
            signal_name = signal.Signals(-exitcode).name
        except ValueError:
            signal_name = f"signal {-exitcode}"
    log.log(level, "worker %d %s (%s): %s", pid, event, describe_exit(exitcode), reason,
            extra={"worker_pid": pid, "event": event, "reason": reason, "exitcode": exitcode,
                   "signal": signal_name})


class _FrameTorn(Exception):
    def __init__(self, interrupt: BaseException):
        super().__init__("a frame was left unfinished")
        self.interrupt = interrupt


def _write_holding_sigint(fd: int, data: bytes, grace_s: float) -> None:
    """Write ``data`` whole from the main thread, holding a SIGINT until it is.

    Python runs a signal handler between any two bytecodes of the main thread,
    so Ctrl-C during a large write (more than one write(2)) used to leave half
    a message on the pipe: the worker then read the next message as the rest
    of it, and was killed for not starting the call, with all its contexts.
    Here the handler only notes the signal; the write goes on (non-blocking,
    polled, so that it can be given up), and the original handler runs once
    the frame is whole. If the worker reads nothing for ``grace_s`` after the
    signal (stopped, wedged) and the original handler raises, the frame is
    given up: :class:`_FrameTorn` carries what it raised.
    """
    caught: list = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: caught.append(frame))
    delivered = False
    try:
        os.set_blocking(fd, False)
        try:
            view = memoryview(data)
            poller = select.poll()
            poller.register(fd, select.POLLOUT)
            give_up_at = None
            while view:
                try:
                    view = view[os.write(fd, view):]
                    continue
                except BlockingIOError:
                    pass
                # (Given up only for a handler set from Python: SIG_DFL's action, a
                # signal raised again, would reach the noting handler still in place.)
                if caught and not delivered and callable(previous):
                    now = time.monotonic()
                    if give_up_at is None:
                        give_up_at = now + grace_s
                    elif now >= give_up_at:
                        delivered = True
                        interrupt = _interrupt_of(previous, caught[0])
                        if interrupt is not None:
                            raise _FrameTorn(interrupt)
                poller.poll(50)  # in slices: a signal noted meanwhile starts the grace
        finally:
            os.set_blocking(fd, True)
    finally:
        signal.signal(signal.SIGINT, previous)
    if caught and not delivered:
        interrupt = _interrupt_of(previous, caught[0])
        if interrupt is not None:
            interrupt.isolate_frame_sent = True  # type: ignore[attr-defined]
            raise interrupt


def _interrupt_of(handler: Any, frame: Any) -> BaseException | None:
    """Run the SIGINT handler that was held back; what it raised, if anything."""
    if handler is signal.SIG_IGN:
        return None
    if not callable(handler):  # SIG_DFL, or a handler not set from Python: let it act now
        signal.raise_signal(signal.SIGINT)
        return None
    try:
        handler(signal.SIGINT, frame)
    except BaseException as exc:
        return exc
    return None
