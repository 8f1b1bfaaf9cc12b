"""Tagged JSON <-> value model: the worker's translation between the bridge and the wire.

The JS bridge (``bridge.js``) speaks "tagged JSON": plain JSON where JSON is
exact, and ``{"\\u0000": TAG, ...}`` objects for the rest. Maps, Sets, Errors
and objects that have a ``"\\u0000"`` key of their own are arrays whose first
item is such a tag object (``[{"\\u0000": "m"}, k1, v1, ...]``), so a value
nests one JSON level per container, as on the wire. The tags are documented
in ``protocol/SPEC.md``. Containers (arrays, plain objects, Maps, Sets,
Errors) are numbered in pre-order on both sides, so ``R`` (a back-reference)
means the same container in either direction.

Both directions walk with an explicit stack, so depth costs no Python stack;
it is bounded by ``protocol.MAX_DECODE_DEPTH`` anyway (the bridge itself
refuses to encode deeper than ``MAX_VALUE_DEPTH``).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from ..protocol.codec import (
    MAX_DECODE_DEPTH, MAX_SAFE_INTEGER, MAX_VALUE_DEPTH, MirroredAccessor, UnencodableValue,
)
from ..protocol.values import (
    BigInt, ErrorValue, HandleRef, HostFunctionRef, JSDate, JSMap, JSONText, JSRegExp, JSSet, JSSymbol,
    JSTypedArray, Unencodable, UndefinedType, member_key, plain_member, undefined,
)
from ..protocol.plainjson import loads as _json_loads

__all__ = ["from_tagged", "to_tagged", "TAG"]

TAG = "\u0000"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_SPECIAL_NUMBERS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf, "-0": -0.0}
# Tags that open a container: the first item of an array.
_CONTAINER_TAGS = frozenset({"m", "S", "e", "O"})
_PLAIN = frozenset({str, int, float, bool, type(None)})



def _too_deep(limit: int) -> ValueError:
    return ValueError(f"tagged value nested more than {limit} levels deep")


# Frame kinds of from_tagged's explicit stack.
_F_LIST, _F_DICT, _F_MAP, _F_SET, _F_PROPS = range(5)


def from_tagged(obj: Any, tagged: bool) -> Any:
    """Tagged JSON (already parsed) -> value model. ``tagged=False`` means plain JSON: no walk.

    Lists and dicts are converted in place. Raises ValueError for what the
    bridge never produces (an unknown tag, a bad back-reference, nesting past
    ``MAX_DECODE_DEPTH``).
    """
    if not tagged or type(obj) in _PLAIN:
        return obj
    return _FromTagged().run(obj)


class _FromTagged:
    __slots__ = ("table", "frame")

    def __init__(self):
        self.table: list = []
        self.frame: tuple | None = None

    def run(self, root: Any) -> Any:
        holder = [root]
        stack: list = []
        kind, src, i, n, out, depth, extra = _F_LIST, holder, 0, 1, None, 0, None
        plain = _PLAIN
        while True:
            if kind == _F_LIST:
                while i < n:
                    item = src[i]
                    i += 1
                    if type(item) in plain:
                        continue
                    r = self.item(item, depth)
                    if r is not item:
                        src[i - 1] = r
                    if self.frame is not None:
                        break
            elif kind == _F_DICT:
                while i < n:
                    k = src[i]
                    i += 1
                    item = out[k]
                    if type(item) in plain:
                        continue
                    r = self.item(item, depth)
                    if r is not item:
                        out[k] = r
                    if self.frame is not None:
                        break
            elif kind == _F_MAP:
                while i < n:
                    item = src[i]
                    i += 1
                    r = item if type(item) in plain else self.item(item, depth)
                    if i % 2 == 0:    # a key: held until its value is converted (pre-order)
                        extra = r
                    else:
                        out[member_key(out, extra)] = r
                    if self.frame is not None:
                        break
            elif kind == _F_SET:
                while i < n:
                    item = src[i]
                    i += 1
                    out.add(member_key(out, item if type(item) in plain else self.item(item, depth)))
                    if self.frame is not None:
                        break
            else:  # _F_PROPS: key, value pairs after the tag (an Error's props, or an `O` object's entries)
                while i < n:
                    k = src[i]
                    if type(k) is not str:
                        raise ValueError(f"property names must be str, got {type(k).__name__}")
                    item = src[i + 1]
                    i += 2
                    out[k] = item if type(item) in plain else self.item(item, depth)
                    if self.frame is not None:
                        break
            if self.frame is not None:
                stack.append((kind, src, i, n, out, depth, extra))
                kind, src, i, n, out, depth, extra = self.frame
                self.frame = None
                continue
            if not stack:
                return holder[0]
            kind, src, i, n, out, depth, extra = stack.pop()

    def item(self, v: Any, depth: int) -> Any:
        t = type(v)
        if t is list:
            if depth >= MAX_DECODE_DEPTH:
                raise _too_deep(MAX_DECODE_DEPTH)
            if v and type(v[0]) is dict and v[0].get(TAG) in _CONTAINER_TAGS:
                return self.container(v, depth)
            self.table.append(v)
            self.frame = (_F_LIST, v, 0, len(v), None, depth + 1, None)
            return v
        if t is not dict:
            raise ValueError(f"unexpected {t.__name__} in tagged JSON")
        if TAG not in v:
            if depth >= MAX_DECODE_DEPTH:
                raise _too_deep(MAX_DECODE_DEPTH)
            self.table.append(v)
            self.frame = (_F_DICT, list(v), 0, len(v), v, depth + 1, None)
            return v
        tag = v[TAG]
        if tag == "u":
            return undefined
        if tag == "n":
            return _SPECIAL_NUMBERS[v["v"]]
        if tag == "b":
            return BigInt(int(v["v"], 16))
        if tag == "y":
            return JSSymbol(v["v"], bool(v.get("g")))
        if tag == "d":
            ms = v["v"]
            if ms is None:
                return JSDate(math.nan)
            try:
                return _EPOCH + dt.timedelta(milliseconds=ms)
            except OverflowError:
                return JSDate(float(ms))
        if tag == "r":
            return JSRegExp(v["s"], v["f"])
        if tag == "R":
            index = v["i"]
            if type(index) is not int or not 0 <= index < len(self.table):
                raise ValueError(f"back-reference {index!r:.20} outside the {len(self.table)} containers seen")
            return self.table[index]
        if tag == "A":
            return v["v"].encode("latin-1")
        if tag == "t":
            return JSTypedArray(v["k"], v["v"].encode("latin-1"))
        if tag == "h":
            return HandleRef(v["k"], v["i"], v.get("c", "Object"), v.get("n", ""))
        if tag == "H":
            return HostFunctionRef(v["i"], v.get("n", ""))
        if tag == "a":
            return MirroredAccessor(bool(v["g"]), bool(v["s"]))
        if tag == "x":
            return Unencodable(str(v["m"]))
        if tag in _CONTAINER_TAGS:
            raise ValueError(f"container tag {tag!r} not at the start of an array")
        raise ValueError(f"unknown tag {tag!r:.20} from the bridge")

    def container(self, v: list, depth: int) -> Any:
        head = v[0]
        tag = head[TAG]
        n = len(v)
        if tag == "e":
            if n % 2 == 0:
                raise ValueError("an Error's props must be key, value pairs")
            out = ErrorValue(head["name"], head["message"], head.get("stack", ""), {})
            self.table.append(out)
            self.frame = (_F_PROPS, v, 1, n, out.props, depth + 1, None)
            return out
        if tag == "O":
            if n % 2 == 0:
                raise ValueError("an object's entries must be key, value pairs")
            out = {}
            self.table.append(out)
            self.frame = (_F_PROPS, v, 1, n, out, depth + 1, None)
            return out
        if tag == "m":
            if n % 2 == 0:
                raise ValueError("a Map's entries must be key, value pairs")
            out = JSMap()
            self.table.append(out)
            self.frame = (_F_MAP, v, 1, n, out, depth + 1, None)
            return out
        out = JSSet()
        self.table.append(out)
        self.frame = (_F_SET, v, 1, n, out, depth + 1, None)
        return out


_MAP_HEAD = {TAG: "m"}
_SET_HEAD = {TAG: "S"}
_OBJECT_HEAD = {TAG: "O"}


def _map_items(m: dict):
    for k, v in m.items():
        yield plain_member(k)
        yield v


def _set_items(s):
    for item in s:
        yield plain_member(item)


def _pairs(d: dict):
    for k, v in d.items():
        yield k
        yield v


def _index_like_key(d: dict) -> bool:
    """Whether a key may be one JS enumerates first (an array index: decimal digits).
    False positives ("01", "²") only cost the pairs form."""
    try:
        return any(map(str.isdigit, d))
    except TypeError:  # a key that is not a str (the bridge refuses it later)
        return True


# Frame kinds of to_tagged's explicit stack.
_T_ITEMS, _T_DICT, _T_PAIRS = range(3)


def to_tagged(value: Any) -> list:
    """Value model -> ``[tagged_json, tagged_flag]``, the argument form the bridge decodes.

    Raises UnencodableValue for a value nested deeper than ``MAX_DECODE_DEPTH``
    (the host's encoder refuses those first) and TypeError for a type with no
    tagged form.
    """
    t = type(value)
    if t is str or t is bool or value is None or t is int and -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
        return [value, False]
    if t is JSONText:  # a plain value's JSON text: spliced into the request (workers/fastjson.py)
        return [value, False]
    enc = _ToTagged()
    out = enc.run(value)
    return [out, enc.tagged]


class _ToTagged:
    __slots__ = ("seen", "keep", "tagged", "opened")

    def __init__(self):
        self.seen: dict[int, int] = {}
        self.keep: list = []   # ids stay unique while this pass runs
        self.tagged = False
        self.opened: tuple | None = None

    def run(self, root: Any) -> Any:
        holder: list = []
        stack: list = []
        kind, it, out, depth = _T_ITEMS, iter((root,)), holder, 0
        while True:
            if kind == _T_ITEMS or kind == _T_PAIRS:
                append = out.append
                for item in it:
                    t = type(item)
                    append(item if t is str or t is bool or item is None else self.enc(item, depth))
                    if self.opened is not None:
                        break
            else:
                for k, item in it:
                    t = type(item)
                    out[k] = item if t is str or t is bool or item is None else self.enc(item, depth)
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

    def tag(self, t: str, **fields) -> dict:
        self.tagged = True
        fields[TAG] = t
        return fields

    def open(self, v: Any, depth: int, kind: int, it, out) -> Any:
        n = self.seen.get(id(v))
        if n is not None:
            return self.tag("R", i=n)
        if depth >= MAX_DECODE_DEPTH:
            raise UnencodableValue(f"a value nested more than {MAX_VALUE_DEPTH} levels deep cannot be "
                                   "passed to JavaScript; the limit is protocol.MAX_VALUE_DEPTH")
        self.seen[id(v)] = len(self.seen)
        self.keep.append(v)
        self.opened = (kind, it, out, depth + 1)
        return out

    def enc(self, v: Any, depth: int) -> Any:
        t = type(v)
        if t is int:
            return v if -MAX_SAFE_INTEGER <= v <= MAX_SAFE_INTEGER else float(v)
        if t is float:
            if math.isnan(v):
                return self.tag("n", v="NaN")
            if math.isinf(v):
                return self.tag("n", v="Infinity" if v > 0 else "-Infinity")
            if v == 0 and math.copysign(1.0, v) < 0:
                return self.tag("n", v="-0")
            return v
        if t is list:
            return self.open(v, depth, _T_ITEMS, iter(v), [])
        if t is dict:
            if TAG in v or _index_like_key(v):
                # Pairs: the bridge walks them in this order. A JSON object's keys would be
                # walked in JS order (index-like keys first), numbering the containers
                # differently from here, so a back-reference would name another container.
                self.tagged = True
                return self.open(v, depth, _T_PAIRS, _pairs(v), [_OBJECT_HEAD])
            return self.open(v, depth, _T_DICT, iter(v.items()), {})
        if t is JSMap:
            self.tagged = True
            return self.open(v, depth, _T_ITEMS, _map_items(v), [_MAP_HEAD])
        if isinstance(v, UndefinedType):
            return self.tag("u")
        if isinstance(v, BigInt):
            return self.tag("b", v=format(int(v), "x"))
        if isinstance(v, JSSet):
            self.tagged = True
            return self.open(v, depth, _T_ITEMS, _set_items(v), [_SET_HEAD])
        if isinstance(v, bytes):
            return self.tag("A", v=v.decode("latin-1"))
        if isinstance(v, dt.datetime):
            return self.tag("d", v=(v - _EPOCH) // dt.timedelta(milliseconds=1))
        if isinstance(v, JSDate):
            return self.tag("d", v=None if math.isnan(v.ms) else v.ms)
        if isinstance(v, JSRegExp):
            return self.tag("r", s=v.source, f=v.flags)
        if isinstance(v, JSTypedArray):
            return self.tag("t", k=v.kind, v=v.data.decode("latin-1"))
        if isinstance(v, ErrorValue):
            self.tagged = True
            head = {TAG: "e", "name": v.name, "message": v.message, "stack": v.stack}
            return self.open(v, depth, _T_PAIRS, _pairs(v.props or {}), [head])
        if isinstance(v, JSSymbol):
            return self.tag("y", v=v.description, g=v.registered)
        if isinstance(v, HandleRef):
            return self.tag("h", i=v.handle_id)
        if isinstance(v, HostFunctionRef):
            return self.tag("H", i=v.function_id, n=v.name)
        if t is JSONText:  # inside another value (not made so today): its value, encoded as any other
            return self.enc(_json_loads(v.data), depth)
        raise TypeError(f"no tagged-JSON form for {type(v).__name__}")
