"""msgpack-RPC messages: request, response and notification, as typed objects.

Sits above ``protocol.codec`` (values) and below ``protocol.stream`` (bytes).
Wire shapes are exactly the msgpack-RPC spec's:

    request       [0, msgid, method, params]
    response      [1, msgid, error, result]
    notification  [2, method, params]
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, Union

import msgpack

from .codec import ExtDecoder, decode_value

__all__ = [
    "PROTOCOL_VERSION", "MAX_NESTING", "MessageKind", "Request", "Response", "Notification", "Message",
    "pack_message", "unpack_message", "ProtocolError", "finish_values",
]

# Bumped whenever a method, an ext type or a message field changes meaning.
PROTOCOL_VERSION = 1

# Nested host <-> worker calls beyond this depth fail with NESTING_TOO_DEEP:
# deep enough for any real callback chain, shallow enough that Python's own
# recursion limit (each level costs ~10 frames) is never the one that trips.
MAX_NESTING = 32


class MessageKind(enum.IntEnum):
    REQUEST = 0
    RESPONSE = 1
    NOTIFICATION = 2


class ProtocolError(ValueError):
    """Bytes that are not a well-formed message."""


@dataclass
class Request:
    msgid: int
    method: str
    params: list
    needs_finish: bool = False


@dataclass
class Response:
    msgid: int
    error: Any  # None or [code, message, data]
    result: Any
    needs_finish: bool = False


@dataclass
class Notification:
    method: str
    params: list
    needs_finish: bool = False


Message = Union[Request, Response, Notification]


def pack_message(message: Message) -> bytes:
    """Serialize a message whose values were already passed through ``codec.encode_value``."""
    if isinstance(message, Request):
        doc = [MessageKind.REQUEST, message.msgid, message.method, message.params]
    elif isinstance(message, Response):
        doc = [MessageKind.RESPONSE, message.msgid, message.error, message.result]
    elif isinstance(message, Notification):
        doc = [MessageKind.NOTIFICATION, message.method, message.params]
    else:
        raise TypeError(f"not a message: {message!r}")
    return msgpack.packb(doc, use_bin_type=True)


def unpack_message(doc: Any, decoder: ExtDecoder) -> Message:
    """Validate an unpacked document's shape and build the typed message."""
    if not isinstance(doc, (list, tuple)) or not doc:
        raise ProtocolError(f"a message must be a non-empty array, got {type(doc).__name__}")
    kind = doc[0]
    try:
        if kind == MessageKind.REQUEST and len(doc) == 4:
            _, msgid, method, params = doc
            _check(isinstance(msgid, int) and isinstance(method, str) and isinstance(params, list), doc)
            return Request(msgid, method, params, decoder.needs_finish)
        if kind == MessageKind.RESPONSE and len(doc) == 4:
            _, msgid, error, result = doc
            _check(isinstance(msgid, int) and (error is None or isinstance(error, list)), doc)
            return Response(msgid, error, result, decoder.needs_finish)
        if kind == MessageKind.NOTIFICATION and len(doc) == 3:
            _, method, params = doc
            _check(isinstance(method, str) and isinstance(params, list), doc)
            return Notification(method, params, decoder.needs_finish)
    except ProtocolError:
        raise
    raise ProtocolError(f"malformed message: {str(doc)[:120]}")


def _check(ok: bool, doc) -> None:
    if not ok:
        raise ProtocolError(f"malformed message: {str(doc)[:120]}")


def finish_values(value: Any, needs_finish: bool, **hooks) -> Any:
    """Finish a value unpacked from a message (see ``codec.decode_value``), if it needs it."""
    return decode_value(value, **hooks) if needs_finish else value
