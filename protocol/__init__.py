"""isolate's wire protocol: msgpack-RPC between the supervisor and its workers. Pure.

The stack, bottom to top::

    values   (protocol.values)    Python types for JS-only values
    codec    (protocol.codec)     values <-> msgpack with ext types
    messages (protocol.messages)  request / response / notification
    stream   (protocol.stream)    messages <-> bytes on file descriptors

Every method, ext type and error code is documented in ``protocol/SPEC.md``.
"""

from .codec import (
    MAX_DECODE_DEPTH, MAX_ENCODE_DEPTH, MAX_VALUE_DEPTH, ExtDecoder, ExtType, UnencodableValue,
    decode_value, encode_value,
)
from .errors import ProtocolError, WireError, error_triple
from .messages import (
    MAX_NESTING, PROTOCOL_VERSION, Message, MessageKind, Notification, Request, Response,
    finish_values, pack_message, unpack_message,
)
from .stream import MAX_FRAME_BYTES, MessageStream, StreamClosed
from .values import (
    BigInt, ErrorValue, HandleRef, HostFunctionRef, JSAccessor, JSDate, JSMap, JSRegExp, JSSet, JSSymbol,
    JSTypedArray, TypedKey, Unencodable, Unhashable, UndefinedType, undefined,
)

__all__ = [
    "MAX_VALUE_DEPTH", "MAX_ENCODE_DEPTH", "MAX_DECODE_DEPTH",
    "ExtDecoder", "ExtType", "UnencodableValue", "decode_value", "encode_value",
    "WireError", "error_triple",
    "MAX_NESTING", "PROTOCOL_VERSION", "Message", "MessageKind", "Notification", "ProtocolError", "Request",
    "Response", "finish_values", "pack_message", "unpack_message",
    "MAX_FRAME_BYTES", "MessageStream", "StreamClosed",
    "BigInt", "ErrorValue", "HandleRef", "HostFunctionRef", "JSAccessor", "JSDate", "JSMap", "JSRegExp",
    "JSSet", "JSSymbol", "JSTypedArray", "TypedKey", "Unencodable", "Unhashable", "UndefinedType", "undefined",
]
