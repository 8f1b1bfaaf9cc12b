"""The engine seam: what the worker's RPC loop needs from a JavaScript engine.

A worker hosts one engine kind, chosen per pool (``Pool(engine=...)``) and named
in the zygote's config; :func:`engine_kind` gives its :class:`EngineKind`. The
worker (workers/worker.py) only ever talks to an engine through these two
shapes:

- :class:`EngineKind`: the process-wide side (make a context, whether an engine
  op is on the stack, whether a stop signal landed in a host call's tail, the
  syntax check of function bodies, what the engine supports);
- :class:`EngineContext`: one context with the JS bridge (workers/bridge.js)
  installed. Every operation on values (run, call, get/set globals, keys,
  handles, promise state) is a bridge op: ``op(name, *args)`` returns the
  bridge's reply ``{"ok", "v"|"e", "t", ...}`` in tagged JSON
  (workers/tagged.py), so values in and out are engine-neutral.

Implementations: QuickJS (workers/engine.py, the default) and V8
(workers/v8engine.py, the ``v8`` extra). Nothing here imports either: the V8
binding starts threads when imported, so it is loaded only in a worker, after
the zygote's fork (see :meth:`EngineKind.start`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

__all__ = ["EngineContext", "EngineKind", "engine_kind", "ENGINES", "HostCall"]

# A host function's reply: {"ok": bool, "v"/"e": tagged value}.
HostCall = Callable[[int, Any, bool], dict]
# Called with the BaseException (a stop) that landed inside a host call.
OnAbort = Callable[[BaseException], None]

# The engines a pool can ask for (isolate/optiontypes.py lists the same names).
ENGINES = ("quickjs", "v8")


class EngineContext(Protocol):
    """One JavaScript context with the bridge installed (single-threaded)."""

    usable: bool  # False once the context can run nothing more (the worker answers CONTEXT_UNUSABLE)

    def rebind(self, on_host_call: HostCall, on_abort: OnAbort | None = None) -> None:
        """Give a context made ahead of time the hooks of the context it becomes."""

    def op(self, *request: Any, drain: bool = True) -> dict:
        """Run one bridge op (``run``, ``call``, ``get``, ``set_globals``...); its reply.
        Raises the engine's EngineError when the bridge could not answer; stops
        (BaseExceptions raised by the worker's signal handlers) propagate unchanged."""

    def compile_script(self, source: str, filename: str, line_offset: int = 0, column_offset: int = 0,
                       display_errors: bool = True) -> tuple[Any, dict | None]:
        """``(compiled, None)`` or ``(None, reply with the SyntaxError)``. Only for
        kinds with ``native_scripts``; ``compiled`` is bytes (kept in the worker's cache)."""

    def run_compiled(self, compiled: Any, mirror: bool) -> dict:
        """Run what compile_script made, as global code; the reply of the bridge's ``finish``."""

    def memory_usage(self, raw: bool = False) -> dict[str, int] | None:
        """Figures with at least ``memory_used_size``, ``malloc_size``, ``malloc_limit``."""

    def set_memory_limit(self, nbytes: int) -> bool:
        """Cap the context's memory; raises EngineError when it cannot be enforced."""

    def run_gc(self) -> bool:
        """Collect garbage now; False when the engine cannot be asked to."""

    def close(self) -> None:
        """Release what the context holds (the worker drops it after)."""


@dataclass(frozen=True)
class EngineKind:
    """One engine as the worker sees it. The callables are plain functions, so the
    worker binds them once and its hot path pays no indirection."""

    name: str                                   # "quickjs", "v8": the pool's option value
    description: str                            # the hello reply's "engine" text
    new_context: Callable[..., EngineContext]   # (on_host_call, on_abort=None) -> EngineContext
    running: Callable[[], bool]                 # an engine op is on the stack: a stop has a script to stop
    in_abort_tail: Callable[[Any], bool]        # a stop handler landed in an aborted host call's tail
    function_body_compiles: Callable[[str, "list | None"], bool]
    error_type: type                            # the EngineError the contexts raise
    native_scripts: bool                        # compile_script/run_compiled (real file names, compile once)
    cached_data: bool                           # compiled code can leave and re-enter the worker
    modules: bool                               # ES modules (workers/modules.py)
    start: Callable[[], None] = lambda: None    # in the worker, after the fork, before confinement
    # Engines without native_scripts: (code, filename) -> the bridge's reply to a script's
    # syntax check (ok, or its SyntaxError), none of the code run.
    check_script: Callable[[str, str], dict] | None = None
    notes: dict = field(default_factory=dict)   # facts for the hello reply


def engine_kind(name: str) -> EngineKind:
    """The engine called ``name`` (one of :data:`ENGINES`); imports its module."""
    if name == "quickjs":
        from . import engine as quickjs

        return EngineKind(
            name="quickjs", description=quickjs.ENGINE_NAME, new_context=quickjs.EngineContext,
            running=quickjs.engine_running, in_abort_tail=quickjs.in_abort_tail,
            function_body_compiles=quickjs.function_body_compiles, error_type=quickjs.EngineError,
            native_scripts=True, cached_data=True, modules=True)
    if name == "v8":
        from . import v8engine

        return v8engine.KIND
    raise ValueError(f"unknown engine {name!r}: expected one of {', '.join(ENGINES)}")
