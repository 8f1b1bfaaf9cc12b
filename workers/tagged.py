"""Tagged JSON <-> value model: the worker's translation between the bridge and the wire.

The JS bridge (``bridge.js``) speaks "tagged JSON": plain JSON where JSON is
exact, and ``{"\\u0000": TAG, ...}`` objects for the rest. The tags are
documented in ``protocol/SPEC.md``. Containers (arrays, plain objects, Maps,
Sets, Errors) are numbered in pre-order on both sides, so ``R`` (a
back-reference) means the same container in either direction.
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from protocol.codec import MAX_SAFE_INTEGER
from protocol.values import (
    BigInt, ErrorValue, HandleRef, HostFunctionRef, JSDate, JSMap, JSRegExp, JSSet, JSSymbol,
    JSTypedArray, Unhashable, UndefinedType, undefined,
)

__all__ = ["from_tagged", "to_tagged", "TAG"]

TAG = "\u0000"
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
_SPECIAL_NUMBERS = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf, "-0": -0.0}


def _hashable(v):
    try:
        hash(v)
        return v
    except TypeError:
        return Unhashable(v)


def from_tagged(obj: Any, tagged: bool) -> Any:
    """Tagged JSON (already parsed) -> value model. ``tagged=False`` means plain JSON: no walk."""
    if not tagged:
        return obj
    table: list = []

    def dec(v):
        t = type(v)
        if t is list:
            table.append(v)
            for i, item in enumerate(v):
                v[i] = dec(item)
            return v
        if t is not dict:
            return v
        if TAG not in v:
            table.append(v)
            for k in v:
                v[k] = dec(v[k])
            return v
        tag = v[TAG]
        if tag == "u":
            return undefined
        if tag == "n":
            return _SPECIAL_NUMBERS[v["v"]]
        if tag == "b":
            return BigInt(int(v["v"]))
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
            return table[v["i"]]
        if tag == "O":
            out: dict = {}
            table.append(out)
            for k, val in v["e"]:
                out[k] = dec(val)
            return out
        if tag == "m":
            out = JSMap()
            table.append(out)
            for k, val in v["e"]:
                key = dec(k)  # the key first: pre-order, as the bridge numbered
                out[_hashable(key)] = dec(val)
            return out
        if tag == "S":
            out = JSSet()
            table.append(out)
            for item in v["e"]:
                out.add(_hashable(dec(item)))
            return out
        if tag == "A":
            return v["v"].encode("latin-1")
        if tag == "t":
            return JSTypedArray(v["k"], v["v"].encode("latin-1"))
        if tag == "e":
            err = ErrorValue(v["name"], v["message"], v.get("stack", ""))
            table.append(err)
            err.props = {k: dec(val) for k, val in (v.get("p") or {}).items()}
            return err
        if tag == "h":
            return HandleRef(v["k"], v["i"], v.get("c", "Object"), v.get("n", ""))
        if tag == "H":
            return HostFunctionRef(v["i"], v.get("n", ""))
        raise ValueError(f"unknown tag {tag!r} from the bridge")

    return dec(obj)


class _ToTagged:
    def __init__(self):
        self.seen: dict[int, int] = {}
        self.keep: list = []
        self.tagged = False

    def tag(self, t: str, **fields) -> dict:
        self.tagged = True
        fields[TAG] = t
        return fields

    def number(self, obj) -> None:
        self.seen[id(obj)] = len(self.seen)
        self.keep.append(obj)

    def enc(self, v: Any) -> Any:
        t = type(v)
        if v is None or t is bool or t is str:
            return v
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
        if id(v) in self.seen and isinstance(v, (list, dict, JSSet, ErrorValue)):
            return self.tag("R", i=self.seen[id(v)])
        if t is list:
            self.number(v)
            return [self.enc(item) for item in v]
        if isinstance(v, JSMap):
            self.number(v)
            return self.tag("m", e=[[self.enc(k.value if isinstance(k, Unhashable) else k), self.enc(val)]
                                    for k, val in v.items()])
        if t is dict:
            self.number(v)
            if TAG in v:
                return self.tag("O", e=[[k, self.enc(val)] for k, val in v.items()])
            return {k: self.enc(val) for k, val in v.items()}
        if isinstance(v, UndefinedType):
            return self.tag("u")
        if isinstance(v, BigInt):
            return self.tag("b", v=str(int(v)))
        if isinstance(v, JSSet):
            self.number(v)
            return self.tag("S", e=[self.enc(i.value if isinstance(i, Unhashable) else i) for i in v])
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
            self.number(v)
            return self.tag("e", name=v.name, message=v.message, stack=v.stack,
                            p={k: self.enc(val) for k, val in v.props.items()})
        if isinstance(v, JSSymbol):
            return self.tag("y", v=v.description, g=v.registered)
        if isinstance(v, HandleRef):
            return self.tag("h", i=v.handle_id)
        if isinstance(v, HostFunctionRef):
            return self.tag("H", i=v.function_id, n=v.name)
        raise TypeError(f"no tagged-JSON form for {type(v).__name__}")


def to_tagged(value: Any) -> list:
    """Value model -> ``[tagged_json, tagged_flag]``, the argument form the bridge decodes."""
    enc = _ToTagged()
    out = enc.enc(value)
    return [out, enc.tagged]
