"""isolate: Node's ``vm`` module for Python, every script in a supervised worker process.

The host's stack, top to bottom (each imports only what is below it)::

    pool        Pool: the API as methods, routing, spares, recycling, memory
    batch       submit/map/run_batch records, the dispatcher threads
    api         Script, create_context, run_in_*, compile_function   (node:vm's surface)
    modules     Module, SourceTextModule, SyntheticModule            (node:vm's module API)
    context     Context                                              (proxies of worker-side contexts)
    handles     JSFunction, JSObject, JSPromise                      (proxies of worker-side values)
    scheduler   every call's lifecycle and deadlines
    supervisor  one worker process; hostcalls: Python functions called from JS
    zygote      the clean process that forks the workers
    protocol    (subpackage) msgpack-RPC messages and values, pure

The worker side is the subpackage ``isolate.workers`` (the engine, the bridge,
the RPC loop, the sandbox), which the host never imports.

Quick start::

    >>> import isolate
    >>> sandbox = {"animal": "cat", "count": 2}
    >>> isolate.run_in_new_context("count += 1; name = 'kitty'", sandbox)
    'kitty'
    >>> sandbox
    {'animal': 'cat', 'count': 3, 'name': 'kitty'}
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

# Where each public name lives. Loaded on first use (PEP 562), so that
# `import isolate.workers` in a worker process, and a bare `import isolate`,
# pay only for what they use.
_EXPORTS = {
    ".protocol.values": ("BigInt", "JSAccessor", "JSDate", "JSMap", "JSRegExp", "JSSet", "JSSymbol",
                         "JSTypedArray", "TypedKey", "Unhashable", "UndefinedType", "undefined"),
    ".api": ("Script", "compile_function", "create_context", "default_pool", "is_context", "run_in_context",
             "run_in_new_context", "run_in_this_context", "measure_memory", "arun_in_context",
             "arun_in_new_context", "arun_in_this_context"),
    ".context": ("Context",),
    ".handles": ("JSFunction", "JSHandle", "JSObject", "JSPromise"),
    ".errors": ("ContextLostError", "InvalidArgTypeError", "InvalidArgValueError", "IsolateError",
                "JSAggregateError", "JSError", "JSEvalError", "JSInternalError", "JSMemoryError", "JSRangeError",
                "JSReferenceError", "JSSyntaxError", "JSTypeError", "JSURIError", "NestingTooDeepError",
                "OutOfRangeError", "PoolClosedError", "PromisePendingError", "ProtocolViolationError",
                "ScriptInterruptedError", "ScriptTimeoutError", "UnencodableValueError", "UnsupportedError",
                "EngineUnavailableError",
                "WorkerCrashedError", "WorkerMemoryError", "WorkerStartError"),
    ".futures": ("Future", "AsyncFuture"),
    ".modules": ("Module", "ModuleNamespace", "SourceTextModule", "SyntheticModule", "VMModuleError"),
    ".pool": ("Limits", "Pool"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
_SUBMODULES = frozenset(("api", "batch", "cli", "constants", "context", "defaults", "handles", "errors", "futures",
                         "handleinfo", "hostcalls", "modules", "optiontypes", "options", "pool", "scheduler",
                         "scripts", "supervisor", "zygote", "protocol", "workers"))

__all__ = [*_WHERE, "constants", "__version__"]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is not None:
        if module != ".pool":
            importlib.import_module(".pool", __name__)  # the pool registers itself as the default's class
        value = getattr(importlib.import_module(module, __name__), name)
        globals()[name] = value
        return value
    if name in _SUBMODULES:
        return importlib.import_module("." + name, __name__)
    raise AttributeError(f"module 'isolate' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | _SUBMODULES)


if TYPE_CHECKING:  # what type checkers and IDEs see
    from . import constants
    from .api import (
        Script, arun_in_context, arun_in_new_context, arun_in_this_context, compile_function, create_context,
        default_pool, is_context, measure_memory, run_in_context, run_in_new_context, run_in_this_context,
    )
    from .context import Context
    from .handles import JSFunction, JSHandle, JSObject, JSPromise
    from .errors import (
        ContextLostError, InvalidArgTypeError, InvalidArgValueError, IsolateError, JSAggregateError, JSError,
        JSEvalError, JSInternalError, JSMemoryError, JSRangeError, JSReferenceError, JSSyntaxError, JSTypeError,
        JSURIError, NestingTooDeepError, OutOfRangeError, PoolClosedError, PromisePendingError,
        ProtocolViolationError, ScriptInterruptedError, ScriptTimeoutError, UnencodableValueError,
        UnsupportedError, EngineUnavailableError, WorkerCrashedError, WorkerMemoryError, WorkerStartError,
    )
    from .futures import AsyncFuture, Future
    from .modules import Module, ModuleNamespace, SourceTextModule, SyntheticModule, VMModuleError
    from .pool import Limits, Pool
    from .protocol.values import (
        BigInt, JSAccessor, JSDate, JSMap, JSRegExp, JSSet, JSSymbol, JSTypedArray, TypedKey, Unhashable, UndefinedType,
        undefined,
    )
