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

from .codec import ExtDecoder, ParsedOnly, decode_value, put_parsed_in_place
from .errors import ProtocolError

__all__ = [
    "PROTOCOL_VERSION", "MAX_NESTING", "MessageKind", "Request", "Response", "Notification", "Message",
    "pack_message", "unpack_message", "ProtocolError", "finish_values",
]

# Bumped whenever a method, an ext type or a message field changes meaning.
# 2: MAP, SET, ERROR and GRAPH became marked arrays, BIGINT two's-complement bytes, ACCESSOR added.
# 3: JSON_FOR_JS and JSON_FROM_JS (plain values as JSON text) added.
PROTOCOL_VERSION = 3

# Nested host <-> worker calls beyond this depth fail with NESTING_TOO_DEEP:
# deep enough for any real callback chain, shallow enough that Python's own
# recursion limit (each level costs ~10 frames) is never the one that trips.
MAX_NESTING = 32


class MessageKind(enum.IntEnum):
    REQUEST = 0
    RESPONSE = 1
    NOTIFICATION = 2


# What a message's values need once unpacked: nothing, the finishing walk, or
# only their JSON_FROM_JS values put in place (see codec.ParsedOnly).
Finish = Union[bool, ParsedOnly]


@dataclass
class Request:
    msgid: int
    method: str
    params: list
    needs_finish: Finish = False


@dataclass
class Response:
    msgid: int
    error: Any  # None or [code, message, data]
    result: Any
    needs_finish: Finish = False


@dataclass
class Notification:
    method: str
    params: list
    needs_finish: Finish = False


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
    """Validate an unpacked document's shape and build the typed message.

    Raises :class:`ProtocolError` naming what is wrong; the values inside are
    checked later, by :func:`finish_values`.
    """
    if type(doc) is not list or not doc:
        raise ProtocolError(f"a message must be a non-empty array, got {_describe(doc)}")
    kind = doc[0]
    if type(kind) is not int or kind not in (0, 1, 2):
        raise ProtocolError(f"unknown message kind {_describe(kind)} (0 request, 1 response, 2 notification)")
    arity = 3 if kind == MessageKind.NOTIFICATION else 4
    if len(doc) != arity:
        raise ProtocolError(f"a {MessageKind(kind).name.lower()} has {arity} fields, got {len(doc)}: {_describe(doc)}")
    if kind == MessageKind.REQUEST:
        _, msgid, method, params = doc
        _check_msgid(msgid, doc)
        _check_field(type(method) is str, "method", "a str", method, doc)
        _check_field(type(params) is list, "params", "an array", params, doc)
        return Request(msgid, method, params, decoder.needs_finish)
    if kind == MessageKind.RESPONSE:
        _, msgid, error, result = doc
        _check_msgid(msgid, doc)
        if error is not None:
            _check_field(type(error) is list and len(error) == 3 and type(error[0]) is str
                         and type(error[1]) is str, "error", "nil or [code (str), message (str), data]",
                         error, doc)
        return Response(msgid, error, result, decoder.needs_finish)
    _, method, params = doc
    _check_field(type(method) is str, "method", "a str", method, doc)
    _check_field(type(params) is list, "params", "an array", params, doc)
    return Notification(method, params, decoder.needs_finish)


def _describe(x: Any) -> str:
    """A short description of a field, bounded in cost (a peer may send huge or deep values)."""
    t = type(x)
    if t is list:
        return f"an array of {len(x)} items"
    if t is dict:
        return f"a map of {len(x)} entries"
    if t is str or t is bytes:
        return repr(x[:60]) + ("..." if len(x) > 60 else "")
    if x is None or t is int or t is float or t is bool:
        return repr(x)[:60]
    return t.__name__


def _check_msgid(msgid: Any, doc) -> None:
    _check_field(type(msgid) is int and msgid >= 0, "msgid", "a non-negative int", msgid, doc)


def _check_field(ok: bool, field: str, expected: str, value: Any, doc) -> None:
    if not ok:
        raise ProtocolError(f"malformed message: {field} must be {expected}, got {_describe(value)} "
                            f"in {_describe(doc)}")


def finish_values(value: Any, needs_finish: Finish, **hooks) -> Any:
    """Finish a value unpacked from a message (see ``codec.decode_value``), if it needs it."""
    if not needs_finish:
        return value
    if type(needs_finish) is ParsedOnly:
        return put_parsed_in_place(value, needs_finish.count)
    return decode_value(value, **hooks)
