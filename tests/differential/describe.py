"""The canonical description of a value, for the Python values isolate returns.

The twin of ``describe`` in node_runner.js: both map a value to the same
tagged JSON, so that a Node result and an isolate result can be compared as
plain data. Tags::

    {"t": "undefined"} {"t": "null"} {"t": "boolean", "v": b}
    {"t": "number", "v": n | "NaN" | "Infinity" | "-Infinity" | "-0"}
    {"t": "bigint", "v": "123"} {"t": "string", "v": s}
    {"t": "symbol", "description": d | null, "registered": b}
    {"t": "array", "v": [...]} {"t": "object", "v": [[key, value], ...]}
    {"t": "map", "v": [[key, value], ...]} {"t": "set", "v": [...]}
    {"t": "date", "v": ms | "NaN"} {"t": "regexp", "source": s, "flags": f}
    {"t": "typedarray", "kind": k, "hex": h} {"t": "arraybuffer", "hex": h}
    {"t": "error", "name": n, "message": m} {"t": "function"} {"t": "promise"}
    {"t": "instance"}                       (any other object, by reference)
    {"t": "ref", "id": n} {"t": "cycle"}    (a container met again)

Containers (lists, dicts, Maps, Sets) are numbered in pre-order, so a shared
reference reads the same on both sides. :func:`canonical` then removes what
is representation, not meaning (the order of a Set, 1 vs 1.0), and
:func:`describe_exception` describes what a run raised.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import re
from typing import Any

import isolate

_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_MAX_SAFE = 2**53

# isolate's own errors, in the shape Node gives its ERR_* errors.
_NODE_ERROR_NAMES = {
    isolate.InvalidArgTypeError: "TypeError",
    isolate.InvalidArgValueError: "TypeError",
    isolate.OutOfRangeError: "RangeError",
    isolate.ScriptTimeoutError: "Error",
}


def _number(v: float | int) -> Any:
    if isinstance(v, int):
        return int(v)
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "Infinity" if v > 0 else "-Infinity"
    if v == 0 and math.copysign(1.0, v) < 0:
        return "-0"
    return v


def describe(root: Any) -> dict:
    """The tagged description of ``root`` (a value returned by isolate)."""
    seen: dict[int, int] = {}
    ancestors: list[int] = []
    keep: list[Any] = []  # keeps described objects alive, so their ids stay unique

    def container(v: Any, build) -> dict:
        seen[id(v)] = len(seen)
        keep.append(v)
        ancestors.append(id(v))
        try:
            return build()
        finally:
            ancestors.pop()

    def d(v: Any) -> dict:
        if isinstance(v, (isolate.Unhashable, isolate.TypedKey)):
            v = v.value
        if v is isolate.undefined:
            return {"t": "undefined"}
        if v is None:
            return {"t": "null"}
        if isinstance(v, bool):
            return {"t": "boolean", "v": v}
        if isinstance(v, isolate.BigInt):
            return {"t": "bigint", "v": str(int(v))}
        if isinstance(v, (int, float)):
            return {"t": "number", "v": _number(v)}
        if isinstance(v, str):
            return {"t": "string", "v": v}
        if isinstance(v, isolate.JSSymbol):
            return {"t": "symbol", "description": v.description, "registered": v.registered}
        if isinstance(v, (list, dict, set)):
            if id(v) in ancestors:
                return {"t": "cycle"}
            if id(v) in seen:
                return {"t": "ref", "id": seen[id(v)]}
            if isinstance(v, list):
                return container(v, lambda: {"t": "array", "v": [d(x) for x in v]})
            if isinstance(v, isolate.JSMap):
                return container(v, lambda: {"t": "map", "v": [[d(k), d(x)] for k, x in v.items()]})
            if isinstance(v, set):
                return container(v, lambda: {"t": "set", "v": [d(x) for x in v]})
            return container(v, lambda: {"t": "object", "v": [[k, d(x)] for k, x in v.items()]})
        if isinstance(v, _dt.datetime):
            return {"t": "date", "v": (v - _EPOCH) // _dt.timedelta(milliseconds=1)}
        if isinstance(v, isolate.JSDate):
            return {"t": "date", "v": _number(v.ms)}
        if isinstance(v, isolate.JSRegExp):
            return {"t": "regexp", "source": v.source, "flags": v.flags}
        if isinstance(v, isolate.JSTypedArray):
            return {"t": "typedarray", "kind": v.kind, "hex": v.data.hex()}
        if isinstance(v, (bytes, bytearray)):
            return {"t": "arraybuffer", "hex": bytes(v).hex()}
        if isinstance(v, isolate.JSError):
            return {"t": "error", "name": v.name, "message": v.message}
        if isinstance(v, isolate.JSPromise):
            return {"t": "promise"}
        if isinstance(v, isolate.JSFunction) or callable(v):
            return {"t": "function"}
        if isinstance(v, isolate.JSObject):
            return {"t": "instance"}
        raise TypeError(f"describe: no description for {type(v).__name__}: {v!r}")

    return d(root)


def stack_location(stack: str) -> str | None:
    """``file:line`` of the first stack frame (columns differ between engines)."""
    m = re.search(r"^\s*at (?:[^\n(]*\()?([^\s()]+):(\d+):\d+\)?$", stack, re.MULTILINE)
    return f"{m.group(1)}:{m.group(2)}" if m else None


def describe_exception(exc: BaseException, case: dict) -> dict:
    """What a raised exception looks like: ``{"error": {...}}`` or ``{"throw": value}``.

    A JS throw of a non-Error value is described by the value. isolate's own
    errors are described the way Node describes its ``ERR_*`` errors.
    """
    if isinstance(exc, isolate.JSError):
        if exc.value is not exc:
            return {"throw": describe(exc.value)}
        out = {"name": exc.name, "message": exc.message}
        code = exc.props.get("code")
        if isinstance(code, str):
            out["code"] = code
        if case.get("stack_location"):
            out["at"] = stack_location(exc.stack)
        if case.get("stack_head"):
            out["head"] = exc.stack.split("\n")[:case["stack_head"]]
        return {"error": out}
    name = next((n for cls, n in _NODE_ERROR_NAMES.items() if isinstance(exc, cls)), type(exc).__name__)
    out = {"name": name, "message": str(exc)}
    code = getattr(exc, "code", None)
    if isinstance(code, str):
        out["code"] = code
    return {"error": out}


def canonical(desc: Any) -> Any:
    """``desc`` with representation-only differences removed, for comparing.

    Set members are sorted (Python sets have no order); numbers are ints when
    integral and safe, floats otherwise, whichever way their JSON spelled them.
    """
    if isinstance(desc, list):
        return [canonical(x) for x in desc]
    if isinstance(desc, dict):
        out = {k: canonical(v) for k, v in desc.items()}
        if out.get("t") == "set":
            out["v"] = sorted(out["v"], key=lambda x: json.dumps(x, sort_keys=True))
        return out
    if isinstance(desc, float) and desc.is_integer() and abs(desc) <= _MAX_SAFE:
        return int(desc)
    if isinstance(desc, int) and not isinstance(desc, bool) and abs(desc) > _MAX_SAFE:
        return float(desc)  # Node's JSON writes 2**64 as 18446744073709552000
    return desc


def sort_keys(desc: Any) -> Any:
    """``desc`` with object keys sorted, for cases where only the engines' key order differs."""
    if isinstance(desc, list):
        return [sort_keys(x) for x in desc]
    if isinstance(desc, dict):
        out = {k: sort_keys(v) for k, v in desc.items()}
        if out.get("t") == "object":
            out["v"] = sorted(out["v"], key=lambda kv: kv[0])
        return out
    return desc


def strip_messages(desc: Any) -> Any:
    """``desc`` without error messages, for cases whose errors the engine raises."""
    if isinstance(desc, list):
        return [strip_messages(x) for x in desc]
    if isinstance(desc, dict):
        is_error = desc.get("t") == "error" or ("name" in desc and "message" in desc and "t" not in desc)
        return {k: strip_messages(v) for k, v in desc.items() if not (is_error and k == "message")}
    return desc
