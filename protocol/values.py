"""The value model: Python types for the JavaScript values that JSON cannot carry.

Pure data. Both the worker (which builds these from the JS bridge's output)
and the supervisor (which hands them to users, or wraps handles in proxies)
share them; the codec in ``protocol.codec`` puts them on the wire.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = [
    "UndefinedType", "undefined", "BigInt", "bigint_decimal", "JSSymbol", "JSRegExp", "JSMap", "JSSet",
    "JSTypedArray", "JSDate", "ErrorValue", "HandleRef", "HostFunctionRef", "Unhashable",
    "JSAccessor", "Unencodable", "TYPED_ARRAY_FORMATS", "TypedKey", "member_key", "plain_member", "JSONText",
]


class UndefinedType:
    """JavaScript ``undefined``: a falsy singleton, distinct from ``None`` (``null``)."""

    _instance: "UndefinedType | None" = None

    def __new__(cls):
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "undefined"

    def __reduce__(self):
        return (UndefinedType, ())


undefined = UndefinedType()


class BigInt(int):
    """A JavaScript BigInt. An ``int``, so arithmetic works; it goes back to JS as a BigInt."""

    def __repr__(self) -> str:
        return f"BigInt({bigint_decimal(self)})"


def bigint_decimal(n: int) -> str:
    """``str(n)`` for an int of any size.

    ``str`` refuses ints past ``sys.get_int_max_str_digits()`` digits (4300 by
    default), a process-global limit; ``decimal`` converts without it.
    """
    try:
        return str(int(n))
    except ValueError:
        import decimal

        return str(decimal.Decimal(int(n)))


@dataclass(frozen=True)
class JSSymbol:
    """A JavaScript symbol. ``registered`` symbols (``Symbol.for``) keep identity across calls."""

    description: str | None
    registered: bool = False


@dataclass(frozen=True)
class JSRegExp:
    source: str
    flags: str = ""


class JSMap(dict):
    """A JavaScript ``Map`` (a ``dict`` that goes back to JS as a Map, not a plain object)."""

    def __repr__(self) -> str:
        return f"JSMap({dict.__repr__(self)})"


class JSSet(set):
    """A JavaScript ``Set`` (a Python ``set`` goes to JS as a Set as well)."""

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"JSSet({set(self)!r})" if self else "JSSet()"


@dataclass(frozen=True, eq=False)
class Unhashable:
    """Wraps an unhashable value (an object or array) used as a Map key or Set element."""

    value: object

    def __repr__(self) -> str:
        return f"Unhashable({self.value!r})"


def _js_kind(v: object) -> str:
    """The JS type of a key Python compares by value: a bool, a BigInt or a number."""
    if v.__class__ is bool:
        return "boolean"
    return "bigint" if isinstance(v, BigInt) else "number"


class TypedKey:
    """A Map key or Set member that Python equality would merge with one of another JS type.

    JavaScript keeps ``1``, ``true`` and ``1n`` apart in a Map or Set; Python's
    ``1 == True == BigInt(1)`` would merge them. When a Map or Set holds such
    keys, its booleans and BigInts among them come wrapped in ``TypedKey``
    (numbers stay as they are), so every entry is kept and goes back to JS as
    the original key. Two ``TypedKey`` are equal when their JS types and values are.
    """

    __slots__ = ("value",)

    def __init__(self, value: object) -> None:
        object.__setattr__(self, "value", value)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("TypedKey is immutable")

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not TypedKey:
            return False
        theirs = other.value  # type: ignore[attr-defined]
        return _js_kind(self.value) == _js_kind(theirs) and self.value == theirs

    def __hash__(self) -> int:
        return hash((_js_kind(self.value), self.value))

    def __repr__(self) -> str:
        return f"TypedKey({self.value!r})"

    def __reduce__(self):
        return (TypedKey, (self.value,))


_MERGEABLE = (bool, int, float, BigInt)


def member_key(container: "dict | set", v: object) -> object:
    """``v`` as a key of ``container`` (a JSMap or JSSet being filled from JS).

    Unhashable values (objects, arrays) are wrapped in :class:`Unhashable`;
    a boolean or BigInt that Python would merge with a key of another JS type
    already there is wrapped in :class:`TypedKey`, and so is such a key already
    there when ``v`` is the one that would merge with it.
    """
    try:
        hash(v)
    except TypeError:
        return Unhashable(v)
    if v.__class__ not in _MERGEABLE or v not in container:
        return v
    kind = _js_kind(v)
    existing = next((k for k in container if k is v or k == v), v)  # (a TypedKey equals no plain value)
    if _js_kind(existing) == kind:
        return v  # one JS value (1 and 1.0 are one number)
    if _js_kind(existing) != "number":
        _wrap_existing(container, existing)
    return v if kind == "number" else TypedKey(v)


def _wrap_existing(container: "dict | set", key: object) -> None:
    """Replace ``key`` of ``container`` by ``TypedKey(key)``, keeping a Map's order."""
    if isinstance(container, dict):
        items = list(dict.items(container))
        dict.clear(container)
        for k, x in items:
            dict.__setitem__(container, TypedKey(k) if k is key else k, x)
    else:
        set.discard(container, key)
        set.add(container, TypedKey(key))


def plain_member(k: object) -> object:
    """A Map key or Set member as JS sees it (the wrapped value of Unhashable, TypedKey)."""
    return k.value if k.__class__ is Unhashable or k.__class__ is TypedKey else k  # type: ignore[attr-defined]


# struct format characters of each typed array's element.
TYPED_ARRAY_FORMATS = {
    "Int8Array": "b", "Uint8Array": "B", "Uint8ClampedArray": "B", "Int16Array": "h",
    "Uint16Array": "H", "Int32Array": "i", "Uint32Array": "I", "Float16Array": "e",
    "Float32Array": "f", "Float64Array": "d", "BigInt64Array": "q", "BigUint64Array": "Q",
    "DataView": "B",
}


@dataclass(frozen=True)
class JSTypedArray:
    """A typed array or DataView: its kind (``"Float64Array"``, ...) and its bytes."""

    kind: str
    data: bytes

    def tolist(self) -> list:
        import struct

        fmt = TYPED_ARRAY_FORMATS[self.kind]
        count = len(self.data) // struct.calcsize(fmt)
        items = list(struct.unpack(f"<{count}{fmt}", self.data[: count * struct.calcsize(fmt)]))
        if self.kind in ("BigInt64Array", "BigUint64Array"):
            return [BigInt(i) for i in items]
        return items


@dataclass(frozen=True)
class JSDate:
    """A Date that ``datetime`` cannot hold: invalid (``ms`` is NaN) or outside years 1..9999."""

    ms: float

    @property
    def valid(self) -> bool:
        return not math.isnan(self.ms)


@dataclass(eq=False)
class ErrorValue:
    """A JavaScript Error object as data. The supervisor turns it into an ``isolate.JSError``."""

    name: str
    message: str
    stack: str = ""
    props: dict = field(default_factory=dict)


@dataclass(frozen=True)
class HandleRef:
    """A value kept by reference in a worker: a function, a promise or a non-plain object.

    ``handle_id`` is only meaningful together with the context the value came from.
    """

    kind: str  # "function" | "object" | "promise"
    handle_id: int
    class_name: str = "Object"
    name: str = ""


@dataclass(frozen=True)
class HostFunctionRef:
    """A host (Python) callable as seen from a worker: an id in the host's table of callables."""

    function_id: int
    name: str = ""


@dataclass(frozen=True)
class JSAccessor:
    """An accessor property (getter and/or setter) seen in a context's mirror.

    The mirror of a contextified dict reads the global's properties without
    running script code, so it reports an accessor as such instead of calling
    its getter. ``get`` and ``set`` say which halves are defined. It is a
    marker, not a value: passing it back to JavaScript is refused.
    """

    get: bool
    set: bool

    def __repr__(self) -> str:
        return f"JSAccessor(get={self.get}, set={self.set})"


@dataclass(frozen=True)
class Unencodable:
    """Stands for a JavaScript value the bridge refused to encode (``reason`` says why).

    The worker's encoder refuses it in turn, so the request that carried it is
    answered with the ``UNENCODABLE`` wire error.
    """

    reason: str


class JSONText:
    """A plain value as JSON text (UTF-8 bytes), carried unparsed between the wire and the engine.

    Large plain values cross as JSON text from end to end (``protocol.codec``,
    ``JSON_FOR_JS``/``JSON_FROM_JS``): the worker splices the text into its request
    to the bridge, or the engine's reply text into the wire message, instead of
    building Python objects it would only convert again. Only the codec and the
    worker make these; they never reach users.
    """

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data

    def __repr__(self) -> str:
        return f"JSONText(<{len(self.data)} bytes>)"
