"""Print Python values the way Node's ``console.log`` prints the JavaScript ones.

Just enough of ``util.inspect`` for the examples: dicts, lists, strings,
numbers, booleans, ``None`` (null), ``isolate.undefined``, BigInt and
functions. Like Node, a container goes on one line when it fits in 80
columns and is otherwise split one entry a line, and containers nested more
than two levels deep print as ``[Object]``/``[Array]`` (Node's grouping of
long arrays of numbers is not reproduced).

    >>> node_format({"animal": "cat", "count": 3})
    "{ animal: 'cat', count: 3 }"
"""

from __future__ import annotations

import math
import re

import isolate

__all__ = ["node_format", "log"]

_BREAK_LENGTH = 80
_DEPTH = 2  # util.inspect's default depth: deeper containers print as [Object] / [Array]
_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\b": "\\b", "\f": "\\f", "\v": "\\v", "\\": "\\\\"}


def _quote(text: str) -> str:
    """A string literal as util.inspect writes it: single quotes unless the text has some."""
    quote = next((q for q in "'\"`" if q not in text), "'")
    body = "".join(_ESCAPES.get(ch, ch) for ch in text)
    return quote + (body.replace("'", "\\'") if quote == "'" else body) + quote


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    if value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    text = repr(value)  # shortest round-trip digits, like JS; only the exponent differs
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{'-' if exponent.startswith('-') else '+'}{int(exponent.lstrip('+-'))}"
    return text


def _format(value, indent: int) -> str:
    if value is None:
        return "null"
    if value is isolate.undefined:
        return "undefined"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, isolate.BigInt):
        return f"{int(value)}n"
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, isolate.JSFunction) or callable(value):
        name = getattr(value, "name", None) or getattr(value, "__name__", "")
        return f"[Function: {name}]" if name and name != "<lambda>" else "[Function (anonymous)]"
    if isinstance(value, (dict, isolate.Context, list, tuple)) and indent > 2 * _DEPTH:
        return "[Array]" if isinstance(value, (list, tuple)) else "[Object]"
    if isinstance(value, (dict, isolate.Context)):
        entries = [f"{k if _IDENTIFIER.match(k) else _quote(k)}: {_format(v, indent + 2)}"
                   for k, v in value.items()]
        return _container(entries, "{", "}", indent)
    if isinstance(value, (list, tuple)):
        return _container([_format(v, indent + 2) for v in value], "[", "]", indent)
    return repr(value)


def _container(entries: list[str], open_: str, close: str, indent: int) -> str:
    if not entries:
        return open_ + close
    # util.inspect's reduceToSingleString: one line if it fits the break length.
    start = len(entries) + indent + len(open_) + 10
    if start + sum(len(e) for e in entries) + len(entries) <= _BREAK_LENGTH \
            and not any("\n" in e for e in entries):
        return f"{open_} {', '.join(entries)} {close}"
    pad = "\n" + " " * indent
    return f"{open_}{pad}  " + f",{pad}  ".join(entries) + f"{pad}{close}"


def node_format(value) -> str:
    """``value`` as ``util.inspect`` shows it (a top-level string is shown bare, as by console.log)."""
    return value if isinstance(value, str) else _format(value, 0)


def log(*values) -> None:
    """``console.log``: the values formatted and separated by spaces."""
    print(" ".join(node_format(v) for v in values), flush=True)
