"""Wire error codes: the ``error`` field of a response is ``[code, message, data]``.

Pure. ``code`` is one of :class:`WireError`; ``data`` is code-specific (for
``JS_EXCEPTION`` it is the thrown value, encoded like any other value).
"""

from __future__ import annotations

import enum

__all__ = ["WireError", "error_triple", "ProtocolError"]


class WireError(str, enum.Enum):
    JS_EXCEPTION = "JS_EXCEPTION"              # the script threw; data = thrown value
    SCRIPT_TIMEOUT = "SCRIPT_TIMEOUT"          # the timer stopped it; data = timeout in ms
    SCRIPT_INTERRUPTED = "SCRIPT_INTERRUPTED"  # stopped by an interrupt request (SIGINT)
    CONTEXT_UNUSABLE = "CONTEXT_UNUSABLE"      # the engine refuses further evals in it
    UNKNOWN_CONTEXT = "UNKNOWN_CONTEXT"        # no such context on this worker
    UNKNOWN_METHOD = "UNKNOWN_METHOD"
    INVALID_PARAMS = "INVALID_PARAMS"          # wrong arity or types of params
    UNENCODABLE = "UNENCODABLE"                # a value had no representation on the wire
    NESTING_TOO_DEEP = "NESTING_TOO_DEEP"      # nested calls exceeded Limits.max_nesting
    PROTOCOL_VERSION = "PROTOCOL_VERSION"      # handshake refused
    HOST_EXCEPTION = "HOST_EXCEPTION"          # a host callable raised; data = error value
    UNKNOWN_SCRIPT = "UNKNOWN_SCRIPT"          # run by key, but the worker has no such script: resend it
    UNSUPPORTED = "UNSUPPORTED"                # the engine cannot do what was asked (e.g. memory limits)
    INTERNAL = "INTERNAL"                      # a bug: message says what


class ProtocolError(ValueError):
    """Bytes that are not a well-formed message, or a malformed value inside one."""


def error_triple(code: WireError, message: str, data=None) -> list:
    return [code.value, message, data]
