"""Host callables: Python functions that JavaScript calls, served on the caller's thread.

When a script calls a host function, its worker sends a ``call_host``
request nested in the call that runs the script; the thread waiting for
that call (see isolate.scheduler) runs the callable here and answers. While
it runs, this thread is *serving* the worker's call: any request it makes to
that worker is nested in it (the worker, blocked waiting for the answer,
serves it inside), which is how calls nest both ways.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from .protocol import ErrorValue, Request, Response, WireError, encode_value, error_triple

from .errors import InvalidArgValueError, IsolateError, JSError

if TYPE_CHECKING:
    from .supervisor import WorkerHandle

log = logging.getLogger("isolate.hostcalls")

__all__ = ["serve_host_call", "error_value_of", "serving_snapshot", "adopt_serving", "serving_in",
           "innermost_served"]


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
    try:
        try:
            _, context_id, function_id, args = request.params
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
        args = owner._decode(args, request.needs_finish)
        result = fn(*args)
        response = Response(request.msgid, None, owner._encode(result))
    except _Refused as exc:
        log.warning("worker %s: refused a host call: %s", worker.pid, exc)
        response = Response(request.msgid, error_triple(WireError.INVALID_PARAMS, str(exc)), None)
    except BaseException as exc:  # a host callable's failure becomes a JS exception
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        response = Response(request.msgid, error_triple(
            WireError.HOST_EXCEPTION, _js_message(exc), encode_value(error_value_of(exc))), None)
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


def error_value_of(exc: BaseException) -> ErrorValue:
    """How a Python exception raised by a host callable looks to JS."""
    if isinstance(exc, JSError):
        return ErrorValue(exc.name, exc.message, exc.stack, dict(exc.props))
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
    return ErrorValue(name, message, f"{name}: {message}\n    at <host> ({type(exc).__name__})", props)
