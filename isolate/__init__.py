"""isolate: Node's ``vm`` module for Python, every script in a supervised worker process.

The stack, top to bottom::

    api      Script, create_context, run_in_*, compile_function   (node:vm's surface)
    modules  Module, SourceTextModule, SyntheticModule           (node:vm's module API)
    context  Context, JSFunction, JSObject, JSPromise            (proxies of worker-side values)
    pool     Pool, WorkerHandle                                   (processes, calls, nested calls)
    protocol (package)                                            (msgpack-RPC over pipes)

Quick start::

    >>> import isolate
    >>> sandbox = {"animal": "cat", "count": 2}
    >>> isolate.run_in_new_context("count += 1; name = 'kitty'", sandbox)
    'kitty'
    >>> sandbox
    {'animal': 'cat', 'count': 3, 'name': 'kitty'}
"""

from protocol.values import (
    BigInt, JSAccessor, JSDate, JSMap, JSRegExp, JSSet, JSSymbol, JSTypedArray, Unhashable, UndefinedType,
    undefined,
)

from .api import (
    Script, compile_function, create_context, default_pool, is_context, run_in_context,
    run_in_new_context, run_in_this_context,
)
from .context import Context, JSFunction, JSHandle, JSObject, JSPromise
from .errors import (
    ContextLostError, InvalidArgTypeError, InvalidArgValueError, IsolateError, JSAggregateError,
    JSError, JSEvalError, JSInternalError, JSMemoryError, JSRangeError, JSReferenceError,
    JSSyntaxError, JSTypeError, JSURIError, NestingTooDeepError, OutOfRangeError, PoolClosedError,
    PromisePendingError, ProtocolViolationError, ScriptInterruptedError, ScriptTimeoutError,
    UnencodableValueError, UnsupportedError, WorkerCrashedError, WorkerMemoryError,
)
from . import constants
from .futures import Future
from .modules import Module, ModuleNamespace, SourceTextModule, SyntheticModule, VMModuleError
from .pool import Limits, Pool


def measure_memory(mode: str = "summary", execution: str = "default", /, **options) -> Future:
    """``vm.measureMemory`` on the default pool: see :meth:`Pool.measure_memory`."""
    return default_pool().measure_memory(mode, execution, **options)

__all__ = [
    "Script", "compile_function", "create_context", "default_pool", "is_context", "run_in_context",
    "run_in_new_context", "run_in_this_context",
    "Pool", "Limits", "Context", "JSFunction", "JSHandle", "JSObject", "JSPromise",
    "BigInt", "JSAccessor", "JSDate", "JSMap", "JSRegExp", "JSSet", "JSSymbol", "JSTypedArray", "Unhashable",
    "UndefinedType", "undefined",
    "IsolateError", "JSError", "JSEvalError", "JSRangeError", "JSReferenceError", "JSSyntaxError",
    "JSTypeError", "JSURIError", "JSAggregateError", "JSInternalError", "JSMemoryError",
    "ScriptTimeoutError", "ScriptInterruptedError", "WorkerCrashedError", "ContextLostError",
    "ProtocolViolationError", "PoolClosedError", "InvalidArgTypeError", "InvalidArgValueError",
    "OutOfRangeError", "UnencodableValueError", "PromisePendingError", "NestingTooDeepError",
    "UnsupportedError", "WorkerMemoryError", "Future", "measure_memory", "constants",
    "Module", "SourceTextModule", "SyntheticModule", "ModuleNamespace", "VMModuleError",
]
