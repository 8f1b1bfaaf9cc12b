"""Value codec: Python values of the value model <-> msgpack bytes with ext types.

Sits under ``protocol.messages``: a message's value-carrying fields are packed
with :func:`pack_default` and unpacked with :func:`ExtDecoder`. Pure.

Shared references and cycles: containers (list, dict, JSMap, JSSet,
ErrorValue) are numbered in pre-order; a container met again is written as
``REF(n)``. A value containing any REF is wrapped in ``GRAPH`` so the decoder
knows to resolve the references after unpacking.
"""

from __future__ import annotations

import datetime as _dt
import enum
import math
import struct
from typing import Any, Callable

import msgpack

from .values import (
    BigInt, ErrorValue, HandleRef, HostFunctionRef, JSDate, JSMap, JSRegExp, JSSet, JSSymbol,
    JSTypedArray, Unhashable, UndefinedType, undefined,
)

__all__ = ["ExtType", "encode_value", "decode_value", "peek", "ExtDecoder", "UnencodableValue",
           "MAX_SAFE_INTEGER"]

MAX_SAFE_INTEGER = 2**53 - 1
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)


class ExtType(enum.IntEnum):
    """msgpack ext type codes of JavaScript values (documented in SPEC.md)."""

    UNDEFINED = 1
    BIGINT = 2
    DATE = 3
    REGEXP = 4
    MAP = 5
    SET = 6
    TYPED_ARRAY = 7
    ERROR = 8
    SYMBOL = 9
    HANDLE = 10
    HOST_FUNCTION = 11
    REF = 12
    GRAPH = 13
    SURROGATE_STRING = 14


class UnencodableValue(TypeError):
    """A Python value that has no JavaScript counterpart (raised by the encoder)."""


class _Ref:
    """Placeholder for REF(n) until the graph is resolved."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index


def _pack(obj: Any) -> bytes:
    # Ext payloads may hold JS strings with lone surrogates (error messages,
    # regexp sources): surrogatepass keeps them, as SURROGATE_STRING does.
    return msgpack.packb(obj, use_bin_type=True, unicode_errors="surrogatepass")


def _unpack_inner(data: bytes, ext_hook) -> Any:
    return msgpack.unpackb(data, ext_hook=ext_hook, raw=False, strict_map_key=False,
                           unicode_errors="surrogatepass")


class _Encoder:
    """One encoding pass: converts to msgpack-ready structures, tracking containers."""

    def __init__(self, to_ref: Callable[[Any], Any] | None):
        self.to_ref = to_ref
        self.seen: dict[int, int] = {}
        self.keepalive: list = []
        self.refs = False

    def number(self, obj) -> None:
        self.seen[id(obj)] = len(self.seen)
        self.keepalive.append(obj)

    def enc(self, v: Any) -> Any:
        t = type(v)
        if v is None or t is bool or t is float:
            return v
        if t is str:
            return self.string(v)
        if t is int:
            if -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER:
                return v
            try:
                return float(v)
            except OverflowError:
                raise UnencodableValue(
                    f"an integer of {v.bit_length()} bits is too large for a JavaScript number "
                    "(use isolate.BigInt)") from None
        if isinstance(v, (list, tuple, dict, JSMap, JSSet, set, frozenset, ErrorValue)):
            if id(v) in self.seen:
                self.refs = True
                return msgpack.ExtType(ExtType.REF, _pack(self.seen[id(v)]))
        if isinstance(v, UndefinedType):
            return msgpack.ExtType(ExtType.UNDEFINED, b"")
        if isinstance(v, BigInt):
            return msgpack.ExtType(ExtType.BIGINT, str(int(v)).encode())
        if isinstance(v, bool):
            return bool(v)
        if isinstance(v, int):
            return self.enc(int(v))
        if isinstance(v, float):
            return float(v)
        if isinstance(v, str):
            return self.string(str(v))
        if isinstance(v, JSMap):
            self.number(v)
            flat = []
            for k, val in v.items():
                flat.append(self.enc(k.value if isinstance(k, Unhashable) else k))
                flat.append(self.enc(val))
            return msgpack.ExtType(ExtType.MAP, _pack(flat))
        if isinstance(v, dict):
            self.number(v)
            out = {}
            for k, val in v.items():
                if not isinstance(k, str):
                    if isinstance(k, (int, float)) and not isinstance(k, bool):
                        k = _js_number_key(k)
                    else:
                        raise UnencodableValue(
                            f"object keys must be str (or numbers), got {type(k).__name__} {k!r}")
                out[self.string(k) if isinstance(k, str) else k] = self.enc(val)
            return out
        if isinstance(v, (list, tuple)):
            self.number(v)
            return [self.enc(item) for item in v]
        if isinstance(v, (set, frozenset)):
            self.number(v)
            items = [self.enc(i.value if isinstance(i, Unhashable) else i) for i in v]
            return msgpack.ExtType(ExtType.SET, _pack(items))
        if isinstance(v, (bytes, bytearray, memoryview)):
            return bytes(v)
        if isinstance(v, _dt.datetime):
            if v.tzinfo is None:
                raise UnencodableValue("naive datetime has no defined instant; attach a tzinfo")
            ms = (v - _EPOCH) / _dt.timedelta(milliseconds=1)
            return msgpack.ExtType(ExtType.DATE, struct.pack(">d", math.floor(ms)))
        if isinstance(v, JSDate):
            return msgpack.ExtType(ExtType.DATE, struct.pack(">d", v.ms))
        if isinstance(v, JSRegExp):
            return msgpack.ExtType(ExtType.REGEXP, _pack([v.source, v.flags]))
        if isinstance(v, JSTypedArray):
            return msgpack.ExtType(ExtType.TYPED_ARRAY, _pack([v.kind, v.data]))
        if isinstance(v, ErrorValue):
            self.number(v)
            props = {k: self.enc(val) for k, val in v.props.items()}
            return msgpack.ExtType(ExtType.ERROR, _pack([v.name, v.message, v.stack, props]))
        if isinstance(v, JSSymbol):
            return msgpack.ExtType(ExtType.SYMBOL, _pack([v.description, v.registered]))
        if isinstance(v, HandleRef):
            return msgpack.ExtType(ExtType.HANDLE, _pack([v.kind, v.handle_id, v.class_name, v.name]))
        if isinstance(v, HostFunctionRef):
            return msgpack.ExtType(ExtType.HOST_FUNCTION, _pack([v.function_id, v.name]))
        if self.to_ref is not None:
            ref = self.to_ref(v)
            if ref is not None:
                return self.enc(ref)
        raise UnencodableValue(f"cannot pass a value of type {type(v).__name__} to JavaScript: {v!r:.80}")

    def string(self, s: str) -> Any:
        try:
            s.encode("utf-8")
            return s
        except UnicodeEncodeError:
            return msgpack.ExtType(ExtType.SURROGATE_STRING, s.encode("utf-8", "surrogatepass"))


def _js_number_key(k) -> str:
    """The property key JS makes of a number: ECMAScript's Number::toString.

    ``1`` -> ``"1"``, ``1.5`` -> ``"1.5"``, ``1e21`` -> ``"1e+21"``,
    ``1e-7`` -> ``"1e-7"``, NaN -> ``"NaN"``, inf -> ``"Infinity"``.
    """
    if isinstance(k, int):
        k = float(k) if abs(k) > MAX_SAFE_INTEGER else k
        if isinstance(k, int):
            return str(k)
    if math.isnan(k):
        return "NaN"
    if math.isinf(k):
        return "Infinity" if k > 0 else "-Infinity"
    if k == 0:
        return "0"
    sign = "-" if k < 0 else ""
    # Shortest round-tripping digits and exponent, as both Python and JS use.
    digits = repr(abs(k))
    if "e" in digits:
        mant, _, e = digits.partition("e")
        digits, n = mant.replace(".", ""), int(e) + 1
    else:
        whole, _, frac = digits.partition(".")
        frac = "" if frac == "0" else frac
        raw = (whole + frac).lstrip("0")
        n = len(whole.lstrip("0")) if whole.strip("0") else -(len(frac) - len(frac.lstrip("0")))
        digits = raw
    digits = digits.rstrip("0") or "0"
    count = len(digits)
    if count <= n <= 21:
        return sign + digits + "0" * (n - count)
    if 0 < n <= 21:
        return sign + digits[:n] + "." + digits[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * (-n) + digits
    e = n - 1
    body = digits[0] + ("." + digits[1:] if count > 1 else "")
    return sign + body + "e" + ("+" if e > 0 else "-") + str(abs(e))


def encode_value(value: Any, to_ref: Callable[[Any], Any] | None = None) -> Any:
    """Convert ``value`` into a msgpack-ready structure (ext types for JS-only values).

    ``to_ref`` is asked about any other object: it returns a
    :class:`HandleRef` (a proxy of a JS value going home), a
    :class:`HostFunctionRef` (a callable the host exposes), or None.
    Raises :class:`UnencodableValue` for values with no JS counterpart.
    """
    enc = _Encoder(to_ref)
    out = enc.enc(value)
    if enc.refs:
        return msgpack.ExtType(ExtType.GRAPH, _pack(out))
    return out


class ExtDecoder:
    """msgpack ``ext_hook`` turning ext types into value-model objects.

    Maps, Sets, Errors, handles and references come out as placeholders that
    :func:`decode_value` finishes; ``needs_finish`` says whether any did, so
    that plain values skip the walk.
    """

    def __init__(self):
        self.needs_finish = False

    def unpack(self, data: bytes) -> Any:
        return _unpack_inner(data, self)

    def __call__(self, code: int, data: bytes) -> Any:
        try:
            return self._decode(code, data)
        except ValueError:
            raise
        except (TypeError, IndexError, KeyError, struct.error, UnicodeDecodeError, msgpack.UnpackException) as exc:
            # A peer sent a malformed payload: a ValueError is what the stream reports as ProtocolError.
            raise ValueError(f"malformed payload of ext type {code}: {exc}") from None

    def _decode(self, code: int, data: bytes) -> Any:
        try:
            kind = ExtType(code)
        except ValueError:
            raise ValueError(f"unknown value ext type {code}") from None
        if kind is ExtType.UNDEFINED:
            return undefined
        if kind is ExtType.BIGINT:
            return BigInt(int(data.decode()))
        if kind is ExtType.DATE:
            (ms,) = struct.unpack(">d", data)
            return _date_from_ms(ms)
        if kind is ExtType.SURROGATE_STRING:
            return data.decode("utf-8", "surrogatepass")
        if kind is ExtType.SYMBOL:
            inner = self.unpack(data)
            return JSSymbol(inner[0], bool(inner[1]))
        if kind is ExtType.REGEXP:
            inner = self.unpack(data)
            return JSRegExp(inner[0], inner[1])
        if kind is ExtType.TYPED_ARRAY:
            inner = self.unpack(data)
            return JSTypedArray(inner[0], bytes(inner[1]))
        self.needs_finish = True
        if kind is ExtType.REF:
            return _Ref(msgpack.unpackb(data))
        inner = self.unpack(data)
        if kind is ExtType.MAP:
            return _PendingMap(inner)
        if kind is ExtType.SET:
            return _PendingSet(inner)
        if kind is ExtType.ERROR:
            return _PendingError(ErrorValue(inner[0], inner[1], inner[2], inner[3]))
        if kind is ExtType.HANDLE:
            return HandleRef(inner[0], inner[1], inner[2], inner[3])
        if kind is ExtType.HOST_FUNCTION:
            return HostFunctionRef(inner[0], inner[1])
        if kind is ExtType.GRAPH:
            return _Graph(inner)
        raise ValueError(f"unhandled ext type {kind!r}")  # pragma: no cover


class _PendingMap:
    __slots__ = ("flat",)

    def __init__(self, flat):
        self.flat = flat


class _PendingSet:
    __slots__ = ("items",)

    def __init__(self, items):
        self.items = items


class _PendingError:
    __slots__ = ("error",)

    def __init__(self, error):
        self.error = error


class _Graph:
    __slots__ = ("root",)

    def __init__(self, root):
        self.root = root


def _date_from_ms(ms: float):
    if math.isnan(ms):
        return JSDate(ms)
    try:
        return _EPOCH + _dt.timedelta(milliseconds=ms)
    except OverflowError:
        return JSDate(ms)


def _hashable(v):
    try:
        hash(v)
        return v
    except TypeError:
        return Unhashable(v)


def peek(obj: Any, index: int) -> Any:
    """Item ``index`` of an unpacked (not yet finished) list, through a GRAPH wrapper.

    For plain leading items (an id before the values) that a receiver needs
    before it can finish the rest.
    """
    root = obj.root if isinstance(obj, _Graph) else obj
    return root[index]


def decode_value(obj: Any, make_error=None, make_handle=None, make_host_function=None) -> Any:
    """Finish decoding an unpacked value: build Maps, Sets and Errors, resolve REFs.

    ``make_error(ErrorValue)``, ``make_handle(HandleRef)`` and
    ``make_host_function(HostFunctionRef)`` let the receiving side substitute
    its own objects (exceptions, proxies, the original callables).
    Containers are numbered in pre-order exactly as the encoder numbered them.
    """
    make_error = make_error or (lambda e: e)
    make_handle = make_handle or (lambda h: h)
    make_host_function = make_host_function or (lambda f: f)

    # `table` numbers the containers of the innermost GRAPH being decoded;
    # outside any GRAPH there are no REFs, so nothing is numbered.
    def fin(v, table):
        t = type(v)
        if t is list:
            if table is not None:
                table.append(v)
            for i, item in enumerate(v):
                v[i] = fin(item, table)
            return v
        if t is dict:
            if table is not None:
                table.append(v)
            for k in v:
                v[k] = fin(v[k], table)
            return v
        if t is _Ref:
            if table is None or not 0 <= v.index < len(table):
                raise ValueError(f"back-reference {v.index} outside the containers seen")
            return table[v.index]
        if t is _PendingMap:
            out = JSMap()
            if table is not None:
                table.append(out)
            flat = v.flat
            for i in range(0, len(flat) - 1, 2):
                key = fin(flat[i], table)  # the key first: pre-order, as the encoder numbered
                out[_hashable(key)] = fin(flat[i + 1], table)
            return out
        if t is _PendingSet:
            out = JSSet()
            if table is not None:
                table.append(out)
            for item in v.items:
                out.add(_hashable(fin(item, table)))
            return out
        if t is _PendingError:
            err = v.error
            slot = None
            if table is not None:
                table.append(None)
                slot = len(table) - 1
            result = make_error(err)
            if slot is not None:
                table[slot] = result
            err.props = {k: fin(val, table) for k, val in err.props.items()}
            if result is not err and hasattr(result, "_set_props"):
                result._set_props(err.props)
            return result
        if t is _Graph:
            return fin(v.root, [])
        if t is HandleRef:
            return make_handle(v)
        if t is HostFunctionRef:
            return make_host_function(v)
        return v

    return fin(obj, None)
