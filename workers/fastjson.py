"""Plain JSON text between the wire and the bridge, unparsed (issue 14).

A large plain value crosses as JSON text from end to end (``protocol.plainjson``):

- into the engine, the value of a ``set`` arrives as a :class:`JSONText`;
  :func:`to_tagged` (workers/tagged.py) passes it as ``[JSONText, False]`` and
  :func:`request_text` splices its bytes into the request the bridge parses
  (``JSON.parse``, which makes own data properties: no setter of the script's
  runs, and ``"__proto__"`` stays a key, exactly as for any untagged value);
- out of the engine, :func:`raw_reply` takes the value's text out of the reply
  text ``JSON.stringify`` wrote (the bridge's output: objects without
  prototypes, so no toJSON or getter of the script's ran there), when the reply
  says it is plain (``"t": false``) and it is large enough to be worth it; the
  worker sends it on as one ext payload and the host parses it once.
"""

from __future__ import annotations

import json
from typing import Any

from ..protocol.values import JSONText

__all__ = ["request_text", "value_text", "raw_reply", "RAW_REPLY_MIN_BYTES"]

# Replies at least this long carry their value unparsed: below it, parsing here
# and packing again costs less than the ext's own overhead on the host.
RAW_REPLY_MIN_BYTES = 32 * 1024

# The bridge's reply to an op that succeeded with an untagged value and no mirror
# is exactly {"ok":true,"v":VALUE,"t":false} (encodeReply in bridge.js builds it in
# that key order; JSON.stringify writes no spaces). A mirror adds "g" and "gt"
# after "t", so such a reply never ends like this; a failure starts otherwise.
_OK_HEAD = b'{"ok":true,"v":'
_PLAIN_TAIL = b',"t":false}'


class _Splice(Exception):
    """Raised by the encoder's ``default`` hook: the request holds JSON text to splice."""


def _no_default(obj: Any) -> Any:
    if type(obj) is JSONText:
        raise _Splice
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_dumps = json.JSONEncoder(allow_nan=False, default=_no_default).encode


def request_text(request: tuple | list) -> bytes:
    """The request as UTF-8 JSON text, with any ``[JSONText, tagged]`` item spliced in.

    The common request holds no JSONText and costs one ``json.dumps`` as before
    (the ``default`` hook is only asked about types JSON does not know).
    """
    try:
        return _dumps(request).encode("utf-8", "surrogatepass")
    except _Splice:
        pass
    parts = []
    for item in request:
        if type(item) is list and len(item) == 2 and type(item[0]) is JSONText:
            parts.append(b"[" + item[0].data + (b",true]" if item[1] else b",false]"))
        else:
            parts.append(_dumps(item).encode("utf-8", "surrogatepass"))
    return b"[" + b",".join(parts) + b"]"


def value_text(value: Any) -> bytes | None:
    """One untagged value as UTF-8 JSON text, as :func:`request_text` would write it
    in a request; None when it holds JSON text to splice (the request path does that)."""
    try:
        return _dumps(value).encode("utf-8", "surrogatepass")
    except _Splice:
        return None


def raw_reply(raw: bytes) -> dict | None:
    """``{"ok": True, "v": JSONText, "t": False}`` for a large plain reply's text, else None."""
    if len(raw) < RAW_REPLY_MIN_BYTES or not raw.startswith(_OK_HEAD) or not raw.endswith(_PLAIN_TAIL):
        return None
    return {"ok": True, "v": JSONText(raw[len(_OK_HEAD):-len(_PLAIN_TAIL)]), "t": False}
