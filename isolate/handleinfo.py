"""What the host learns about a handle's value from its worker: for equality and for a repr.

A handle (``isolate.handles.JSHandle``) is an id in its context's table; two
handles of the same JS value have different ids. Each context gets, on first
need, a small helper function of its own that answers for the host whether two
values are the same, a stable number per value (for ``hash``), and a
function's source text (for ``<JSFunction add(a, b) in context 3>``).
"""

from __future__ import annotations

import re
import threading
from typing import TYPE_CHECKING, Any, Callable

from .errors import ProtocolViolationError
from .options import CompileOptions, RunOptions
from .scripts import ScriptSource

if TYPE_CHECKING:
    from .context import Context

__all__ = ["REPR_QUEUE_MS", "context_helper", "context_label", "parameters"]


# How long a repr waits for a busy worker before it shows less (ms).
REPR_QUEUE_MS = 50

# A function of each context's own, made on first need, that tells the host what only the
# worker knows about a value: op 0, a number that is the same for the same value (a WeakMap:
# values are not kept alive); op 1, a function's source text (its start), for a repr; op 2,
# whether two values are the same (`===`). It takes the context's intrinsics as they are
# when it is made.
_HELPER_SOURCE = """(function () {
  'use strict';
  const ids = new WeakMap(), get = WeakMap.prototype.get, set = WeakMap.prototype.set;
  const apply = Reflect.apply, toSource = Function.prototype.toString;
  let last = 0;
  return function isolateHandleHelper(op, value, other) {
    if (op === 2) return value === other;
    if (op === 0) {
      let id = apply(get, ids, [value]);
      if (id === undefined) { id = ++last; apply(set, ids, [value, id]); }
      return id;
    }
    try { return ('' + apply(toSource, value, [])).slice(0, 2000); } catch (e) { return null; }
  };
})()"""
_helper_lock = threading.Lock()


def context_helper(context: "Context", queue_timeout_ms: float | None = None) -> Callable[..., Any]:
    """The context's helper (see _HELPER_SOURCE) as a Python callable, bounded like a property access."""
    timeout_ms = int(context._pool.limits.access_timeout_s * 1000)
    with _helper_lock:
        helper = context.__dict__.get("_handle_helper")
    if helper is None:
        source = ScriptSource(_HELPER_SOURCE, "isolate:handles", 0, 0)
        made = context._run(source, CompileOptions(filename="isolate:handles"),
                            RunOptions(timeout=timeout_ms, queue_timeout=queue_timeout_ms))
        if not callable(made):   # a JSFunction
            raise ProtocolViolationError("the handle helper is not a function")
        with _helper_lock:
            helper = context.__dict__.setdefault("_handle_helper", made)

    def ask(op: int, *values: Any) -> Any:
        return helper(op, *values, timeout=timeout_ms, queue_timeout=queue_timeout_ms)
    return ask


def context_label(context: "Context") -> str:
    """How a repr names a context: ``context 3`` for the default names, else ``context 'name'``."""
    name = context.name
    if name.startswith("VM Context ") and name[11:].isdigit():
        return f"context {name[11:]}"
    return f"context {name!r}"


def parameters(source: str) -> str | None:
    """A function's parameter list from its source text: ``a, b`` (None for a class or no list)."""
    text = source.lstrip()
    if text.startswith("class") and not text[5:6].isalnum():
        return None
    arrow = re.match(r"(?:async\s+)?([A-Za-z_$][\w$]*)\s*=>", text)
    if arrow:
        return arrow.group(1)
    start = text.find("(")
    if start < 0:
        return None
    depth = 0
    for end in range(start, len(text)):
        char = text[end]
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth == 0:
                return " ".join(text[start + 1:end].split())
    return None
