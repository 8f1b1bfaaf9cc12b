"""Plain values as JSON text: the fast path for large values (issue 14). Pure.

A value made only of ``dict`` (str keys), ``list``, ``tuple``, ``str``, ``int``
within ±(2^53−1), finite ``float``, ``bool`` and ``None``, with no container met
twice (no shared reference, no cycle), crosses to JavaScript exactly as JSON
says: the bridge has always handed such values to the script as ``JSON.parse``
made them. For those, the host writes the JSON text once (the C encoder), the
wire carries it as one ext payload, the worker splices it into its request to
the bridge unparsed, and the engine's ``JSON.parse`` builds the value: no
Python walk on either side, and no msgpack <-> tagged JSON round in the worker.

:func:`plain_json` decides with C-speed passes only: one level of the value at
a time, ``gc.get_referents`` lists the items of every container of the level,
and ``map``/``set``/``compress`` check their types and identities. Anything
else (a subclass, a NaN, a big int, a shared list, a key that is not a str, a
stand-in, a depth past the limit) returns None, and the caller takes the
general path, which gives it its meaning or its error.

The other way, :func:`loads` parses the engine's own JSON text on the host.
"""

from __future__ import annotations

import gc
import json
import math
from itertools import chain, compress, repeat
from operator import is_
from typing import Any

try:  # a faster C encoder/decoder when installed; the standard library's otherwise
    import orjson as _orjson
except ImportError:  # pragma: no cover - depends on the environment
    _orjson = None

__all__ = ["plain_json", "loads", "MAX_SAFE_INTEGER"]

MAX_SAFE_INTEGER = 2**53 - 1
_CONTAINERS = frozenset({dict, list, tuple})
_ALLOWED = frozenset({dict, list, tuple, str, int, float, bool, type(None)})
_STR_ONLY = frozenset({str})
_dumps = json.JSONEncoder(ensure_ascii=True, allow_nan=False, check_circular=False,
                          separators=(",", ":")).encode


def plain_json(root: Any, max_depth: int, stand_ins: dict | None = None) -> bytes | None:
    """JSON text (UTF-8) of ``root`` if it is a plain value as above, else None.

    ``max_depth``: containers may nest this many levels (the root is level 1), as
    ``codec.encode_value``'s ``max_depth``. ``stand_ins``: ids of objects that
    encode as something else (see ``encode_value``); meeting one returns None.
    """
    if type(root) not in _CONTAINERS:
        return None
    if _orjson is not None:
        # orjson checks the keys itself (it refuses any but str) and, with
        # OPT_STRICT_INTEGER, that ints are within ±(2^53 - 1); it also refuses lone
        # surrogates and nesting past 254 levels: those go the standard way below.
        if not _is_plain(root, max_depth, stand_ins, False):
            return None
        try:
            return _orjson.dumps(root, option=_orjson.OPT_STRICT_INTEGER)
        except TypeError:  # orjson.JSONEncodeError
            pass
    if not _is_plain(root, max_depth, stand_ins, True):
        return None
    return _dumps(root).encode("ascii")


def _is_plain(root: Any, max_depth: int, stand_ins: dict | None, exact: bool) -> bool:
    """The checks of plain_json that its encoder does not make: with ``exact`` false,
    the keys' types and the ints' range are left to orjson."""
    level: list = [root]
    seen: set[int] = set()
    depth = 0
    while level:
        depth += 1
        if depth > max_depth:
            return False
        before = len(seen)
        seen.update(map(id, level))
        if len(seen) != before + len(level):
            return False  # a container met twice: shared or cyclic
        if exact:
            dicts = compress(level, map(is_, map(type, level), repeat(dict)))
            if not _STR_ONLY.issuperset(map(type, chain.from_iterable(dicts))):
                return False  # a key that is not exactly a str
        # A dict's referents are its keys and its values, a list's or tuple's its items.
        items = gc.get_referents(*level)
        item_types = list(map(type, items))
        kinds = set(item_types)
        if not _ALLOWED.issuperset(kinds):
            return False
        if exact and int in kinds:
            ints = list(compress(items, map(is_, item_types, repeat(int))))
            if min(ints) < -MAX_SAFE_INTEGER or max(ints) > MAX_SAFE_INTEGER:
                return False
        if float in kinds:
            floats = list(compress(items, map(is_, item_types, repeat(float))))
            # A NaN or an infinity makes the sum NaN or infinite; finite floats can too
            # (by overflowing), and only then are they checked one by one.
            if not math.isfinite(sum(floats)) and not all(map(math.isfinite, floats)):
                return False
        level = list(compress(items, map(_CONTAINERS.__contains__, item_types)))
    return not (stand_ins and not seen.isdisjoint(stand_ins))


def loads(data: bytes) -> Any:
    """The value of JSON text the engine wrote (JSON.stringify's output)."""
    if _orjson is not None:
        try:
            return _orjson.loads(data)
        except ValueError:
            pass  # lone surrogates (\\udXXX escapes) orjson refuses: the standard decoder keeps them
    return json.loads(data.decode("utf-8", "surrogatepass"))
