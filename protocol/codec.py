"""Value codec: Python values of the value model <-> msgpack bytes with ext types.

Sits under ``protocol.messages``: a message's value-carrying fields are packed
with :func:`encode_value` and unpacked with :class:`ExtDecoder` (msgpack's
``ext_hook``) plus :func:`decode_value` (the finishing pass). Pure.

Containers that msgpack has no type for (Map, Set, Error) are msgpack arrays
whose first element is a marker ext value with an empty payload,
``[ext(MAP), k1, v1, ...]``; no other value encodes as such an ext, so the
marker cannot be confused with data. Their nesting is therefore msgpack's own,
unpacked by msgpack's iterative parser: the ext hook never unpacks a payload
that could contain another container, and no codec here recurses, so the depth
of a value costs no stack on either side. Depth is bounded anyway
(:data:`MAX_VALUE_DEPTH`), because every other stage (the engine, JSON inside
the worker, msgpack's own stack) has a bound of its own.

Shared references and cycles: containers (list, dict, JSMap, JSSet,
ErrorValue) are numbered in pre-order; a container met again is written as
``REF(n)``. A value containing any REF is wrapped in ``[ext(GRAPH), root]`` so
the decoder knows to resolve the references.
"""

from __future__ import annotations

import datetime as _dt
import enum
import math
import struct
from typing import Any, Callable

import msgpack

from .errors import ProtocolError
from .values import (
    TYPED_ARRAY_FORMATS, BigInt, ErrorValue, HandleRef, HostFunctionRef, JSAccessor, JSDate, JSMap,
    JSONText, JSRegExp, JSSet, JSSymbol, JSTypedArray, Unencodable, UndefinedType, member_key, plain_member,
    undefined,
)
from .plainjson import loads as _json_loads
from .plainjson import plain_json

__all__ = ["ExtType", "encode_value", "decode_value", "peek", "ExtDecoder", "UnencodableValue", "MirroredAccessor",
           "MAX_SAFE_INTEGER", "MAX_VALUE_DEPTH", "MAX_ENCODE_DEPTH", "MAX_DECODE_DEPTH"]

MAX_SAFE_INTEGER = 2**53 - 1
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)

# How deeply containers (arrays, objects, Maps, Sets, Errors) may nest in one
# value: ``[[1]]`` is 2 deep. Every value up to this depth crosses in both
# directions; the JS bridge (workers/bridge.js, which mirrors this number)
# refuses a value one level deeper. Well under msgpack's own limits (its
# packer refuses nesting past 511, its unpacker has a 1024-entry stack) and
# under the engine's stack, which the bridge would otherwise exhaust.
MAX_VALUE_DEPTH = 500

# encode_value counts from the root it is given, which may wrap the values in
# up to two levels of the protocol's own: an argument list, or a result pair
# holding a globals map. Callers that encode one bare value can pass
# max_depth=MAX_VALUE_DEPTH to be exact.
MAX_ENCODE_DEPTH = MAX_VALUE_DEPTH + 2

# decode_value refuses anything deeper than this from the root it is given:
# the encoder's bound plus what a message may wrap around a value (the GRAPH
# wrapper, the params array, an options map, a sandbox dict) and some slack.
MAX_DECODE_DEPTH = MAX_VALUE_DEPTH + 8


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
    ACCESSOR = 15
    JSON_FOR_JS = 16     # host -> worker: a plain value as JSON text, handed to the engine unparsed
    JSON_FROM_JS = 17    # worker -> host: the engine's JSON text of a plain value


class UnencodableValue(TypeError):
    """A Python value that has no JavaScript counterpart (raised by the encoder)."""


class MirroredAccessor(JSAccessor):
    """A JSAccessor on its way from the worker to the host: encoded as ``ACCESSOR``.

    The worker makes these (``workers.tagged``) when the bridge reports an
    accessor of the global; the host decodes a plain :class:`JSAccessor`,
    which the encoder refuses: a marker from a mirror has no meaning back in
    JavaScript.
    """


def _pack(obj: Any) -> bytes:
    # Ext payloads may hold JS strings with lone surrogates (regexp sources,
    # symbol descriptions): surrogatepass keeps them, as SURROGATE_STRING does.
    return msgpack.packb(obj, use_bin_type=True, unicode_errors="surrogatepass")


def _bigint_bytes(n: int) -> bytes:
    return n.to_bytes(n.bit_length() // 8 + 1, "big", signed=True)


_UNDEFINED_EXT = msgpack.ExtType(ExtType.UNDEFINED, b"")
_MAP_MARK = msgpack.ExtType(ExtType.MAP, b"")
_SET_MARK = msgpack.ExtType(ExtType.SET, b"")
_ERROR_MARK = msgpack.ExtType(ExtType.ERROR, b"")
_GRAPH_MARK = msgpack.ExtType(ExtType.GRAPH, b"")

# Frame kinds of the encoder's explicit stack.
_E_ITEMS, _E_DICT, _E_PROPS = 0, 1, 2


def _string(s: str) -> Any:
    if s.isascii():
        return s
    try:
        s.encode("utf-8")
        return s
    except UnicodeEncodeError:
        return msgpack.ExtType(ExtType.SURROGATE_STRING, s.encode("utf-8", "surrogatepass"))


def _text(x: Any) -> Any:
    """An Error's name, message or stack as a str (None is empty)."""
    if type(x) is not str:
        x = "" if x is None else str(x)
    return _string(x)


def _map_items(m: dict):
    for k, v in m.items():
        yield plain_member(k)
        yield v


def _set_items(s):
    for item in s:
        yield plain_member(item)


class _Encoder:
    """One encoding pass: an explicit-stack walk, numbering containers in pre-order."""

    __slots__ = ("to_ref", "seen", "keepalive", "refs", "max_depth", "opened", "made", "stand_ins")

    def __init__(self, to_ref: Callable[[Any], Any] | None, max_depth: int, stand_ins: dict | None = None):
        self.to_ref = to_ref
        self.stand_ins = stand_ins
        self.seen: dict[int, int] = {}
        self.keepalive: list = []   # ids stay unique while this pass runs
        self.refs = False
        self.max_depth = max_depth
        self.opened: tuple | None = None  # the frame of the container just met
        # What to_ref made of each object: the same object met twice (an
        # exception among its own props) makes one ErrorValue, so a cycle
        # through it is a REF, not an endless chain.
        self.made: dict[int, Any] = {}

    def run(self, root: Any) -> Any:
        holder: list = []
        stack: list = []
        kind, it, out, depth = _E_ITEMS, iter((root,)), holder, 0
        lo, hi = -MAX_SAFE_INTEGER, MAX_SAFE_INTEGER
        while True:
            if kind == _E_ITEMS:
                append = out.append
                for item in it:
                    t = type(item)
                    if t is str:
                        append(item if item.isascii() else _string(item))
                    elif t is int and lo <= item <= hi or t is float or t is bool or item is None:
                        append(item)
                    else:
                        append(self.other(item, depth))
                        if self.opened is not None:
                            break
            elif kind == _E_DICT:
                for k, item in it:
                    if type(k) is not str or not k.isascii():
                        k = self.key(k)
                    t = type(item)
                    if t is str:
                        out[k] = item if item.isascii() else _string(item)
                    elif t is int and lo <= item <= hi or t is float or t is bool or item is None:
                        out[k] = item
                    else:
                        out[k] = self.other(item, depth)
                        if self.opened is not None:
                            break
            else:  # _E_PROPS: an Error's props, flattened into its array
                append = out.append
                for k, item in it:
                    append(self.key(k))
                    append(self.other(item, depth))
                    if self.opened is not None:
                        break
            if self.opened is not None:
                stack.append((kind, it, out, depth))
                kind, it, out, depth = self.opened
                self.opened = None
                continue
            if not stack:
                return holder[0]
            kind, it, out, depth = stack.pop()

    def open(self, v: Any, depth: int, kind: int, it, out) -> Any:
        """Meet a container: a REF if seen before, else its (still empty) output, to be filled."""
        n = self.seen.get(id(v))
        if n is not None:
            self.refs = True
            return msgpack.ExtType(ExtType.REF, _pack(n))
        if depth >= self.max_depth:
            raise UnencodableValue(
                f"a value nested more than {MAX_VALUE_DEPTH} levels deep (arrays, objects, Maps, Sets, "
                f"Errors) cannot be passed to JavaScript; the limit is protocol.MAX_VALUE_DEPTH")
        self.seen[id(v)] = len(self.seen)
        self.keepalive.append(v)
        self.opened = (kind, it, out, depth + 1)
        return out

    def key(self, k: Any) -> Any:
        if isinstance(k, str):
            return _string(str(k))
        if isinstance(k, (int, float)) and not isinstance(k, bool):
            return _js_number_key(k)
        # Types only, never repr(): this message can reach JavaScript (a host
        # callable's result), and a repr can hold secrets or addresses.
        raise UnencodableValue(f"object keys must be str (or numbers), got a key of type {type(k).__name__}")

    def other(self, v: Any, depth: int) -> Any:
        """Everything but the common scalars: containers open a frame (see ``open``)."""
        if self.stand_ins and id(v) in self.stand_ins:
            return self.other(self.stand_ins[id(v)], depth)
        t = type(v)
        if t is JSONText:  # the engine's text of a plain value (workers/fastjson.py): sent as it is
            return msgpack.ExtType(ExtType.JSON_FROM_JS, v.data)
        if t is list or t is tuple:
            return self.open(v, depth, _E_ITEMS, iter(v), [])
        if t is dict:
            return self.open(v, depth, _E_DICT, iter(v.items()), {})
        if v is None or t is bool or t is float:
            return v
        if t is int:
            return self.integer(v)
        if t is bytes:
            return v
        if isinstance(v, UndefinedType):
            return _UNDEFINED_EXT
        if isinstance(v, BigInt):
            return msgpack.ExtType(ExtType.BIGINT, _bigint_bytes(int(v)))
        if isinstance(v, bool):
            return bool(v)
        if isinstance(v, int):
            return self.integer(int(v))
        if isinstance(v, float):
            return float(v)
        if isinstance(v, str):
            return _string(str(v))
        if isinstance(v, JSMap):
            return self.open(v, depth, _E_ITEMS, _map_items(v), [_MAP_MARK])
        if isinstance(v, dict):
            return self.open(v, depth, _E_DICT, iter(v.items()), {})
        if isinstance(v, (list, tuple)):
            return self.open(v, depth, _E_ITEMS, iter(v), [])
        if isinstance(v, (set, frozenset)):
            return self.open(v, depth, _E_ITEMS, _set_items(v), [_SET_MARK])
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
            out = [_ERROR_MARK, _text(v.name), _text(v.message), _text(v.stack)]
            return self.open(v, depth, _E_PROPS, iter((v.props or {}).items()), out)
        if isinstance(v, JSSymbol):
            return msgpack.ExtType(ExtType.SYMBOL, _pack([v.description, v.registered]))
        if isinstance(v, HandleRef):
            return msgpack.ExtType(ExtType.HANDLE, _pack([v.kind, v.handle_id, v.class_name, v.name]))
        if isinstance(v, HostFunctionRef):
            return msgpack.ExtType(ExtType.HOST_FUNCTION, _pack([v.function_id, v.name]))
        if t is MirroredAccessor:
            return msgpack.ExtType(ExtType.ACCESSOR, _pack([v.get, v.set]))
        if isinstance(v, JSAccessor):
            raise UnencodableValue(
                f"{v!r} is a marker from a context's mirror (an accessor property of its global), "
                "not a value: it cannot be passed to JavaScript")
        if isinstance(v, Unencodable):
            raise UnencodableValue(v.reason)
        if self.to_ref is not None:
            ref = self.made.get(id(v))
            if ref is None:
                ref = self.to_ref(v)
                if ref is not None:
                    self.made[id(v)] = ref
                    self.keepalive.append(v)
            if ref is not None:
                return self.other(ref, depth)
        raise UnencodableValue(f"cannot pass a value of type {type(v).__name__} to JavaScript")

    @staticmethod
    def integer(v: int) -> Any:
        if -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER:
            return v
        try:
            return float(v)
        except OverflowError:
            raise UnencodableValue(
                f"an integer of {v.bit_length()} bits is too large for a JavaScript number "
                "(use isolate.BigInt)") from None


def _js_number_key(k) -> str:
    """The property key JS makes of a number: ECMAScript's Number::toString.

    ``1`` -> ``"1"``, ``1.5`` -> ``"1.5"``, ``1e21`` -> ``"1e+21"``,
    ``1e-7`` -> ``"1e-7"``, NaN -> ``"NaN"``, inf -> ``"Infinity"``.
    """
    if isinstance(k, int):
        if abs(k) > MAX_SAFE_INTEGER:
            try:
                k = float(k)
            except OverflowError:
                return "Infinity" if k > 0 else "-Infinity"
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


def encode_value(value: Any, to_ref: Callable[[Any], Any] | None = None, *,
                 max_depth: int = MAX_ENCODE_DEPTH, stand_ins: dict[int, Any] | None = None,
                 for_js: bool = False) -> Any:
    """Convert ``value`` into a msgpack-ready structure (ext types for JS-only values).

    ``to_ref`` is asked about any other object: it returns a
    :class:`HandleRef` (a proxy of a JS value going home), a
    :class:`HostFunctionRef` (a callable the host exposes), an
    :class:`ErrorValue`, or None. Raises :class:`UnencodableValue` for values
    with no JS counterpart, and for containers nested deeper than
    ``max_depth`` (see :data:`MAX_ENCODE_DEPTH`). ``stand_ins`` maps ``id()``
    of objects met inside ``value`` to what is encoded in their place (a
    contextified dict stands for its context's global object, a HandleRef).
    ``for_js``: the value goes to JavaScript as a whole (a ``set``), so a plain
    one may travel as JSON text (``JSON_FOR_JS``, see ``protocol.plainjson``).
    """
    t = type(value)
    if t is str:
        return _string(value)
    if for_js and (t is dict or t is list or t is tuple):
        text = plain_json(value, max_depth, stand_ins)
        if text is not None:
            return msgpack.ExtType(ExtType.JSON_FOR_JS, text)
    if value is None or t is bool or t is float or t is int and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return value
    if t is list and len(value) <= 8 and max_depth >= 1 and not stand_ins:
        # A short list of plain scalars (a run's reply, ``[value, globals]``):
        # nothing to walk, number or refer to.
        lo, hi = -MAX_SAFE_INTEGER, MAX_SAFE_INTEGER
        for item in value:
            ti = type(item)
            if not (ti is str and item.isascii() or item is None or ti is bool or ti is float
                    or ti is int and lo <= item <= hi):
                break
        else:
            return list(value)
    enc = _Encoder(to_ref, max_depth, stand_ins)
    out = enc.run(value)
    if enc.refs:
        return [_GRAPH_MARK, out]
    return out


# -- decoding ------------------------------------------------------------------

class _Marker:
    """The unpacked marker at the start of a MAP, SET, ERROR or GRAPH array."""

    __slots__ = ("code",)

    def __init__(self, code: ExtType):
        self.code = code

    def __repr__(self) -> str:
        return f"<{self.code.name} marker>"


_MAP = _Marker(ExtType.MAP)
_SET = _Marker(ExtType.SET)
_ERROR = _Marker(ExtType.ERROR)
_GRAPH = _Marker(ExtType.GRAPH)


class _Parsed:
    """A JSON_FROM_JS value, until finishing puts it in place."""

    __slots__ = ("value",)

    def __init__(self, value: Any):
        self.value = value


class ParsedOnly:
    """An :class:`ExtDecoder`'s ``needs_finish`` when its only placeholders are
    JSON_FROM_JS values (a large mirrored reply's text, parsed on arrival): these
    are put in place (:func:`put_parsed_in_place`) without the finishing walk,
    which would go through every container of the rest of the reply. A marker
    met as well makes ``needs_finish`` plain True: the walk places them."""

    __slots__ = ("count",)

    def __init__(self):
        self.count = 0

    def __bool__(self) -> bool:
        return True


def put_parsed_in_place(root: Any, count: int) -> Any:
    """``root`` with its JSON_FROM_JS placeholders replaced by their values, found
    breadth-first (they sit near the top of a reply) and no further once ``count``
    are found. Nothing else in ``root`` needs finishing (see :class:`ParsedOnly`),
    and a placeholder's value is final as parsed: it is not searched."""
    if type(root) is _Parsed:
        return root.value
    level = [root]
    while level and count:
        below = []
        for container in level:
            items = enumerate(container) if type(container) is list else container.items()
            for key, item in items:
                t = type(item)
                if t is _Parsed:
                    container[key] = item.value  # an existing key: the dict keeps its size
                    count -= 1
                elif t is list or t is dict:
                    below.append(item)
        level = below
    return root


class _Ref:
    """Placeholder for REF(n) until the graph is resolved."""

    __slots__ = ("index",)

    def __init__(self, index: int):
        self.index = index


def _leaf_payload(data: bytes, name: str, shape: tuple) -> list:
    """Unpack a leaf ext's msgpack payload (no ext hook: it holds no values) and check its shape.

    ``shape`` gives each item's allowed types.
    """
    inner = msgpack.unpackb(data, raw=False, strict_map_key=False, unicode_errors="surrogatepass")
    if type(inner) is not list or len(inner) != len(shape):
        raise ProtocolError(f"{name} payload must be an array of {len(shape)} items, got {inner!r:.80}")
    for i, (item, types) in enumerate(zip(inner, shape)):
        if type(item) not in types:
            raise ProtocolError(f"{name} payload item {i} has type {type(item).__name__}: {inner!r:.80}")
    return inner


_STR, _OPT_STR, _INT, _BOOL, _BIN = (str,), (str, type(None)), (int,), (bool,), (bytes,)
_HANDLE_KINDS = frozenset({"function", "object", "promise"})


class ExtDecoder:
    """msgpack ``ext_hook`` turning ext types into value-model objects.

    Container markers, handles, host functions and references come out as
    placeholders that :func:`decode_value` finishes; ``needs_finish`` says
    whether any did, so that plain values skip the walk. A malformed payload
    raises :class:`ProtocolError`.
    """

    __slots__ = ("needs_finish",)

    def __init__(self):
        self.needs_finish = False

    def unpack(self, data: bytes) -> Any:
        return msgpack.unpackb(data, ext_hook=self, raw=False, strict_map_key=False,
                               unicode_errors="surrogatepass")

    def __call__(self, code: int, data: bytes) -> Any:
        try:
            kind = ExtType(code)
        except ValueError:
            raise ProtocolError(f"unknown value ext type {code}") from None
        try:
            return self._decode(kind, data)
        except ProtocolError:
            raise
        except (ValueError, TypeError, IndexError, KeyError, OverflowError, struct.error,
                UnicodeDecodeError, msgpack.UnpackException) as exc:
            raise ProtocolError(f"malformed payload of ext type {code} ({kind.name}): {exc}") from None

    def _decode(self, kind: ExtType, data: bytes) -> Any:
        if kind is ExtType.UNDEFINED:
            if data:
                raise ProtocolError(f"UNDEFINED takes no payload, got {len(data)} bytes")
            return undefined
        if kind is ExtType.BIGINT:
            if not data:
                raise ProtocolError("BIGINT payload is empty (0 is one zero byte)")
            return BigInt(int.from_bytes(data, "big", signed=True))
        if kind is ExtType.DATE:
            if len(data) != 8:
                raise ProtocolError(f"DATE payload must be 8 bytes, got {len(data)}")
            (ms,) = struct.unpack(">d", data)
            return _date_from_ms(ms)
        if kind is ExtType.SURROGATE_STRING:
            return data.decode("utf-8", "surrogatepass")
        if kind is ExtType.JSON_FOR_JS:
            return JSONText(data)  # for the engine, unparsed (the worker's to_tagged splices it)
        if kind is ExtType.JSON_FROM_JS:
            # Parsed here, held in a placeholder: finishing takes the value as it is,
            # without numbering its containers (the sender numbered none: see GRAPH).
            try:
                value = _json_loads(data)
            except RecursionError:
                raise ProtocolError("JSON_FROM_JS nested too deeply") from None
            if self.needs_finish is False:
                self.needs_finish = ParsedOnly()
            if type(self.needs_finish) is ParsedOnly:
                self.needs_finish.count += 1
            return _Parsed(value)
        if kind in (ExtType.MAP, ExtType.SET, ExtType.ERROR, ExtType.GRAPH):
            if data:
                raise ProtocolError(
                    f"{kind.name} is a marker at the start of an array and has no payload, got {len(data)} "
                    "bytes (a protocol 1 peer?)")
            self.needs_finish = True
            return _MARKERS[kind]
        if kind is ExtType.SYMBOL:
            desc, registered = _leaf_payload(data, "SYMBOL", (_OPT_STR, _BOOL))
            return JSSymbol(desc, registered)
        if kind is ExtType.REGEXP:
            source, flags = _leaf_payload(data, "REGEXP", (_STR, _STR))
            return JSRegExp(source, flags)
        if kind is ExtType.TYPED_ARRAY:
            kind_name, payload = _leaf_payload(data, "TYPED_ARRAY", (_STR, _BIN))
            if kind_name not in TYPED_ARRAY_FORMATS:
                raise ProtocolError(f"unknown typed array kind {kind_name!r:.40}")
            return JSTypedArray(kind_name, payload)
        if kind is ExtType.ACCESSOR:
            get, set_ = _leaf_payload(data, "ACCESSOR", (_BOOL, _BOOL))
            return JSAccessor(get, set_)
        if kind is ExtType.REF:
            index = msgpack.unpackb(data)
            if type(index) is not int or index < 0:
                raise ProtocolError(f"REF payload must be a non-negative int, got {index!r:.40}")
            self.needs_finish = True
            return _Ref(index)
        if kind is ExtType.HANDLE:
            handle_kind, handle_id, class_name, name = _leaf_payload(data, "HANDLE", (_STR, _INT, _STR, _STR))
            if handle_kind not in _HANDLE_KINDS:
                raise ProtocolError(f"unknown handle kind {handle_kind!r:.40}")
            self.needs_finish = True
            return HandleRef(handle_kind, handle_id, class_name, name)
        if kind is ExtType.HOST_FUNCTION:
            function_id, name = _leaf_payload(data, "HOST_FUNCTION", (_INT, _STR))
            self.needs_finish = True
            return HostFunctionRef(function_id, name)
        raise ProtocolError(f"unhandled ext type {kind!r}")  # pragma: no cover


_MARKERS = {ExtType.MAP: _MAP, ExtType.SET: _SET, ExtType.ERROR: _ERROR, ExtType.GRAPH: _GRAPH}


def _date_from_ms(ms: float):
    if math.isnan(ms):
        return JSDate(ms)
    try:
        return _EPOCH + _dt.timedelta(milliseconds=ms)
    except OverflowError:
        return JSDate(ms)



def peek(obj: Any, index: int) -> Any:
    """Item ``index`` of an unpacked (not yet finished) list, through a GRAPH wrapper.

    For plain leading items (an id before the values) that a receiver needs
    before it can finish the rest.
    """
    if type(obj) is list and obj and obj[0] is _GRAPH:
        obj = obj[1] if len(obj) == 2 else None
    if type(obj) is not list or not 0 <= index < len(obj) or type(obj[0]) is _Marker:
        raise ProtocolError(f"expected an array of at least {index + 1} items, got {type(obj).__name__}")
    return obj[index]


# Types decode_value leaves as they are (what the ext hook already finished, and plain scalars).
_FINISHED = frozenset({
    str, int, float, bool, type(None), bytes, BigInt, UndefinedType, _dt.datetime, JSDate, JSRegExp,
    JSSymbol, JSTypedArray, JSAccessor, JSONText,
})

# Frame kinds of decode_value's explicit stack.
_D_LIST, _D_DICT, _D_MAP, _D_SET, _D_ERROR = range(5)


def decode_value(obj: Any, make_error=None, make_handle=None, make_host_function=None) -> Any:
    """Finish decoding an unpacked value: build Maps, Sets and Errors, resolve REFs.

    ``make_error(ErrorValue)``, ``make_handle(HandleRef)`` and
    ``make_host_function(HostFunctionRef)`` let the receiving side substitute
    its own objects (exceptions, proxies, the original callables).
    Containers are numbered in pre-order exactly as the encoder numbered them.
    Plain lists and dicts are finished in place. Raises :class:`ProtocolError`
    (and nothing else) for a malformed value, including one nested deeper than
    :data:`MAX_DECODE_DEPTH`.
    """
    return _Finisher(make_error, make_handle, make_host_function).run(obj)


class _Finisher:
    __slots__ = ("make_error", "make_handle", "make_host_function", "frame")

    def __init__(self, make_error, make_handle, make_host_function):
        self.make_error = make_error or _same
        self.make_handle = make_handle or _same
        self.make_host_function = make_host_function or _same
        self.frame: tuple | None = None   # the frame of the container just met

    def run(self, root: Any) -> Any:
        holder = [root]
        stack: list = []
        # The current frame: its kind, source array, next index, length, output
        # (for dicts, the dict itself), the numbering table in force (None
        # outside any GRAPH), depth, and a kind-specific extra.
        kind, src, i, n, out, table, depth, extra = _D_LIST, holder, 0, 1, None, None, 0, None
        finished = _FINISHED
        while True:
            if kind == _D_LIST:
                while i < n:
                    item = src[i]
                    i += 1
                    if type(item) in finished:
                        continue
                    r = self.item(item, table, depth)
                    if r is not item:
                        src[i - 1] = r
                    if self.frame is not None:
                        break
            elif kind == _D_DICT:
                while i < n:
                    k = src[i]
                    i += 1
                    if type(k) is not str:
                        raise ProtocolError(f"object keys must be str, got {type(k).__name__} {k!r:.40}")
                    item = out[k]
                    if type(item) in finished:
                        continue
                    r = self.item(item, table, depth)
                    if r is not item:
                        out[k] = r
                    if self.frame is not None:
                        break
            elif kind == _D_MAP:
                while i < n:
                    item = src[i]
                    i += 1
                    r = item if type(item) in finished else self.item(item, table, depth)
                    if i % 2 == 0:       # a key: held until its value is finished (pre-order)
                        extra = r
                    else:
                        out[member_key(out, extra)] = r
                    if self.frame is not None:
                        break
            elif kind == _D_SET:
                while i < n:
                    item = src[i]
                    i += 1
                    r = item if type(item) in finished else self.item(item, table, depth)
                    out.add(member_key(out, r))
                    if self.frame is not None:
                        break
            else:  # _D_ERROR: props as key, value pairs after [marker, name, message, stack]
                props = out.props
                while i < n:
                    k = src[i]
                    if type(k) is not str:
                        raise ProtocolError(f"ERROR prop names must be str, got {type(k).__name__} {k!r:.40}")
                    item = src[i + 1]
                    i += 2
                    props[k] = item if type(item) in finished else self.item(item, table, depth)
                    if self.frame is not None:
                        break
                else:
                    result = extra
                    if result is not out and hasattr(result, "_set_props"):
                        result._set_props(props)
            if self.frame is not None:
                stack.append((kind, src, i, n, out, table, depth, extra))
                kind, src, i, n, out, table, depth, extra = self.frame
                self.frame = None
                continue
            if not stack:
                return holder[0]
            kind, src, i, n, out, table, depth, extra = stack.pop()

    def item(self, v: Any, table: list | None, depth: int) -> Any:
        """Finish one item; a container opens a frame (``self.frame``) and is returned unfilled."""
        t = type(v)
        if t is list:
            if v and type(v[0]) is _Marker:
                return self.marked(v, table, depth)
            self.check_depth(depth)
            if table is not None:
                table.append(v)
            self.frame = (_D_LIST, v, 0, len(v), None, table, depth + 1, None)
            return v
        if t is dict:
            self.check_depth(depth)
            if table is not None:
                table.append(v)
            self.frame = (_D_DICT, list(v), 0, len(v), v, table, depth + 1, None)
            return v
        if t is _Parsed:
            return v.value
        if t is _Ref:
            if table is None:
                raise ProtocolError(f"back-reference REF({v.index}) outside any GRAPH")
            if v.index >= len(table):
                raise ProtocolError(
                    f"back-reference REF({v.index}) outside the {len(table)} containers seen so far")
            return table[v.index]
        if t is HandleRef:
            return self.make_handle(v)
        if t is HostFunctionRef:
            return self.make_host_function(v)
        if t is _Marker:
            raise ProtocolError(f"{v.code.name} marker not at the start of an array")
        if t in _FINISHED:
            return v
        raise ProtocolError(f"unexpected {t.__name__} in a value")  # pragma: no cover

    def marked(self, v: list, table: list | None, depth: int) -> Any:
        marker = v[0]
        n = len(v)
        if marker is _GRAPH:
            if table is not None:
                raise ProtocolError("GRAPH nested inside a GRAPH")
            if n != 2:
                raise ProtocolError(f"GRAPH must be [marker, root], got {n} items")
            self.check_depth(depth)
            root = v[1]
            # The root is the GRAPH's only item: finished with a fresh numbering.
            return root if type(root) in _FINISHED else self.item(root, [], depth + 1)
        self.check_depth(depth)
        if marker is _MAP:
            if n % 2 == 0:
                raise ProtocolError(f"MAP holds key, value pairs: {n - 1} items after the marker")
            out = JSMap()
            if table is not None:
                table.append(out)
            self.frame = (_D_MAP, v, 1, n, out, table, depth + 1, None)
            return out
        if marker is _SET:
            out = JSSet()
            if table is not None:
                table.append(out)
            self.frame = (_D_SET, v, 1, n, out, table, depth + 1, None)
            return out
        # ERROR: [marker, name, message, stack, key1, value1, ...]
        if n < 4 or n % 2:
            raise ProtocolError(
                f"ERROR must be [marker, name, message, stack, key, value, ...], got {n} items")
        name, message, stack = v[1], v[2], v[3]
        if type(name) is not str or type(message) is not str or type(stack) is not str:
            raise ProtocolError(f"ERROR name, message and stack must be str: {v[1:4]!r:.120}")
        err = ErrorValue(name, message, stack, {})
        slot = -1
        if table is not None:
            slot = len(table)
            table.append(None)
        result = self.make_error(err)
        if slot >= 0:
            table[slot] = result
        self.frame = (_D_ERROR, v, 4, n, err, table, depth + 1, result)
        return result

    @staticmethod
    def check_depth(depth: int) -> None:
        if depth >= MAX_DECODE_DEPTH:
            raise ProtocolError(f"value nested more than {MAX_DECODE_DEPTH} levels deep "
                                f"(MAX_VALUE_DEPTH is {MAX_VALUE_DEPTH})")


def _same(v):
    return v
