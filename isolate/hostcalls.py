"""Host callables: Python functions that JavaScript calls, served on the caller's thread.

When a script calls a host function, its worker sends a ``call_host``
request nested in the call that runs the script; the thread waiting for
that call (see isolate.scheduler) runs the callable here and answers. While
it runs, this thread is *serving* the worker's call: any request it makes to
that worker is nested in it (the worker, blocked waiting for the answer,
serves it inside), which is how calls nest both ways.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from .protocol import ErrorValue, Request, Response, WireError, encode_value, error_triple, finish_values

from .errors import ContextLostError, InvalidArgValueError, IsolateError, JSError

if TYPE_CHECKING:
    from .supervisor import WorkerHandle

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


def serve_host_call(pool, worker: "WorkerHandle", request: Request, owner=None) -> None:
    """Run a host callable for JS, in this thread, and answer the worker."""
    chain = _chain()
    chain.append((worker, request.msgid))
    try:
        _, context_id, function_id, args = request.params
        context = pool._context_by_id(worker, context_id)
        if context is None and owner is not None and owner._id in (0, context_id):
            owner._id = context_id  # a context the worker made within this call (run_new)
            owner._worker = worker
            context = owner
        fn = pool._host_functions.get(function_id)
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
            WireError.HOST_EXCEPTION, str(exc), encode_value(error_value_of(exc))), None)
    finally:
        chain.pop()
    worker.write_quietly(response)


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
