"""Every error isolate raises. One root, :class:`IsolateError`, and a stable ``code`` on each.

Three families, kept apart on purpose:

* the script threw: :class:`JSError` and its subclasses (``JSTypeError`` is
  also a ``TypeError``, ...), carrying the JS ``name``, ``message``,
  ``stack`` and the thrown ``value``;
* the script was stopped: :class:`ScriptTimeoutError`,
  :class:`ScriptInterruptedError`;
* the infrastructure failed: :class:`WorkerCrashedError`,
  :class:`ContextLostError`, :class:`ProtocolViolationError`,
  :class:`PoolClosedError`.

Argument validation raises :class:`InvalidArgTypeError` (a ``TypeError``)
and :class:`InvalidArgValueError` / :class:`OutOfRangeError` (``ValueError``)
with Node's codes.
"""

from __future__ import annotations

import re
import signal as _signal
from typing import Any

from .protocol import WireError


__all__ = [
    "IsolateError", "JSError", "JSEvalError", "JSRangeError", "JSReferenceError", "JSSyntaxError",
    "JSTypeError", "JSURIError", "JSAggregateError", "JSInternalError", "JSMemoryError",
    "ScriptTimeoutError", "ScriptInterruptedError", "WorkerCrashedError", "ContextLostError",
    "ProtocolViolationError", "PoolClosedError", "InvalidArgTypeError", "InvalidArgValueError",
    "OutOfRangeError", "UnencodableValueError", "PromisePendingError", "NestingTooDeepError",
    "WorkerMemoryError", "WorkerStartError", "UnsupportedError", "EngineUnavailableError", "RemoteTraceback",
    "js_error_class", "describe_exit", "thrown_error", "error_from_value", "error_from_wire", "display_error",
]


class IsolateError(Exception):
    """Root of every error raised by isolate. ``code`` is stable across versions."""

    code = "ERR_ISOLATE"

    def __init__(self, message: str = "", *, code: str | None = None):
        super().__init__(message)
        if code is not None:
            self.code = code


# -- the script threw -----------------------------------------------------------

_NO_VALUE = object()


class JSError(IsolateError):
    """A JavaScript exception (or an Error object returned as a value).

    ``name``, ``message`` and ``stack`` are the JS error's; ``value`` is the
    thrown value itself (the error, or whatever non-Error was thrown).
    """

    code = "ERR_JS_EXCEPTION"

    def __init__(self, message: str = "", *, name: str = "Error", stack: str = "",
                 value: Any = _NO_VALUE, props: dict | None = None):
        IsolateError.__init__(self, message)
        self.name = name
        self.message = message
        self.stack = stack or (f"{name}: {message}" if message else name)
        self.value = value
        self.props = dict(props or {})

    @property
    def value(self) -> Any:
        # The error itself unless a non-Error was thrown. Not stored as itself: a
        # self-reference would leave every error to the cyclic garbage collector.
        # (A flag, not a sentinel object: it must survive pickling, as by Dask.)
        return self if self._value_is_self else self._value

    @value.setter
    def value(self, value: Any) -> None:
        self._value_is_self = value is _NO_VALUE or value is self
        self._value = None if self._value_is_self else value

    def _set_props(self, props: dict) -> None:
        self.props = dict(props)

    def __getattr__(self, item: str):
        # Own properties of the JS error (``err.code``, ``err.errno``...) read as attributes.
        props = self.__dict__.get("props")
        if props and item in props:
            return props[item]
        raise AttributeError(item)

    def __str__(self) -> str:
        """Node's first stack line, then the first frame that has a ``file:line:col``::

            TypeError: cannot read property 'x' of null
                at render (tpl.js:3:12)
        """
        head = f"{self.name}: {self.message}" if self.message else self.name
        frame = self.location
        return f"{head}\n    at {frame}" if frame else head

    @property
    def location(self) -> str | None:
        """The first stack frame with a ``file:line:col``, e.g. ``render (tpl.js:3:12)``
        or ``tpl.js:10:1``; None when the stack has none (an error made in Python)."""
        stack = self.stack
        if not isinstance(stack, str):
            return None
        match = _LOCATED_FRAME.search(stack)
        return match.group(1) if match else None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, message={self.message!r})"

    def __reduce__(self):
        return (_rebuild_js_error, (self.name, self.message, self.stack, self.props))


# A stack line "    at f (file:3:9)" or "    at file:3:9" (not "(native)" or "(<host>)").
_LOCATED_FRAME = re.compile(r"^[ \t]+at ((?:[^\n]* \()?[^\n]*:\d+:\d+\)?)[ \t]*$", re.MULTILINE)


def _rebuild_js_error(name, message, stack, props):
    return js_error_class(name)(message, name=name, stack=stack, props=props)


class JSEvalError(JSError):
    pass


class JSRangeError(JSError, ValueError):
    pass


class JSReferenceError(JSError, NameError):
    pass


class JSSyntaxError(JSError, SyntaxError):
    def __init__(self, message: str = "", **kwargs):
        JSError.__init__(self, message, **kwargs)

    def __str__(self) -> str:
        return JSError.__str__(self)


class JSTypeError(JSError, TypeError):
    pass


class JSURIError(JSError, ValueError):
    pass


class JSAggregateError(JSError):
    pass


class JSInternalError(JSError, RuntimeError):
    """QuickJS's own ``InternalError`` (e.g. too much recursion)."""


class JSMemoryError(JSInternalError, MemoryError):
    """The engine ran out of memory (``InternalError: out of memory``)."""

    code = "ERR_SCRIPT_MEMORY_LIMIT"


_JS_ERROR_CLASSES = {
    "Error": JSError, "EvalError": JSEvalError, "RangeError": JSRangeError,
    "ReferenceError": JSReferenceError, "SyntaxError": JSSyntaxError, "TypeError": JSTypeError,
    "URIError": JSURIError, "AggregateError": JSAggregateError, "InternalError": JSInternalError,
}


def js_error_class(name: str, message: str = "") -> type[JSError]:
    """The Python class for a JS error named ``name``."""
    if name == "InternalError" and "out of memory" in message:
        return JSMemoryError
    return _JS_ERROR_CLASSES.get(name, JSError)


# -- the script was stopped -------------------------------------------------------

class ScriptTimeoutError(IsolateError, TimeoutError):
    """The script ran past its ``timeout``, or waited past its ``queue_timeout``.

    ``stage`` says what stopped it: ``"interrupt"`` (the worker's timer; the
    context survives), ``"kill"`` (the worker was killed at deadline + grace),
    or ``"queued"`` (the call waited for its worker longer than ``timeout``
    says, here its queue timeout, and never ran).
    """

    code = "ERR_SCRIPT_EXECUTION_TIMEOUT"

    def __init__(self, timeout: float, stage: str = "interrupt"):
        if stage == "queued":
            message = (f"Script waited {_fmt_ms(timeout)}ms for its worker without starting "
                       "(queue_timeout) and never ran")
        else:
            message = f"Script execution timed out after {_fmt_ms(timeout)}ms"
        super().__init__(message)
        self.timeout = timeout
        self.stage = stage


class ScriptInterruptedError(IsolateError):
    code = "ERR_SCRIPT_EXECUTION_INTERRUPTED"

    def __init__(self, message: str = "Script execution was interrupted by `SIGINT`",
                 stage: str = "interrupt"):
        super().__init__(message)
        self.stage = stage


def _fmt_ms(ms: float) -> str:
    return str(int(ms)) if float(ms).is_integer() else str(ms)


# -- the infrastructure failed ------------------------------------------------------

class WorkerCrashedError(IsolateError):
    """The worker process running the call died. ``exitcode`` is negative for a signal."""

    code = "ERR_WORKER_CRASHED"

    def __init__(self, pid: int, exitcode: int | None, detail: str = ""):
        how = describe_exit(exitcode)
        super().__init__(f"worker {pid} died ({how}){': ' + detail if detail else ''}")
        self.pid = pid
        self.exitcode = exitcode


def describe_exit(exitcode: int | None) -> str:
    """``-9`` -> ``"SIGKILL(-9)"``, ``3`` -> ``"exit code 3"``, the way loky names deaths."""
    if exitcode is None:
        return "exit status unknown"
    if exitcode < 0:
        try:
            return f"{_signal.Signals(-exitcode).name}({exitcode})"
        except ValueError:
            return f"signal {-exitcode}({exitcode})"
    return f"exit code {exitcode}"


class WorkerMemoryError(WorkerCrashedError, MemoryError):
    """The worker was killed for exceeding the pool's ``worker_memory_limit``."""

    code = "ERR_WORKER_MEMORY_LIMIT"


class WorkerStartError(WorkerCrashedError):
    """No worker could be started (the zygote could not start, fork, or answer).

    A WorkerCrashedError with ``pid`` -1 and ``exitcode`` None, so code that
    handles a dead worker handles this too; its own code tells them apart.
    """

    code = "ERR_WORKER_START"

    def __init__(self, detail: str):
        IsolateError.__init__(self, f"could not start a worker: {detail}")
        self.pid = -1
        self.exitcode = None
        self.detail = detail


class UnsupportedError(IsolateError):
    """The engine in this installation cannot do what an option asked (the message says why)."""

    code = "ERR_ISOLATE_UNSUPPORTED"


class EngineUnavailableError(UnsupportedError):
    """The pool's engine needs an optional extra that is not installed (the message names it)."""

    code = "ERR_ISOLATE_ENGINE_UNAVAILABLE"


class ContextLostError(IsolateError):
    """The context (or the handle's context) is gone: its worker died or it was released."""

    code = "ERR_CONTEXT_LOST"


class ProtocolViolationError(IsolateError):
    """A worker answered something isolate did not expect (or reported a bug of its own:
    then ``__cause__`` is a :class:`RemoteTraceback` with the worker's traceback)."""

    code = "ERR_ISOLATE_PROTOCOL"


class RemoteTraceback(Exception):
    """A traceback from a worker process, as text: the ``__cause__`` of the error it
    led to, so that Python prints it above the host's own (as ``concurrent.futures``
    does with its ``_RemoteTraceback``)."""

    # A worker's report is bounded: it is text from another process.
    MAX_CHARS = 64 * 1024

    def __init__(self, tb: str):
        tb = tb if len(tb) <= self.MAX_CHARS else tb[:self.MAX_CHARS] + "\n[... cut]\n"
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return f'\n"""\n{self.tb.rstrip(chr(10))}\n"""'


class ScriptNotCached(IsolateError):
    """Internal: a worker no longer has a script the host sent by key; the host resends it."""
    code = "ERR_ISOLATE_SCRIPT_NOT_CACHED"


class PoolClosedError(IsolateError, RuntimeError):
    code = "ERR_ISOLATE_POOL_CLOSED"


class NestingTooDeepError(IsolateError, RecursionError):
    code = "ERR_ISOLATE_NESTING_TOO_DEEP"


class PromisePendingError(IsolateError):
    """``JSPromise.result()`` on a promise that nothing in the context will settle."""

    code = "ERR_ISOLATE_PROMISE_PENDING"


class UnencodableValueError(IsolateError, TypeError):
    """A value with no JavaScript counterpart was passed in (or returned from a host function)."""

    code = "ERR_ISOLATE_UNENCODABLE"


# -- argument validation (Node's codes) ---------------------------------------------

class InvalidArgTypeError(IsolateError, TypeError):
    code = "ERR_INVALID_ARG_TYPE"


class InvalidArgValueError(IsolateError, ValueError):
    code = "ERR_INVALID_ARG_VALUE"


class OutOfRangeError(IsolateError, ValueError):
    code = "ERR_OUT_OF_RANGE"


def error_from_value(err: Any) -> "JSError":
    """The JSError for an Error object that crossed the wire (protocol.ErrorValue)."""
    cls = js_error_class(err.name, err.message)
    return cls(err.message, name=err.name, stack=err.stack, props=err.props)


def thrown_error(value: Any) -> IsolateError:
    """The exception to raise for a value a script threw.

    An Error carrying isolate's nesting code (the worker's answer to host
    calls nested too deep, or a host callable's NestingTooDeepError that
    crossed JS on its way out) becomes :class:`NestingTooDeepError`, as the
    README promises; any other JSError is itself; a non-Error is wrapped.
    """
    if isinstance(value, JSError):
        if value.props.get("code") == NestingTooDeepError.code:
            error = NestingTooDeepError(value.message)
            error.__cause__ = value
            return error
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


def error_from_wire(code, message, data, needs_finish, decode) -> "IsolateError":
    """The exception for an error response (``[code, message, data]``)."""
    if code == WireError.JS_EXCEPTION.value:
        # data is [thrown value, the context's globals after the failed run or None,
        # and (when asked for) the call's stats]
        thrown, globals_, *stats = decode(data, needs_finish)
        if not (globals_ is None or isinstance(globals_, dict)) or len(stats) > 1:
            raise ValueError(f"malformed JS_EXCEPTION data: globals {globals_!r:.40}")
        error = thrown_error(thrown)
        error._mirror = globals_
        error._stats = stats[0] if stats else None
        return error
    if code in (WireError.SCRIPT_INTERRUPTED.value, WireError.SCRIPT_TIMEOUT.value):
        return _stop_from_wire(code, data)
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
    error = ProtocolViolationError(f"{code}: {message}")
    if code == WireError.INTERNAL.value and isinstance(data, str) and data:
        # A bug in the worker: its traceback (text; nothing of it runs here) as the cause.
        error.__cause__ = RemoteTraceback(data)
    return error


def _stop_from_wire(code, data) -> IsolateError:
    """ScriptTimeoutError / ScriptInterruptedError. run_new's stopped script sends
    ``[the stop's data, the id of the context the worker kept]``, so the host can
    read what the script did into the sandbox dict (``_kept_context``)."""
    kept_context = None
    if isinstance(data, list) and len(data) == 2 and type(data[1]) is int and data[1] > 0:
        data, kept_context = data
    if code == WireError.SCRIPT_INTERRUPTED.value:
        stop: IsolateError = ScriptInterruptedError()
    else:
        stop = ScriptTimeoutError(data if isinstance(data, (int, float)) and not isinstance(data, bool) else 0)
    if kept_context is not None:
        stop._kept_context = kept_context  # type: ignore[attr-defined]
    return stop


# -- displayErrors: where a script's runtime error happened, above its stack -----------

_THROW = re.compile(r"\bthrow\b")


def display_error(error: BaseException, sources: "dict[str, tuple[str, int, int]]") -> None:
    """Node's ``displayErrors`` for an Error thrown out of a run: its ``stack``
    starts with ``file:line``, the source line, a caret and a blank line.

    ``sources`` maps file names to ``(code, line_offset, column_offset)`` of the
    scripts the host ran in the context (the one being run among them). The
    line is the first stack frame's, when its file is one of those (else the
    stack is left as it is). Node's caret marks where V8 saw the throw; QuickJS
    reports only where frames are, so the caret marks the ``throw`` before the
    frame's column on that line if there is one (the usual ``throw new
    Error(...)``), else the frame's column. A stack that is already decorated
    (a compile error), or a thrown non-Error, is left alone.
    """
    if not isinstance(error, JSError) or error.value is not error or not isinstance(error.stack, str):
        return
    head = f"{error.name}: {error.message}" if error.message else error.name
    if not error.stack.startswith(head):
        return  # decorated already, or a stack the script wrote itself
    # The first frame: a host function's ("at f (<host>)") has no source here (Node's
    # would show the host function's own file), nor has a native one.
    first = re.search(r"^[ \t]+at [^\n]*$", error.stack, re.MULTILINE)
    match = first and _LOCATED_FRAME.match(first.group(0))
    where = match and re.search(r"([^\s(]+):(\d+):(\d+)\)?$", match.group(1))
    source_of = where and sources.get(where.group(1))
    if not where or source_of is None:
        return
    filename = where.group(1)
    code, line_offset, column_offset = source_of
    line, column = int(where.group(2)), int(where.group(3))
    lines = code.split("\n")
    index = line - line_offset - 1
    if not 0 <= index < len(lines):
        return
    source = lines[index].rstrip("\r")
    at = column - 1 - (column_offset if index == 0 else 0)
    if not 0 <= at <= len(source):
        return  # not this code's line: an earlier script of the same file name
    throws = [m.start() for m in _THROW.finditer(source, 0, max(at, 0) + 1)]
    caret = throws[-1] if throws else min(max(at, 0), len(source))
    error.stack = f"{filename}:{line}\n{source}\n{' ' * caret}^\n\n{error.stack}"
