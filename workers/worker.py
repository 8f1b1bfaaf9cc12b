"""The worker process: serves msgpack-RPC requests against the contexts it hosts.

Single-threaded, like QuickJS. The main loop reads one request at a time and
answers it. While a script runs, JavaScript may call a host function: the
worker then sends a ``call_host`` request and keeps reading; requests nested
in that call (the host calling back into JS) are served at once, anything
else waits in a backlog until the outer request is answered.

Timeouts are a timer signal (SIGALRM): dukpy's interrupt hook runs Python
signal handlers between bytecodes, so the handler's exception stops the
script. SIGALRM is blocked while a frame is being written or fed to the
decoder, so a timeout can never cut a message in half.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import struct
import sys
import time
import traceback
from collections import OrderedDict, deque
from typing import Any

import orjson

from ..protocol import (
    MAX_NESTING, PROTOCOL_VERSION, ErrorValue, MessageStream, Notification, ProtocolError, Request,
    Response, StreamClosed, UnencodableValue, WireError, encode_value, error_triple,
    finish_values,
)
from ..protocol.values import JSONText

from .engine import (
    EngineContext, EngineError, engine_running, in_abort_tail, reset_for_new_process,
)
from .engine_api import EngineKind, engine_kind
from .jobs import JobMethods
from .modules import ModuleMethods
from .tagged import from_tagged, to_tagged

__all__ = ["Worker", "main", "MAX_NESTING"]


def _use_engine(kind: EngineKind) -> None:
    """Bind this module's engine hooks (called by the stop handlers and the stream on
    every message) to the worker's engine: plain functions, no indirection per call."""
    global engine_running, in_abort_tail
    engine_running, in_abort_tail = kind.running, kind.in_abort_tail

# A syntax check compiles; it only runs code when a body closes its wrapper
# early. Compiling even megabytes of source takes well under this.
SYNTAX_CHECK_TIMEOUT_MS = 2000
# Bound of engine work the worker does on its own behalf (releases, stats, module
# bookkeeping) when the host gives no timeout: such ops run no user code unless a
# script hooked a builtin they touch, and this is what stops that.
INTERNAL_OP_TIMEOUT_MS = 10_000
# The `code` of the RangeError a host call nested too deep throws in JS.
NESTING_TOO_DEEP_CODE = "ERR_ISOLATE_NESTING_TOO_DEEP"
# The largest timeout a request may carry (Node's uint32 limit; setitimer's range).
MAX_TIMEOUT_MS = 2**32 - 1
# Delay of a re-delivered timeout: short, so the script stops almost at once
# once control is back in the engine.
_RETRIP_S = 50e-6


class DeadlineToken:
    """Names one deadline, and the request it belongs to (its msgid; 0: none)."""

    __slots__ = ("owner",)

    def __init__(self, owner: int):
        self.owner = owner


class ScriptTimeout(BaseException):
    """Raised by the SIGALRM handler inside the engine; carries the deadline that expired.

    A BaseException so that no ``except Exception`` on the way out catches it.
    """

    def __init__(self, token: DeadlineToken):
        super().__init__("timeout")
        self.token = token


class Deadlines:
    """Nested deadlines on one ITIMER_REAL: the timer is always armed for the earliest."""

    def __init__(self):
        self._active: list[tuple[float, object]] = []
        # Set when an interrupt had to be re-delivered (see Worker._reraise_later):
        # the next alarm raises it instead of a timeout.
        self.pending_interrupt = 0  # msgid of an interrupt to re-deliver, 0 for none
        self.fired: object = None   # token of the last deadline whose stop was raised
        self.fired_interrupt = 0    # msgid of the last interrupt raised
        self.executing: list[int] = []
        # True while a stop handler runs. Python runs a handler for a signal that
        # arrives during another handler inside it; the re-delivery timer (50 µs)
        # can expire while a handler walks a deep stack (in_abort_tail), and each
        # nested run would arm it again: unbounded recursion, then a RecursionError
        # instead of the stop. A nested run only re-arms the timer and returns.
        self.handling = False
        # When the armed timer fires (monotonic), None when disarmed. The timer
        # only has to fire no later than the earliest deadline: the handler
        # re-arms for what is left when it fires early. So a deadline later
        # than the armed one costs no system call, and the timer is not
        # disarmed when a deadline ends: for back-to-back calls with the same
        # timeout that saves both setitimer calls of almost every call.
        self._fires_at: float | None = None
        signal.signal(signal.SIGALRM, self._on_alarm)

    def redeliver_soon(self) -> None:
        self._set_timer(_RETRIP_S)

    def _set_timer(self, delay: float) -> None:
        # Recorded first: a handler that runs between the two lines (for a timer
        # that just fired) records its own arming, which stands; taken before the
        # system call, the time is a few microseconds early, never late.
        self._fires_at = time.monotonic() + delay if delay > 0 else None
        signal.setitimer(signal.ITIMER_REAL, delay)

    def stop_due(self) -> bool:
        """Whether the alarm just received will raise a stop (for engines that stop
        from another thread: workers/v8engine.py): an expired deadline, or an
        interrupt waiting to be delivered again."""
        if self.pending_interrupt:
            return self.pending_interrupt in self.executing
        now = time.monotonic()
        active = list(self._active)
        if any(d <= now for d, _ in active):
            return True
        fires_at = self._fires_at
        if active and fires_at is not None and fires_at <= now:
            # An early tick (the timer was left armed for an earlier deadline that
            # ended). Its handler, which re-arms, runs only when the engine returns
            # to Python, and V8 runs scripts without it: re-arm from here.
            self._arm()
        return False

    def _arm(self) -> None:
        if not self._active:
            self._set_timer(0)
            return
        remaining = min(d for d, _ in self._active) - time.monotonic()
        self._set_timer(max(remaining, 1e-6))

    def _on_alarm(self, signum, frame) -> None:
        self._fires_at = None  # the timer is one-shot: it is disarmed now
        if self.handling:
            self.redeliver_soon()  # the outer run decides; this keeps the timer going
            return
        self.handling = True
        try:
            self._alarm(frame)
        finally:
            self.handling = False

    def _alarm(self, frame) -> None:
        if _stopping():
            # A stop is already unwinding (we are in its except/finally): raise no
            # second one, but keep the timer going. That stop may be one a host call
            # caught to hand back as an abort, with the bridge now waiting for this
            # very re-delivery: dropped here, nothing raised the stop again and the
            # script spun on forever (seen in CI as a hung engine test).
            self.redeliver_soon()
            return
        # A stop is only ever raised while an engine op runs. dukpy checks
        # signals around each host callback and turns a raise there into a
        # *catchable* InternalError("interrupted"); the bridge answers that by
        # spinning, and the re-armed timer raises again inside the engine,
        # where the interrupt cannot be caught.
        if self.pending_interrupt:
            target = self.pending_interrupt
            if not engine_running() or target not in self.executing:
                self.pending_interrupt = 0
                self._arm()
                return
            self.redeliver_soon()
            if in_abort_tail(frame):
                return
            self.fired_interrupt = target
            raise ScriptInterrupted(target)
        now = time.monotonic()
        expired = [(d, token) for d, token in self._active if d <= now]
        if not expired:
            # A stale timer (its deadline was removed) or an early tick: re-arm.
            self._arm()
            return
        self.redeliver_soon()
        if not engine_running():
            # Between two engine calls of one request (or just after its last):
            # raise once the engine runs again. The deadline's removal re-arms
            # the timer for what is left, which ends this re-delivery.
            return
        if in_abort_tail(frame):
            return  # raise once back in the engine
        token = min(expired, key=lambda e: e[0])[1]
        self.fired = token
        raise ScriptTimeout(token)

    @contextlib.contextmanager
    def deadline(self, timeout_ms: float | None, owner: int = 0):
        if timeout_ms is None:
            yield None
            return
        # Checked before it is recorded: a timeout setitimer refuses (NaN, inf,
        # past 2**32-1 ms) must fail its own request only, never leave an entry
        # behind that breaks every later one.
        if (isinstance(timeout_ms, bool) or not isinstance(timeout_ms, (int, float))
                or not 0 <= timeout_ms <= MAX_TIMEOUT_MS):
            raise WorkerError(WireError.INVALID_PARAMS,
                              f"timeout must be a number of ms from 0 to {MAX_TIMEOUT_MS}, got {timeout_ms!r:.40}")
        token = DeadlineToken(owner)
        entry = (time.monotonic() + timeout_ms / 1000.0, token)
        self._active.append(entry)
        try:
            fires_at = self._fires_at
            if fires_at is None or not time.monotonic() < fires_at <= entry[0]:
                self._arm()  # (a time already past: its handler is due; arming again is harmless)
            yield token
        finally:
            self._active.remove(entry)
            # Not disarmed (see _fires_at): a timer left armed fires later, finds
            # nothing expired and re-arms for what is then active, or disarms.
            # One that fired without re-arming (a stop was unwinding) is armed
            # again for the deadlines still active (an enclosing request's).
            if self._fires_at is None and self._active:
                self._arm()


def _stopping() -> bool:
    """Whether the interrupted code is handling a stop (inside its except or finally)."""
    return isinstance(sys.exc_info()[1], (ScriptTimeout, ScriptInterrupted))


class ScriptInterrupted(BaseException):
    """Raised by the SIGUSR1 handler: the host asked to stop request ``target``.

    A BaseException, like ScriptTimeout, so no ``except Exception`` stops it
    on its way to the request it targets.
    """

    def __init__(self, target: int):
        super().__init__(f"interrupt of request {target}")
        self.target = target


class Interrupts:
    """SIGUSR1 from the host stops one request: the one named in the shared cancel cell.

    The cell is a 16-byte shared mapping (two little-endian int64). Bytes 0-8:
    the msgid the host asks to stop; the host writes it, then signals. A signal
    whose msgid is not executing here (that request just finished) is ignored,
    so an interrupt can never hit the wrong call. Bytes 8-16: the msgid of the
    last top-level request this worker started; the worker writes it before it
    runs anything of that request, and the host reads it when the worker dies
    (a call that never started is rerouted, not reported as crashed). An
    8-byte cell (an older host) has no second half: nothing is written then.
    """

    STARTED_OFFSET = 8

    def __init__(self, deadlines: "Deadlines", cell, executing: list[int]):
        self._deadlines = deadlines
        self._cell = cell
        self._executing = executing
        self._has_started_slot = cell is not None and len(cell) >= self.STARTED_OFFSET + 8
        signal.signal(signal.SIGUSR1, self._on_signal)

    def targets(self, msgid: int) -> bool:
        """Whether the host has asked to stop request ``msgid`` (0 in the cell: none)."""
        target = self._target()
        return target != 0 and target == msgid

    def stop_due(self) -> bool:
        """Whether the host asks to stop a request that is executing here."""
        target = self._target()
        return target != 0 and target in self._executing

    def note_started(self, msgid: int) -> None:
        """Record in the shared cell that top-level request ``msgid`` has started."""
        if self._has_started_slot:
            struct.pack_into("<q", self._cell, self.STARTED_OFFSET, msgid)

    def _target(self) -> int:
        if self._cell is None:
            return 0
        return struct.unpack_from("<q", self._cell, 0)[0]

    def _on_signal(self, signum, frame) -> None:
        deadlines = self._deadlines
        if deadlines.handling:  # see Deadlines.handling; the timer brings the stop back
            target = self._target()
            if target and target in self._executing:
                self.redeliver(target)
            return
        deadlines.handling = True
        try:
            self._interrupt(frame)
        finally:
            deadlines.handling = False

    def _interrupt(self, frame) -> None:
        if _stopping():
            return
        target = self._target()
        if target and target in self._executing and engine_running():
            self.redeliver(target)  # in case dukpy turns this raise into a catchable error
            if in_abort_tail(frame):
                return  # raise once back in the engine
            self._deadlines.fired_interrupt = target
            raise ScriptInterrupted(target)

    def redeliver(self, target: int) -> None:
        """Raise the interrupt again shortly, through the timer (a signal sent to
        ourselves would be handled at once, still inside the host call)."""
        self._deadlines.pending_interrupt = target
        self._deadlines.redeliver_soon()


_STOP_SIGNALS = frozenset((signal.SIGALRM, signal.SIGUSR1))


@contextlib.contextmanager
def _alarm_blocked():
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield old
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


class _CriticalStream(MessageStream):
    """A MessageStream whose reads and writes cannot be torn by the stop signals.

    The stop handlers (Deadlines, Interrupts) raise only while an engine op
    runs: between requests (reading the next one, writing an answer) they never
    do, so the signal mask is changed only for the reads and writes made inside
    an op, i.e. while JS waits on a host call. There a stop must land only while
    the stream waits for bytes: raised after a read returned and before its
    bytes were fed, or while a message is decoded, it would drop them, and the
    stream would stay out of step with the host for good (the next message read
    as the rest of a string: the worker hangs, and is killed as wedged).
    """

    def __init__(self, read_fd: int, write_fd: int):
        super().__init__(read_fd, write_fd)
        self._unmasked = None  # the signal mask to wait with, while a read inside an op blocks them
        self._poller = select.poll()
        self._poller.register(read_fd, select.POLLIN)

    def write_bytes(self, data: bytes) -> None:
        if not engine_running():
            super().write_bytes(data)
            return
        with _alarm_blocked():
            super().write_bytes(data)

    def read(self):
        if not engine_running():
            return super().read()
        with _alarm_blocked() as unmasked:
            self._unmasked = unmasked
            try:
                return super().read()
            finally:
                self._unmasked = None

    def _wait_readable(self) -> None:  # called by MessageStream.read before each read
        if self._unmasked is None:
            return
        # The one place a stop may be raised: nothing has been taken from the pipe.
        signal.pthread_sigmask(signal.SIG_SETMASK, self._unmasked)
        try:
            self._poller.poll()
        finally:
            signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)


class ContextState:
    """A context hosted by this worker."""

    def __init__(self, context_id: int, engine: EngineContext, name: str, origin: str,
                 memory_limit: int | None = None):
        self.context_id = context_id
        self.engine = engine
        self.name = name
        self.origin = origin
        self.memory_limit = memory_limit


class ScriptCache:
    """Compiled scripts by the host's key, least recently used first out.

    Bounded by bytes: the host assumes a script it sent is here, and resends
    its code when the worker answers UNKNOWN_SCRIPT after an eviction.
    """

    def __init__(self, max_bytes: int = 64 * 1024 * 1024, max_entries: int = 4096):
        self._entries: "OrderedDict[str, bytes]" = OrderedDict()
        self._bytes = 0
        self.max_bytes, self.max_entries = max_bytes, max_entries

    def get(self, key: str) -> bytes | None:
        bytecode = self._entries.get(key)
        if bytecode is not None:
            self._entries.move_to_end(key)
        return bytecode

    def put(self, key: str, bytecode: bytes) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old)
        self._entries[key] = bytecode
        self._bytes += len(bytecode)
        while self._entries and (self._bytes > self.max_bytes or len(self._entries) > self.max_entries):
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted)

    def __len__(self) -> int:
        return len(self._entries)


class WorkerError(Exception):
    """A request the worker refuses: becomes an error response with ``code``."""

    def __init__(self, code: WireError, message: str, data: Any = None):
        super().__init__(message)
        self.code = code
        self.data = data


class Worker(ModuleMethods, JobMethods):
    # Extra entries of the hello reply, set by whoever started the worker
    # (workers/child.py adds "sandbox": what confines this process).
    hello_extra: dict = {}

    def __init__(self, stream: MessageStream, cancel_cell=None, engine: EngineKind | None = None):
        self.stream = stream
        # The pool's engine (workers/engine_api.py): QuickJS unless the pool asked for another.
        self.kind = engine if engine is not None else engine_kind("quickjs")
        _use_engine(self.kind)
        self.contexts: dict[int, ContextState] = {}
        self._next_context_id = 1
        self._next_msgid = 1
        self._backlog: deque = deque()
        self._executing: list[int] = []  # msgids of host requests being served, innermost last
        self._deadlines = Deadlines()
        self._deadlines.executing = self._executing
        self._interrupts = Interrupts(self._deadlines, cancel_cell, self._executing)
        if self.kind.name == "v8":
            from . import v8engine  # its watchdog asks whether a stop signal is due

            v8engine.set_stop_check(lambda: self._deadlines.stop_due() or self._interrupts.stop_due())
        self._scratch: ContextState | None = None
        # A context made while the worker had nothing to do, for the next
        # create_context/run_new; and contexts dropped during a request, freed
        # once its answer is written (freeing a runtime takes ~100 us).
        self._spare: EngineContext | None = None
        self._dropped: list[EngineContext] = []
        self.scripts = ScriptCache()
        self.compiles = 0  # scripts compiled from source here (tests check compile-once with it)

    # -- main loop ---------------------------------------------------------
    def serve(self) -> None:
        self._handshake()
        while True:
            if not self._backlog:
                self._idle()
            message = self._backlog.popleft() if self._backlog else self.stream.read()
            self._dispatch(message)
            self._dropped.clear()

    def _idle(self) -> None:
        """Between requests, with none waiting: make the next context ahead of time.

        Only when nothing is waiting, so no request is held up for it (beyond
        one that arrives meanwhile); the spare has never run any code. Nothing
        runs on the worker's behalf here that a stop could target (no request
        is executing), so a stray timer signal finds nothing to stop.
        """
        if self._spare is not None or self.stream.pending():
            return
        try:
            self._spare = self.kind.new_context(_no_host_calls)
        except Exception:  # it is made again, at its cost, when needed
            self._spare = None

    def _handshake(self) -> None:
        hello = self.stream.read()
        if not isinstance(hello, Request) or hello.method != "hello":
            raise ProtocolError("the first message must be a hello request")
        version = hello.params[0] if hello.params else None
        if version != PROTOCOL_VERSION:
            self.stream.write(Response(hello.msgid, error_triple(
                WireError.PROTOCOL_VERSION,
                f"worker speaks protocol {PROTOCOL_VERSION}, host asked for {version!r}"), None))
            raise ProtocolError("protocol version mismatch")
        self.stream.write(Response(hello.msgid, None, {
            "protocol": PROTOCOL_VERSION, "pid": os.getpid(), "engine": self.kind.description,
            "python": sys.version.split()[0], **self.hello_extra,
        }))

    def _dispatch(self, message) -> None:
        if isinstance(message, Response):
            return  # a reply to a call_host we abandoned (it timed out): drop it
        if isinstance(message, Notification):
            handler = _NOTIFICATIONS.get(message.method)
            if handler is not None:
                try:
                    handler(self, *finish_values(message.params, message.needs_finish))
                except Exception:  # a malformed notification has nobody to answer: drop it
                    traceback.print_exc(file=sys.stderr)
            return
        handler = None if message.method in _NOTIFICATIONS else getattr(self, f"_on_{message.method}", None)
        if handler is not None and not self.kind.modules and message.method.startswith("module_"):
            handler = self._unsupported_module_method
        if self._interrupts.targets(message.msgid):
            # Cancelled while it waited in line: answer without running it.
            self._respond(Response(message.msgid, error_triple(
                WireError.SCRIPT_INTERRUPTED, "Script execution was interrupted by `SIGINT`"), None))
            return
        if not self._executing:
            # A top-level request (not one nested in a call_host): tell the host,
            # through the shared cell, that it started, before anything of it runs.
            self._interrupts.note_started(message.msgid)
        self._executing.append(message.msgid)
        try:
            if handler is None:
                raise WorkerError(WireError.UNKNOWN_METHOD, f"unknown method {message.method!r}")
            params = finish_values(message.params, message.needs_finish)
            try:
                result = handler(*params[1:])  # params[0] is the parent msgid
            except TypeError as exc:
                if exc.__traceback__ is not None and exc.__traceback__.tb_next is None:
                    raise WorkerError(WireError.INVALID_PARAMS, f"{message.method}: {exc}") from None
                raise
            response = Response(message.msgid, None, result)
        except WorkerError as exc:
            response = Response(message.msgid, error_triple(exc.code, str(exc), exc.data), None)
        except (ScriptTimeout, ScriptInterrupted) as exc:
            # A stop that reached this level outside _run_op (e.g. while run_new
            # was still setting up its context). If it is for an enclosing
            # request, answer this nested one so nobody waits for it and let
            # the stop unwind on; otherwise it ends this request, like any stop.
            code = WireError.SCRIPT_TIMEOUT if isinstance(exc, ScriptTimeout) else WireError.SCRIPT_INTERRUPTED
            for_me = (exc.target if isinstance(exc, ScriptInterrupted) else exc.token.owner) == message.msgid
            if for_me or len(self._executing) == 1:
                text = ("Script execution was interrupted by `SIGINT`" if code is WireError.SCRIPT_INTERRUPTED
                        else "Script execution timed out")
                response = Response(message.msgid, error_triple(code, text, None), None)
            else:
                self._executing.pop()
                self._respond(Response(message.msgid, error_triple(
                    code, "the enclosing call was stopped", None), None))
                self._executing.append(message.msgid)  # popped again by the finally below
                raise
        except Exception as exc:  # a bug in the worker: report it, keep serving
            response = Response(message.msgid, error_triple(
                WireError.INTERNAL, f"{type(exc).__name__}: {exc}", traceback.format_exc()), None)
        finally:
            self._executing.pop()
        self._respond(response)

    def _respond(self, response: Response) -> None:
        try:
            response.result = encode_value(response.result)
            if response.error is not None:
                response.error[2] = encode_value(response.error[2])
        except UnencodableValue as exc:
            response = Response(response.msgid, error_triple(WireError.UNENCODABLE, str(exc)), None)
        self.stream.write(response)

    # -- helpers -----------------------------------------------------------
    def _native(self, options: dict) -> bool:
        """Whether a script is compiled by the worker with its real file name (QuickJS),
        rather than run from source by the bridge (V8, and QuickJS's negative offsets)."""
        return self.kind.native_scripts and _native_fits(options)

    def _source_of(self, code: str | None, options: dict) -> str | None:
        """For engines that run scripts from source: the code, kept by the host's key
        so that a script compiled once is not sent again."""
        if self.kind.native_scripts:
            return code
        key = options.get("key")
        if code is None:
            cached = self.scripts.get(key) if key is not None else None
            return None if cached is None else cached.decode("utf-8", "surrogatepass")
        if key is not None:
            self.scripts.put(key, code.encode("utf-8", "surrogatepass"))
        return code

    def _refuse_cached_data(self, options: dict) -> None:
        if not self.kind.cached_data and (options.get("bytecode") is not None or options.get("bytecode_out")):
            raise WorkerError(WireError.UNSUPPORTED,
                              f"cachedData is not supported by the {self.kind.name} engine")

    def _context(self, context_id: int) -> ContextState:
        try:
            return self.contexts[context_id]
        except KeyError:
            raise WorkerError(WireError.UNKNOWN_CONTEXT, f"no context {context_id} on this worker") from None

    def _drop_context(self, context_id: int) -> None:
        state = self.contexts.pop(context_id, None)
        if state is not None:
            state.engine.close()
            self._dropped.append(state.engine)  # its runtime is freed after the answer

    def _run_op(self, state: ContextState, timeout_ms, *request, reported=None) -> dict:
        return self._guarded(timeout_ms, lambda: state.engine.op(*request), reported)

    def _guarded(self, timeout_ms, run, reported=None) -> dict:
        """Run ``run()`` (engine work) under the request's deadline; stops and
        engine failures become the request's WorkerError. ``reported``: the timeout
        to name in SCRIPT_TIMEOUT, when ``timeout_ms`` is what is left of it."""
        me = self._executing[-1] if self._executing else 0
        if reported is None:
            reported = timeout_ms
        token = None
        # The try holds the whole deadline, its set-up and removal too: the timer
        # can fire there (the handler raises whenever some op runs, an enclosing
        # request's included), and such a stop is this request's, not its caller's.
        try:
            with self._deadlines.deadline(timeout_ms, me) as token:
                return run()
        except ScriptInterrupted as exc:
            if exc.target != me:
                raise  # meant for an enclosing request: let it unwind to it
            if self._deadlines.pending_interrupt == me:
                self._deadlines.pending_interrupt = 0
            raise WorkerError(WireError.SCRIPT_INTERRUPTED,
                              "Script execution was interrupted by `SIGINT`") from None
        except ScriptTimeout as exc:
            if token is None or exc.token is not token:
                raise  # an outer call's deadline: let it unwind to its owner
            raise WorkerError(WireError.SCRIPT_TIMEOUT,
                              f"Script execution timed out after {_ms(reported)}ms",
                              reported) from None
        except SystemError:
            # A re-delivered stop whose handler ran while dukpy had a Python
            # error set (at a callback boundary) surfaces as SystemError; it
            # still stopped the script. Report the stop that fired.
            if token is not None and self._deadlines.fired is token:
                raise WorkerError(WireError.SCRIPT_TIMEOUT,
                                  f"Script execution timed out after {_ms(reported)}ms",
                                  reported) from None
            if me and self._deadlines.fired_interrupt == me:
                raise WorkerError(WireError.SCRIPT_INTERRUPTED,
                                  "Script execution was interrupted by `SIGINT`") from None
            raise
        except (EngineError, self.kind.error_type) as exc:
            if exc.unusable:
                raise WorkerError(WireError.CONTEXT_UNUSABLE, str(exc)) from None
            raise WorkerError(WireError.JS_EXCEPTION, str(exc), [_error_from_text(str(exc)), None]) from None

    @staticmethod
    def _value_of(reply: dict, state: "ContextState | None" = None) -> Any:
        if reply.get("ok"):
            return from_tagged(reply["v"], reply.get("t", True))
        # (A null QuickJS threw for lack of memory arrives as InternalError "out of
        # memory" already: the engine says so, see EngineContext "At the memory limit".)
        thrown = from_tagged(reply["e"], reply.get("t", True))
        message = thrown.message if isinstance(thrown, ErrorValue) else "Uncaught exception"
        raise WorkerError(WireError.JS_EXCEPTION, message, [thrown, None])

    def _result(self, reply: dict, mirror: bool, state: "ContextState | None" = None) -> list:
        globals_ = from_tagged(reply["g"], reply.get("gt", True)) if mirror and "g" in reply else None
        try:
            value = self._value_of(reply, state)
        except WorkerError as exc:
            if exc.code is WireError.JS_EXCEPTION:
                exc.data[1] = globals_
            raise
        return [value, globals_]

    # -- host -> worker methods ----------------------------------------------
    def _on_create_context(self, options: dict) -> int:
        context_id = self._next_context_id
        self._next_context_id += 1
        on_host_call = lambda fid, args, tagged: self._call_host(context_id, fid, args, tagged)  # noqa: E731
        engine, self._spare = self._spare, None
        if engine is not None and engine.usable:
            engine.rebind(on_host_call, self._reraise_later)
        else:
            engine = self.kind.new_context(on_host_call, self._reraise_later)
        memory_limit = options.get("memory_limit")
        if memory_limit:
            try:
                engine.set_memory_limit(int(memory_limit))
            except (EngineError, self.kind.error_type) as exc:
                raise WorkerError(WireError.UNSUPPORTED, f"memory_limit cannot be enforced: {exc}") from None
        self.contexts[context_id] = ContextState(
            context_id, engine, options.get("name", ""), options.get("origin", ""), memory_limit)
        if self.kind.modules:
            self._modules_attach(context_id, self.contexts[context_id], options)
        else:
            self.contexts[context_id].module_hooks = None
        if (options.get("code_generation") or {}).get("strings") is False:
            self._value_of(engine.op("forbid_code_generation"))
        globals_ = options.get("globals")
        if globals_:
            self._value_of(engine.op("set_globals", to_tagged(globals_)))
        return context_id

    def _unsupported_module_method(self, *params) -> None:
        raise WorkerError(WireError.UNSUPPORTED, f"ES modules are not supported by the {self.kind.name} engine")

    def _on_run_new(self, context_options: dict, code: str, options: dict) -> list:
        """create_context + run (+ release) in one round trip: ``[ctx, value, globals, stats?]``.

        The context is disposed after the run unless the outcome holds handles
        (a function, a promise...), which need it alive; then ``ctx`` names it
        and the host releases it as usual. On a JS exception the context is
        always disposed and the error data is ``[thrown, globals, stats?]``.
        """
        context_id = self._on_create_context(context_options)
        try:
            result = self._on_run(context_id, code, options)
        except WorkerError as exc:
            if (exc.code in (WireError.SCRIPT_TIMEOUT, WireError.SCRIPT_INTERRUPTED) and options.get("mirror")
                    and self.contexts[context_id].engine.usable):
                # A stopped script's context stays, for the host to read what the
                # script did into its sandbox dict (then it releases the context).
                exc.data = [exc.data, context_id]
                raise
            self._drop_context(context_id)
            raise
        except BaseException:  # JS error, timeout, interrupt: the context goes, the error stays
            self._drop_context(context_id)
            raise
        if _holds_handles(result[:2]):
            return [context_id, *result]
        self._drop_context(context_id)
        return [0, *result]

    def _on_mirror(self, context_id: int, options: dict | None = None) -> list:
        """``[undefined, globals]``: the context's globals for its sandbox dict, read
        after a stopped call without running its queued promise jobs (Node's
        sandbox shows what the script did; jobs still queued do not run)."""
        state = self._context(context_id)
        reply = self._guarded(_timeout(options) or INTERNAL_OP_TIMEOUT_MS, lambda: state.engine.op(
            "finish", True, False, None, None, 0, 0, False, drain=False))
        return self._result(reply, True, state)

    def _on_run(self, context_id: int, code: str, options: dict) -> list:
        state = self._context(context_id)
        if options.get("stats"):
            return self._measured(state, lambda: self._run_script(state, code, options))
        return self._run_script(state, code, options)

    def _measured(self, state: ContextState, run) -> list:
        """Run and append ``{"cpu_ms", "memory"}``: this process's CPU time for the
        call (the worker runs one call at a time) and the context's engine bytes after."""
        start = time.process_time()
        try:
            result = run()
        except WorkerError as exc:
            if exc.code is WireError.JS_EXCEPTION:
                exc.data.append(self._stats_since(state, start))
            raise
        result.append(self._stats_since(state, start))
        return result

    @staticmethod
    def _stats_since(state: ContextState, start: float) -> dict:
        usage = state.engine.memory_usage() if state.engine.usable else None
        return {"cpu_ms": (time.process_time() - start) * 1000.0,
                "memory": usage["memory_used_size"] if usage else None}

    def _run_script(self, state: ContextState, code: str | None, options: dict) -> list:
        mirror = bool(options.get("mirror"))
        if self._native(options):
            def run():
                bytecode = self._bytecode(state.engine, code, options)
                return state.engine.run_compiled(bytecode, mirror)
            return self._result(self._guarded(options.get("timeout"), run), mirror, state)
        self._refuse_cached_data(options)
        code = self._source_of(code, options)
        if code is None:
            raise WorkerError(WireError.UNKNOWN_SCRIPT, "this worker runs scripts from source only: send the code")
        if not self.kind.native_scripts:
            code = _named_source(code, options.get("filename", "evalmachine.<anonymous>"),
                                 options.get("line_offset", 0), options.get("column_offset", 0))
            options = dict(options, line_offset=0, column_offset=0)  # applied to the source
        reply = self._run_op(state, options.get("timeout"), "run", code,
                             options.get("filename", "evalmachine.<anonymous>"), mirror,
                             options.get("line_offset", 0), options.get("column_offset", 0),
                             options.get("display_errors", True))
        return self._result(reply, mirror, state)

    def _bytecode(self, engine: EngineContext, code: str | None, options: dict) -> bytes:
        """The compiled form of a script: from the cache (by the host's key), from
        bytecode the host sent (cached data it verified), or compiled here."""
        key = options.get("key")
        if key is not None:
            cached = self.scripts.get(key)
            if cached is not None:
                return cached
        bytecode = options.get("bytecode")
        if bytecode is None:
            if code is None:
                raise WorkerError(WireError.UNKNOWN_SCRIPT, f"script {key} is not cached here: send its code")
            self.compiles += 1
            bytecode, failure = engine.compile_script(
                code, options.get("filename", "evalmachine.<anonymous>"), options.get("line_offset", 0),
                options.get("column_offset", 0), options.get("display_errors", True))
            if failure is not None:
                bytecode = self._module_retry_script(engine, code, options)  # import attributes
                if bytecode is None:
                    self._value_of(failure)  # raises the SyntaxError
        if key is not None:
            self.scripts.put(key, bytecode)
        return bytecode

    def _on_compile(self, context_id: int, code: str | None, options: dict):
        """Compile a script without running it (``vm.Script``'s constructor), in
        the compile context; it stays cached by its key. Returns its bytecode
        when ``options["bytecode_out"]`` (to make cached data), else True.

        The compile context only ever compiles (nothing runs there: a SyntaxError
        is shaped by the bridge, whose primordials no user code can have touched),
        so it is shared by every compile on the worker."""
        self._refuse_cached_data(options)
        if not self.kind.native_scripts:
            code = self._source_of(code, options)
            if code is None:
                raise WorkerError(WireError.UNKNOWN_SCRIPT, f"script {options.get('key')} is not cached here: send its code")
            filename = options.get("filename", "evalmachine.<anonymous>")
            reply = self._guarded(_earliest(SYNTAX_CHECK_TIMEOUT_MS, _timeout(options)),
                                  lambda: self.kind.check_script(code, filename))
            return self._value_of(reply)
        scratch = self._scratch_context()
        if not self._native(options):
            if options.get("bytecode_out"):
                raise WorkerError(WireError.UNSUPPORTED,
                                  "cached data cannot be made for a script with a negative line_offset")
            return self._on_check_syntax(context_id, code, options)
        bytecode = self._guarded(_earliest(SYNTAX_CHECK_TIMEOUT_MS, _timeout(options)),
                                 lambda: self._bytecode(scratch.engine, code, options))
        return bytecode if options.get("bytecode_out") else True

    def _scratch_context(self) -> ContextState:
        if self._scratch is None or not self._scratch.engine.usable:
            if self._scratch is not None:
                self._scratch.engine.close()
            self._scratch = ContextState(0, self.kind.new_context(_no_host_calls), "compile", "")
        return self._scratch

    def _on_check_syntax(self, context_id: int, code: str, options: dict) -> bool:
        """Whether ``code`` is a function body (with ``options["params"]``); raises
        its SyntaxError if not. None of ``code`` runs (see "Syntax checks" in
        workers/engine.py), in a fresh context per check, under
        SYNTAX_CHECK_TIMEOUT_MS (or the request's shorter timeout). A check that
        is stopped (timeout, interrupt) fails: a body is never accepted unchecked.
        """
        params = options.get("params")
        filename = options.get("filename", "evalmachine.<anonymous>")
        timeout = _earliest(SYNTAX_CHECK_TIMEOUT_MS, _timeout(options))
        try:
            if self._guarded(timeout, lambda: self.kind.function_body_compiles(code, params)):
                return True
            # A syntax error: the bridge's check, in a fresh context with the
            # bridge, says so with the SyntaxError shaped as Node shapes it.
            reply = self._guarded(timeout, lambda: _fresh_check(self.kind, code, filename, options, params))
        except WorkerError as exc:
            if exc.code in (WireError.SCRIPT_TIMEOUT, WireError.SCRIPT_INTERRUPTED):
                raise _wrapper_closed(filename) from None
            raise
        self._value_of(reply)  # raises the SyntaxError the bridge shaped
        # The bridge found no error where the C API check did: never accept that.
        raise _wrapper_closed(filename)

    def _on_call(self, context_id: int, handle_id: int, args: list, options: dict) -> list:
        state = self._context(context_id)
        mirror = bool(options.get("mirror"))
        op = "construct" if options.get("construct") else "call"
        reply = self._run_op(state, options.get("timeout"), op, handle_id, to_tagged(args), mirror)
        return self._result(reply, mirror, state)

    def _on_compile_function(self, context_id: int, code: str | None, params: list, options: dict):
        """``vm.compileFunction``: the function; ``[function, bytecode]`` with ``bytecode_out``."""
        self._refuse_cached_data(options)
        state = self._context(context_id)
        # One deadline for the whole request (check and compile): the worker's
        # stop comes before the host's kill at `timeout` + grace.
        end = _deadline_of(options)
        if code is not None and self.kind.modules:
            code = self._module_function_source(code, params)  # import attributes (workers/modules.py)
        key = options.get("key")
        known = options.get("bytecode") is not None or (key is not None and self.scripts.get(key) is not None)
        if code is not None and not known:
            # Check first, where nothing can leak and nothing runs: a body that closes
            # the wrapper early would otherwise run its tail in the real context.
            # (Verified cached data and cached keys were checked when first compiled.)
            self._on_check_syntax(context_id, code, dict(options, params=params, timeout=_left(end)))
        options = dict(options, timeout=_left(end), sent_timeout=_timeout(options))
        if self._native(options):
            return self._compile_function_native(state, code, params, options)
        if code is None:
            raise WorkerError(WireError.UNKNOWN_SCRIPT, "this worker compiles functions from source only")
        if options.get("bytecode_out"):
            raise WorkerError(WireError.UNSUPPORTED, "cached data needs the QuickJS C API, unavailable here")
        reply = self._run_op(state, _timeout(options), "compile_function", code, params,
                             options.get("filename", ""), to_tagged(options.get("extensions", [])),
                             options.get("line_offset", 0), options.get("column_offset", 0),
                             reported=options["sent_timeout"])
        return self._value_of(reply)

    def _compile_function_native(self, state: ContextState, code: str | None, params: list, options: dict):
        """Compile the body inside a function expression with its real file name.

        The body starts on a line of its own, so the function's source text
        is Node's (``function (a) {\nbody\n}``). QuickJS takes the number
        of the first line, and treats 0 as 1: the header goes on line
        ``line_offset`` (or, for offset 0, on line 0 after an empty line -1).
        Context extensions are objects in scope through ``with`` blocks
        around the function (sloppy mode, as Node's are).
        """
        extensions = options.get("extensions") or []
        line_offset = options.get("line_offset", 0)
        exts = ", ".join(f"__isolate_ext{i}" for i in range(len(extensions)))
        head = f"(function ({', '.join(params)}) {{\n"
        tail = "\n})"
        if extensions:
            withs = "".join(f" with (__isolate_ext{i})" for i in range(len(extensions)))
            head = f"(function ({exts}) {{{withs} {{ return function ({', '.join(params)}) {{\n"
            tail = "\n}; } })"
        if line_offset == 0:
            head, first = "\n" + head, -2   # lines -1 (empty), 0 (head), 1 (body)
        else:
            first = line_offset - 1          # head on line `line_offset`
        wrapped = None if code is None else head + " " * max(options.get("column_offset", 0), 0) + code + tail
        compile_options = dict(options, line_offset=first, column_offset=0)
        engine = state.engine
        made: dict = {}

        def make():
            made["bytecode"] = bytecode = self._bytecode(engine, wrapped, compile_options)
            reply = engine.run_compiled(bytecode, False)
            if not extensions or not reply.get("ok"):
                return reply
            outer = reply["v"]["i"]  # a function handle: call it with the extension objects
            try:
                return engine.op("call", outer, to_tagged(extensions), False)
            finally:
                engine.op("release", [outer])

        value = self._value_of(self._guarded(_timeout(options), make, options.get("sent_timeout")))
        return [value, made["bytecode"]] if options.get("bytecode_out") else value

    # get/has/set/delete/keys/promise_state can run script code (getters, setters,
    # Proxy traps, a thenable's species): each takes a trailing options map whose
    # `timeout` bounds it like `run`'s. The options may be left out (older hosts).
    def _on_get(self, context_id: int, target: int, key: str, options: dict | None = None):
        return self._value_of(self._run_op(self._context(context_id), _timeout(options), "get", target, key))

    def _on_has(self, context_id: int, target: int, key: str, options: dict | None = None) -> bool:
        return self._value_of(self._run_op(self._context(context_id), _timeout(options), "has", target, key))

    def _on_set(self, context_id: int, target: int, key: str, value: Any, options: dict | None = None):
        return self._value_of(self._run_op(self._context(context_id), _timeout(options), "set", target, key,
                                           to_tagged(value)))

    def _on_delete(self, context_id: int, target: int, key: str, options: dict | None = None) -> bool:
        return self._value_of(self._run_op(self._context(context_id), _timeout(options), "delete", target, key))

    def _on_keys(self, context_id: int, target: int, options: dict | None = None) -> list:
        return self._value_of(self._run_op(self._context(context_id), _timeout(options), "keys", target))

    def _on_promise_state(self, context_id: int, handle_id: int, options: dict | None = None) -> list:
        return self._value_of(self._run_op(self._context(context_id), _timeout(options), "promise_state", handle_id))

    def _on_stats(self) -> dict:
        """Process facts the host can check: no inherited environment or descriptors."""
        try:
            fds = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
        except OSError:
            fds = []
        return {"pid": os.getpid(), "contexts": len(self.contexts),
                "scripts": len(self.scripts), "compiles": self.compiles,
                "env_keys": sorted(os.environ), "fds": fds}

    def _on_memory(self, eager: bool) -> dict:
        """Engine figures of every context here: ``{context_id: JSMemoryUsage fields}``.

        ``eager`` collects garbage first (dukpy also collects around every eval).
        """
        out = {}
        for context_id, state in self.contexts.items():
            if eager:
                state.engine.run_gc()
            out[context_id] = state.engine.memory_usage()
        return out

    def _on_context_stats(self, context_id: int, options: dict | None = None) -> dict:
        """Live handles and host functions of one context (how tests see releases work)."""
        state = self._context(context_id)
        return self._value_of(self._guarded(_timeout(options) or INTERNAL_OP_TIMEOUT_MS,
                                            lambda: state.engine.op("stats", drain=False)))

    # notifications
    def _on_release(self, context_id: int, handle_ids: list) -> None:
        """The host dropped these handles. The bridge's op runs no user code (nor
        the user's promise jobs); bounded all the same, like every engine entry."""
        state = self.contexts.get(context_id)
        if state is not None and state.engine.usable:
            try:
                self._guarded(INTERNAL_OP_TIMEOUT_MS, lambda: state.engine.op("release", handle_ids, drain=False))
            except WorkerError as exc:  # nobody to answer: note it, keep serving
                print(f"isolate worker: release in context {context_id} failed: {exc}", file=sys.stderr)

    def _on_release_context(self, context_id: int) -> None:
        self._drop_context(context_id)

    def _reraise_later(self, exc: BaseException) -> None:
        """A stop signal landed inside a host call: deliver it again, to the engine.

        Re-raising the signal (rather than the exception) lets QuickJS's
        interrupt hook stop the script uncatchably at its next check.
        """
        if isinstance(exc, ScriptTimeout):
            self._deadlines.redeliver_soon()
        elif isinstance(exc, ScriptInterrupted):
            self._interrupts.redeliver(exc.target)
        elif isinstance(exc, (StreamClosed, ProtocolError, BrokenPipeError)):
            # The host closed the stream (or it is corrupt) while JS waited on
            # it: nobody is left to answer, so stop here rather than let the
            # script see a JS error and carry on.
            os._exit(0)
        else:
            raise exc

    # -- worker -> host ------------------------------------------------------
    def _call_host(self, context_id: int, function_id: int, tagged_args: Any, tagged: bool) -> dict:
        """Called from inside the engine when JS calls a host function."""
        if len(self._executing) >= MAX_NESTING:
            # A RangeError, catchable in JS like a stack overflow; its `code` lets
            # the host report it as NestingTooDeepError when it reaches Python.
            return _js_failure("RangeError", f"isolate: host calls nested deeper than {MAX_NESTING}",
                               {"code": NESTING_TOO_DEEP_CODE})
        try:
            args = encode_value(from_tagged(tagged_args, tagged))
        except UnencodableValue as exc:
            return _js_failure("TypeError", str(exc))
        msgid = self._next_msgid
        self._next_msgid += 1
        parent = self._executing[-1]
        self.stream.write(Request(msgid, "call_host", [parent, context_id, function_id, args]))
        while True:
            message = self.stream.read()
            if isinstance(message, Response):
                if message.msgid == msgid:
                    break
                continue  # stale reply to an abandoned call
            if isinstance(message, Request) and message.params and message.params[0] == msgid:
                self._dispatch(message)  # the host calling back into JS from inside this call
            else:
                self._backlog.append(message)
        if message.error is not None:
            data = finish_values(message.error[2], message.needs_finish)
            if not isinstance(data, ErrorValue):
                data = ErrorValue("Error", str(message.error[1]))
            return {"ok": False, "e": to_tagged(data)[0]}
        value = finish_values(message.result, message.needs_finish)
        return {"ok": True, "v": to_tagged(value)[0]}


_NOTIFICATIONS = {"release": Worker._on_release, "release_context": Worker._on_release_context,
                  "module_release": Worker._on_module_release}


# orjson writes only JSON's types with these options: dataclasses (HandleRef, ErrorValue...),
# dates and subclasses of str, int, dict and list (BigInt, JSMap...) go to the default hook.
_JSON_TYPES_ONLY = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_SUBCLASS


def _json_text_leaf(obj: Any) -> None:
    if type(obj) is JSONText:  # a plain value's text: no handle inside
        return None
    raise TypeError


def _holds_handles(value: Any) -> bool:
    """Whether a decoded value contains a HandleRef anywhere (cycles allowed)."""
    from ..protocol import HandleRef

    # The usual answer, at C speed: a value made of JSON's types alone holds no handle
    # (orjson refuses anything else, and cycles and depth past 254, which the walk takes).
    try:
        orjson.dumps(value, default=_json_text_leaf, option=_JSON_TYPES_ONLY)
        return False
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        pass
    seen: set[int] = set()
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, HandleRef):
            return True
        if isinstance(v, (list, tuple, dict, set, frozenset)) and id(v) not in seen:
            seen.add(id(v))
            if isinstance(v, dict):
                stack.extend(v.keys())
                stack.extend(v.values())
            else:
                stack.extend(v)
        elif isinstance(v, ErrorValue) and id(v) not in seen:
            seen.add(id(v))
            stack.extend(v.props.values())
    return False


def _named_source(code: str, filename: str, line_offset: int = 0, column_offset: int = 0) -> str:
    """Source run from the bridge (indirect eval) that names its file in stack frames
    (V8 honours a sourceURL comment in eval'd code), shifted by the offsets (blank
    lines and spaces before it: eval has no offset option; negative ones are not applied)."""
    if line_offset > 0 or column_offset > 0:
        code = "\n" * max(line_offset, 0) + " " * max(column_offset, 0) + code
    if not filename or "\n" in filename or "\r" in filename:
        return code
    return code + "\n//# sourceURL=" + filename


def _native_fits(options: dict) -> bool:
    """Whether a script can be compiled with its real file name (workers/quickjs.py).

    QuickJS numbers lines from 1 and misreports first lines below that, so a
    negative line offset takes the source path, which applies offsets to stack
    traces itself (see "Differences from Node" in the README).
    """
    return options.get("line_offset", 0) >= 0


def _fresh_check(kind: EngineKind, code: str, filename: str, options: dict, params: list | None) -> dict:
    """The bridge's check_syntax op in a context made for it and dropped after."""
    engine = kind.new_context(_no_host_calls)
    try:
        return engine.op("check_syntax", code, filename, options.get("line_offset", 0),
                         options.get("column_offset", 0), options.get("display_errors", True), params)
    finally:
        engine.close()


def _wrapper_closed(filename: str) -> WorkerError:
    """The bridge's wrapperClosed: what a body that closes its function gets."""
    text = "Unexpected token '}'"
    error = ErrorValue("SyntaxError", text, f"SyntaxError: {text}\n    at {filename}")
    return WorkerError(WireError.JS_EXCEPTION, text, [error, None])


def _deadline_of(options) -> float | None:
    """The monotonic time at which a request's `timeout` ends (None: no timeout)."""
    timeout = _timeout(options)
    return None if timeout is None else time.monotonic() + timeout / 1000.0


def _left(end: float | None) -> float | None:
    """Milliseconds left until ``end`` (at least 1: an expired deadline still stops)."""
    return None if end is None else max((end - time.monotonic()) * 1000.0, 1.0)


def _earliest(*timeouts) -> float | None:
    """The shortest of some timeouts (ms; None for none)."""
    given = [t for t in timeouts if t is not None]
    return min(given) if given else None


def _no_host_calls(function_id, tagged_args, tagged) -> dict:
    return _js_failure("TypeError", "no host functions in the syntax-check context")


def _js_failure(name: str, message: str, props: dict | None = None) -> dict:
    return {"ok": False, "e": to_tagged(ErrorValue(name, message, f"{name}: {message}", props or {}))[0]}


def _timeout(options) -> float | None:
    """The `timeout` (ms) of a trailing options map, if any."""
    if isinstance(options, dict):
        timeout = options.get("timeout")
        if timeout:
            return timeout
    return None


def _ms(timeout_ms) -> str:
    return str(int(timeout_ms)) if float(timeout_ms).is_integer() else str(timeout_ms)


def _error_from_text(text: str) -> ErrorValue:
    """An error value from dukpy's own error text ("Name: message\\n    at ...")."""
    head, _, _ = text.partition("\n")
    name, sep, message = head.partition(": ")
    if not sep or not name.isidentifier():
        name, message = "Error", head
    return ErrorValue(name, message, text)


def _close_inherited_fds(keep: set[int]) -> None:
    """A forked worker must not hold the host's files, sockets or other workers' pipes."""
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL us when the host goes away (even by SIGKILL)."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_PDEATHSIG = 1
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _limit_memory(max_bytes: int | None) -> None:
    """The OS cap behind the engine's own: allocations past it fail in this worker only."""
    if max_bytes:
        import resource

        resource.setrlimit(resource.RLIMIT_DATA, (max_bytes, max_bytes))


def main(read_fd: int, write_fd: int, host_pid: int | None = None, env: dict | None = None,
         max_memory: int | None = None, cancel_cell=None) -> None:
    """Entry point of a worker process forked by the supervisor."""
    _die_with_parent()
    _limit_memory(max_memory)
    if host_pid is not None and os.getppid() != host_pid:
        os._exit(0)  # the host died before we could ask to follow it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _close_inherited_fds({read_fd, write_fd})
    os.environ.clear()
    os.environ.update(env or {})
    reset_for_new_process()
    worker = Worker(_CriticalStream(read_fd, write_fd), cancel_cell)
    try:
        worker.serve()
    except (StreamClosed, ProtocolError, BrokenPipeError):
        pass
    os._exit(0)
