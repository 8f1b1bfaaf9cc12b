"""Host callables: Python functions that JavaScript calls, served on the caller's thread.

When a script calls a host function, its worker sends a ``call_host``
request nested in the call that runs the script; the thread waiting for
that call (see isolate.scheduler) runs the callable here and answers. While
it runs, this thread is *serving* the worker's call: any request it makes to
that worker is nested in it (the worker, blocked waiting for the answer,
serves it inside), which is how calls nest both ways.

A callable's exception becomes the JS exception (see :func:`error_value_of`):
JS sees the Python type's JS counterpart, its message and ``pythonType``,
never a repr or a traceback. The exception itself stays here, kept for the
call it happened in (:func:`link_host_cause`): if the JS error comes back
out of that call, the ``JSError`` the caller gets has it as ``__cause__``,
traceback and all.
"""

from __future__ import annotations

import collections
import logging
import re
import threading
from typing import TYPE_CHECKING

from .protocol import ErrorValue, Request, Response, WireError, encode_value, error_triple

from .errors import InvalidArgValueError, IsolateError, JSError

if TYPE_CHECKING:
    from .supervisor import WorkerHandle

log = logging.getLogger("isolate.hostcalls")

__all__ = ["serve_host_call", "error_value_of", "serving_snapshot", "adopt_serving", "serving_in",
           "innermost_served", "link_host_cause"]


# A thread running a host callable for a worker's call is "serving" that call:
# requests it makes to that worker meanwhile are nested in it (the worker is
# blocked waiting for the callable's answer, and serves them inside).
_serving = threading.local()


def _chain() -> list:
    chain = getattr(_serving, "chain", None)
    if chain is None:
        chain = _serving.chain = []
    return chain


def serving_snapshot() -> list:
    """The host calls this thread is serving, to hand to a thread that works for it."""
    return list(_chain())


def adopt_serving(snapshot: list) -> None:
    """Make this thread serve the same host calls as the thread that took ``snapshot``."""
    _serving.chain = list(snapshot)


def serving_in(worker: "WorkerHandle") -> tuple[int, int]:
    """(innermost msgid this thread serves for ``worker`` or 0, how many)."""
    entries = [msgid for w, msgid in _chain() if w is worker]
    return (entries[-1] if entries else 0), len(entries)


def innermost_served():
    """The worker whose call this thread serves innermost, or None."""
    chain = _chain()
    return chain[-1][0] if chain else None


def serve_host_call(worker: "WorkerHandle", request: Request, owner=None) -> None:
    """Run a host callable for JS, in this thread, and answer the worker.

    Capabilities, checked here on every call because a worker may be
    compromised: the callable must be one given to ``owner``, the context of
    the call this request is nested in, and the request must name that
    context. A worker can therefore reach only what was handed to the
    context it is running code for, never another context's callables.
    """
    chain = _chain()
    chain.append((worker, request.msgid))
    parent, name = None, ""
    try:
        try:
            parent, context_id, function_id, args = request.params
        except (TypeError, ValueError):
            raise _Refused("malformed call_host parameters") from None
        if owner is None:
            raise _Refused("no host function can be called outside a context's call")
        if not owner._id:
            owner._id = context_id  # the context the worker made within this call (run_new)
            owner._worker = worker
        elif context_id != owner._id:
            raise _Refused(f"call_host names context {context_id!r:.20}, but the call runs in context {owner._id}")
        fn = owner._host_functions.get(function_id) if isinstance(function_id, int) else None
        if fn is None:
            raise _Refused(f"no host function {function_id!r:.20} was given to this context")
        name = _frame_name(fn)
        args = owner._decode(args, request.needs_finish)
        result = fn(*args)
        response = Response(request.msgid, None, owner._encode(result))
    except _Refused as exc:
        log.warning("worker %s: refused a host call: %s", worker.pid, exc)
        response = Response(request.msgid, error_triple(WireError.INVALID_PARAMS, str(exc)), None)
    except BaseException as exc:  # a host callable's failure becomes a JS exception
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        error = error_value_of(exc, name)
        _failures.keep(worker.pid, parent, error, exc)
        response = Response(request.msgid, error_triple(
            WireError.HOST_EXCEPTION, _js_message(exc), encode_value(error)), None)
    finally:
        chain.pop()
    worker.write_quietly(response)


class _Refused(Exception):
    """A call_host this host does not serve (what a compromised worker would send)."""


def _js_message(exc: BaseException) -> str:
    """The message JS sees for a host failure. A callable's own exception says what
    its author wrote; isolate's errors about a value that cannot cross say what
    kind of value, never its repr (secrets, addresses: the detail stays here)."""
    return str(exc) or type(exc).__name__


def error_value_of(exc: BaseException, function_name: str = "") -> ErrorValue:
    """How a Python exception raised by host callable ``function_name`` looks to JS.

    Its stack is the part above the JS that called the function: the error's
    first line, for a JSError the JS frames it came through, then the host
    function's own frame, ``at name (<host>)``. The bridge appends the frames
    of its JS callers (workers/bridge.js, hostFunction).
    """
    frame = f"    at {function_name or '<anonymous>'} (<host>)"
    if isinstance(exc, JSError):
        return ErrorValue(exc.name, exc.message, f"{_above_host_call(exc.stack)}\n{frame}", dict(exc.props))
    name = {TypeError: "TypeError", ValueError: "RangeError", NameError: "ReferenceError"}.get(
        type(exc), "Error")
    props = {"pythonType": type(exc).__name__}
    if isinstance(exc, IsolateError):
        # isolate's own errors mirror Node's (ERR_VM_*, ERR_INVALID_ARG_*): JS sees the code,
        # and the class Node throws them as.
        props["code"] = exc.code
        if isinstance(exc, (TypeError, InvalidArgValueError)):  # Node's ERR_INVALID_ARG_VALUE is a TypeError
            name = "TypeError"
        elif isinstance(exc, (ValueError, RecursionError)):
            name = "RangeError"
        else:
            name = "Error"
    message = str(exc) or type(exc).__name__
    return ErrorValue(name, message, f"{name}: {message}\n{frame}", props)


def _frame_name(fn) -> str:
    """The host function's name as JS already knows it (``fn.name``), fit for one stack line."""
    name = getattr(fn, "__name__", "")
    if type(name) is not str:
        return ""
    return re.sub(r"[\x00-\x1f\x7f()]", "", name)[:100]


# A JS error that went through a host call and back (JS -> host -> JS throws) carries
# the frames below the host call too, from the same engine stack: the JS caller's
# frames, after the native frames of the crossing ("at call_python (native)", dukpy's
# callback, and the bridge's own apply/call). Those are cut: the bridge adds the
# caller's frames again below the host function's frame.
_CROSSING = re.compile(r"(?:\n[ \t]+at [^\n]* \(native\))*?\n[ \t]+at call_python \(native\)(?:\n.*)?\Z", re.DOTALL)


def _above_host_call(stack: str) -> str:
    cut = _CROSSING.search(stack)
    return (stack[:cut.start()] if cut else stack).rstrip("\n")


class _Failures:
    """Host callables' exceptions, kept per call (worker pid, msgid of the call) until
    the call's outcome is known. Bounded, since a call that succeeds (JS caught the
    error) never asks: an exception holds its traceback's frames and their locals."""

    MAX_CALLS = 128
    MAX_PER_CALL = 4

    def __init__(self):
        self._lock = threading.Lock()
        self._by_call: collections.OrderedDict = collections.OrderedDict()

    def keep(self, pid: int, msgid, error: ErrorValue, exc: BaseException) -> None:
        if isinstance(msgid, bool) or not isinstance(msgid, int):
            return
        with self._lock:
            kept = self._by_call.pop((pid, msgid), None) or collections.deque(maxlen=self.MAX_PER_CALL)
            kept.append((error, exc))
            self._by_call[(pid, msgid)] = kept
            while len(self._by_call) > self.MAX_CALLS:
                self._by_call.popitem(last=False)

    def take(self, pid: int, msgid: int) -> "collections.deque | None":
        with self._lock:
            return self._by_call.pop((pid, msgid), None)


_failures = _Failures()


def link_host_cause(worker: "WorkerHandle", msgid: int, error: IsolateError) -> IsolateError:
    """``error`` ends call ``msgid`` on ``worker``: if it is a host callable's failure
    that JS let through, its ``__cause__`` becomes that Python exception. Returns
    the exception to raise: ``error``, or isolate's own error that the callable
    raised (see :func:`_crossed`)."""
    kept = _failures.take(worker.pid, msgid)
    if not kept or not isinstance(error, JSError) or error.__cause__ is not None:
        return error
    for sent, exc in reversed(kept):  # the latest failure first
        if error.name == sent.name and error.message == sent.message and error.stack.startswith(sent.stack):
            error.__cause__ = exc
            return _crossed(exc, error)
    return error


def _crossed(exc: BaseException, error: JSError) -> IsolateError:
    """isolate's own error (a timeout, a lost context, a bad argument...) that a host
    callable raised and JS let through comes out as that error again, with its
    ``.code``: in Node the error object crosses the script unchanged. Raised as a
    copy whose ``__cause__`` is the JS crossing (its stack), whose cause is the
    original. A JS error that only looks like one (a script can set ``code``) is
    not turned into one: only an exception this host kept for this call is."""
    if not isinstance(exc, IsolateError) or isinstance(exc, JSError) or error.props.get("code") != exc.code:
        return error
    again = type(exc).__new__(type(exc))
    Exception.__init__(again, *exc.args)
    again.__dict__.update(exc.__dict__)
    again.__dict__.update({k: v for k, v in error.__dict__.items() if k in ("_mirror", "_stats")})
    again.__cause__ = error
    return again
