"""ES modules: ``Module``, ``SourceTextModule``, ``SyntheticModule`` (node:vm's module API).

A module lives in its context's worker (``workers/modules.py``); a :class:`Module` is its
proxy, like a :class:`~isolate.Context`: it holds the context, and the worker drops its
record when the proxy is garbage-collected.

Linking follows Node's ``lib/internal/vm/module.js``: the linker is called for each request
of a module, recursively for the modules it returns that are still unlinked; every module of
the graph is checked (a Module, same context, not errored); then the worker instantiates the
whole graph at once.

``link()`` and ``evaluate()`` return what Node returns a Promise for, an
:class:`isolate.Future`. Called from a thread running an asyncio event loop, they start the
work and return at once (``await`` the future; coroutines the linker returns run on that
loop). Called anywhere else, they finish the work before returning, so the future is
already settled: ``m.link(linker)`` then ``m.evaluate()`` is a complete synchronous program,
and ``.result()`` gives the value or raises the error. Argument errors raise at the call,
as everywhere in isolate; status errors and failures settle the future, as in Node.

Dynamic ``import()`` (``import_module_dynamically``) and the default loader
(``constants.USE_MAIN_CONTEXT_DEFAULT_LOADER``) are at the end of this module.
"""

from __future__ import annotations

import inspect
import itertools
import json
import os
import re
import sys
import threading
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .constants import USE_MAIN_CONTEXT_DEFAULT_LOADER
from .context import Context, context_of
from .handles import JSObject, property_key
from .defaults import default_pool, is_pool
from .errors import (
    IsolateError, InvalidArgTypeError, InvalidArgValueError, JSError, JSReferenceError,
)
from .futures import Future
from .options import check_int, describe, normalize_options, plain, run_options
from .scripts import ScriptSource, make_cached_data, open_cached_data
from .threads import start_daemon

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .optiontypes import SourceTextModuleKwargs, SyntheticModuleKwargs

__all__ = ["Module", "SourceTextModule", "SyntheticModule", "ModuleNamespace", "VMModuleError"]

_INT32 = 2**31 - 1


class VMModuleError(IsolateError):
    """Node's ``ERR_VM_*`` module errors; ``.code`` says which (``ERR_VM_MODULE_STATUS``...)."""

    cause: Any = None   # ERR_VM_MODULE_LINK_FAILURE: the error of the module the link resolved to

    def __init__(self, code: str, message: str):
        super().__init__(message, code=code)


class _TypeModuleError(VMModuleError, TypeError):
    """The ones Node throws as TypeErrors."""


def _status_error(expectation: str) -> VMModuleError:
    return VMModuleError("ERR_VM_MODULE_STATUS", f"Module status {expectation}")


def _not_module() -> VMModuleError:
    return VMModuleError("ERR_VM_MODULE_NOT_MODULE", "Provided module is not an instance of Module")


def _invalid_type(name: str, expected: str, value: Any, prop: bool = True) -> InvalidArgTypeError:
    kind = "property" if prop else "argument"
    return InvalidArgTypeError(f'The "{name}" {kind} must be {expected}. Received {describe(value)}')


# ---------------------------------------------------------------------------------------
# Running the work of link() and evaluate(): now, or on the caller's event loop
# ---------------------------------------------------------------------------------------

def _running_loop():
    """The asyncio loop running in this thread, if any (asyncio is not imported for nothing)."""
    if "asyncio" not in sys.modules:
        return None
    import asyncio

    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _serving() -> bool:
    """Whether this thread is serving a call from JavaScript (a host function). Requests it
    makes to a worker are then nested in that call, and must come from this thread."""
    from .hostcalls import serving_snapshot

    return bool(serving_snapshot())


def _in_helper_thread(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on a new thread and wait for it. The thread inherits this thread's nested
    calls (it acts for this thread, which only waits), so its requests nest as this one's."""
    from .hostcalls import adopt_serving, serving_snapshot

    inherited = serving_snapshot()
    outcome: dict = {}

    def target():
        adopt_serving(inherited)
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # handed to the waiting thread
            outcome["error"] = exc

    thread = start_daemon(target, name="isolate-module-helper")
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _settle(value: Any) -> Any:
    """``value``, or what it resolves to when it is awaitable (a coroutine, a future...).

    Used for what user callbacks return. Runs the awaitable on a private event loop, in this
    thread when none runs here, else in a helper thread (this thread's loop is busy: it is
    the one waiting for us)."""
    if not inspect.isawaitable(value):
        return value
    import asyncio

    async def wait():
        return await value

    if _running_loop() is None:
        loop = asyncio.new_event_loop()
        try:
            return loop.run_until_complete(wait())
        finally:
            loop.close()
    return _in_helper_thread(lambda: asyncio.run(wait()))


_NEEDS_LOOP = object()  # yielded by the link coroutine when it must await in an event loop


class _UserAwait:
    """Await what a user callback returned. Outside an event loop (link() driven by hand),
    first ask the driver for one (see _start): user coroutines expect a running loop."""

    def __init__(self, awaitable):
        self._awaitable = awaitable

    def __await__(self):
        if _running_loop() is None:
            yield _NEEDS_LOOP
        return (yield from self._awaitable.__await__())


class _Resume:
    """Await a coroutine that has already started and is suspended on ``first``
    (``yield from`` for a coroutine a loop did not start)."""

    def __init__(self, coro, first):
        self._coro, self._first = coro, first

    def __await__(self):
        yielded = self._first
        while True:
            if yielded is _NEEDS_LOOP:  # now running in a loop: go on
                try:
                    yielded = self._coro.send(None)
                except StopIteration as stop:
                    return stop.value
                continue
            try:
                sent = yield yielded
            except GeneratorExit:
                self._coro.close()
                raise
            except BaseException as exc:  # thrown in by the loop (cancellation): forward it
                try:
                    yielded = self._coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
                continue
            try:
                yielded = self._coro.send(sent)
            except StopIteration as stop:
                return stop.value


def _start(coro) -> Future:
    """The one shape of link() and evaluate(): an isolate.Future (see the module docstring).

    With no event loop running here, the work runs now; if it has to wait (an async linker
    awaiting something), it goes on in a thread with an event loop of its own and the
    future settles when it ends, as Node's promise would (the module is "linking" meanwhile).
    Nested in a call from JavaScript, it is finished before returning instead."""
    future: Future[Any] = Future()
    # The first step runs now, in every case, as an async function's body runs until its
    # first await: the status checks and the linker calls happen during the call.
    try:
        first = coro.send(None)
    except StopIteration as stop:
        future.set_result(stop.value)
        return future
    except Exception as exc:  # the outcome, delivered through the future as Node rejects
        future.set_exception(exc)
        return future
    rest = _Resume(coro, first)
    loop = _running_loop()
    if loop is not None:
        async def go_on():
            return await rest

        task = loop.create_task(go_on())

        def done(t):
            if t.cancelled():
                future.cancel()
            elif t.exception() is not None:
                future.set_exception(t.exception())
            else:
                future.set_result(t.result())

        task.add_done_callback(done)
        return future

    def finish():
        try:
            future.set_result(_settle(rest))
        except Exception as exc:
            future.set_exception(exc)

    if _serving():
        finish()
    else:
        start_daemon(finish, name="isolate-module-link")
    return future


async def _gather(coros: list) -> list:
    """All of ``coros`` at once, on an event loop; the results in order, or the first error."""
    import asyncio

    await _UserAwait(_Nothing())  # outside a loop: ask for one
    outcomes = await asyncio.gather(*coros, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome
    return outcomes


class _Nothing:
    def __await__(self):
        return None
        yield  # a generator that yields nothing


async def _blocking(fn: Callable[[], Any]) -> Any:
    """A call that waits for a worker, from link's coroutine: off the event loop when one
    runs here, except for calls nested in a host call (they must come from this thread)."""
    loop = _running_loop()
    if loop is None or _serving():
        return fn()
    return await loop.run_in_executor(None, fn)


# ---------------------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------------------

class Module:
    """``vm.Module``: what SourceTextModule and SyntheticModule share. Not constructible."""

    def __init__(self, *args, **kwargs):
        raise TypeError("Module is not a constructor")

    # -- construction (shared) ---------------------------------------------------------
    def _setup(self, context: Any, pool: Any, identifier: Any) -> None:
        if pool is not None and not is_pool(pool):
            raise InvalidArgTypeError(f'The "pool" argument must be an isolate.Pool. Received {describe(pool)}')
        if context is None:
            ctx = (pool or default_pool()).main_context
        else:
            ctx = context_of(context)
            if ctx is None:
                if not isinstance(context, (dict, Context)) and not hasattr(context, "__dict__"):
                    raise _invalid_type("context", "of type object", context, prop=False)
                raise _invalid_type("options.context", "an vm.Context", context)
            if pool is not None and ctx._pool is not pool:
                raise InvalidArgValueError("The property 'options.context' belongs to another pool than "
                                           f"the \"pool\" argument. Received {describe(context)}")
        if identifier is not None and not isinstance(identifier, str):
            raise _invalid_type("options.identifier", "of type string", identifier)
        if identifier is None:
            counter = ctx.__dict__.get("_module_numbers")
            if counter is None:
                counter = ctx.__dict__.setdefault("_module_numbers", itertools.count())
            identifier = f"vm:module({next(counter)})"
        self._context = ctx
        self._context_given = context
        self._identifier = identifier
        self._id = 0
        self._error: Any = _NO_ERROR       # a link failure (Node's #error), or the evaluation error
        self._status_override: str | None = None
        self._resolution: list[Module] | None = None
        self._namespace = None
        self._lock = threading.Lock()

    def _registered(self, module_id: int) -> None:
        self._id = module_id
        self._worker = self._context._worker
        weakref.finalize(self, self._worker.queue_release, "module_release", [self._context._id, [module_id]])

    def _request(self, method: str, *params: Any, timeout_ms: int | None = None) -> Any:
        return self._context._request(method, *params, timeout_ms=timeout_ms)

    # -- properties --------------------------------------------------------------------
    @property
    def identifier(self) -> str:
        """The identifier given at construction, or ``vm:module(i)``. Stack traces name it."""
        return self._identifier

    @property
    def context(self) -> Any:
        """The ``context`` given at construction (None: the pool's main context)."""
        return self._context_given

    @property
    def dependency_specifiers(self) -> tuple:
        """The specifiers of the module's static imports, in source order (Node's
        ``dependencySpecifiers``)."""
        return ()

    @property
    def status(self) -> str:
        """``"unlinked"``, ``"linking"``, ``"linked"``, ``"evaluating"``, ``"evaluated"`` or
        ``"errored"``: read from the engine each time."""
        if self._error is not _NO_ERROR and self._error_is_link_error:
            return "errored"
        if self._status_override is not None:
            return self._status_override
        return self._request("module_status", [self._id])[0]

    _error_is_link_error = False

    @property
    def error(self) -> Any:
        """What the module's evaluation threw (an error is a JSError; ``throw 5`` gives 5),
        or what failed its linking. ``ERR_VM_MODULE_STATUS`` unless the status is errored."""
        if self._error is not _NO_ERROR and self._error_is_link_error:
            return self._error
        if self.status != "errored":
            raise _status_error("must be errored")
        if self._error is _NO_ERROR:
            thrown = self._request("module_error", self._id)
            with self._lock:
                if self._error is _NO_ERROR:
                    self._error = thrown
        return self._error

    @property
    def namespace(self) -> "ModuleNamespace":
        """A proxy of the module namespace object (available once linked): ``ns["x"]``,
        ``ns.x``, ``list(ns)``. Reading a binding before its module ran raises the JS
        ReferenceError, as in Node."""
        if self.status in ("unlinked", "linking"):
            raise _status_error("must not be unlinked or linking")
        namespace: ModuleNamespace | None = self._namespace
        if namespace is None:
            handle, keys = self._request("module_namespace", self._id)
            handle.__class__ = ModuleNamespace
            handle._module = self
            handle._keys = tuple(keys)
            self._namespace = namespace = handle
        return namespace

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._identifier!r}>"

    # -- link ---------------------------------------------------------------------------
    def link(self, linker: Callable) -> Future:
        """``module.link(linker)``: resolve every import, recursively, then instantiate.

        ``linker(specifier, referencing_module, extra)`` returns a Module (or an awaitable
        of one) for each request; ``extra["attributes"]`` holds its import attributes (and
        ``extra["assert"]`` the same, as in Node). Returns an :class:`isolate.Future`.
        """
        if not callable(linker):
            raise _invalid_type("linker", "of type function", linker, prop=False)
        return _start(self._link_and_instantiate(linker))

    async def _link_and_instantiate(self, linker: Callable) -> None:
        status = self.status
        if status == "linked":
            raise VMModuleError("ERR_VM_MODULE_ALREADY_LINKED", "Module has already been linked")
        if status != "unlinked":
            raise _status_error("must be unlinked")
        await self._link(linker, {id(self)})
        await _blocking(self._instantiate)

    async def _link(self, linker: Callable, session: set) -> None:
        """Node's ``[kLink]``: overridden by SourceTextModule (a synthetic module has nothing
        to resolve). ``session``: the modules this link() has started linking."""

    def _instantiate(self) -> None:
        """Send the graph: every module reachable from this one that is not linked yet, with
        the modules its linker chose. The worker links them all, or none (a link error)."""
        graph: list = []
        seen: set = set()
        stack = [self]
        statuses: dict = {}
        while stack:
            module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            if module is not self and statuses.setdefault(id(module), module.status) != "unlinked":
                continue
            targets = module._resolution or []
            graph.append([module._id, [t._id for t in targets]])
            stack.extend(reversed(targets))
        self._request("module_link", self._id, graph)
        for module in _walk(self):
            module._on_linked()

    def _on_linked(self) -> None:
        """Called once the module is linked (SourceTextModule: import.meta)."""

    # -- evaluate ---------------------------------------------------------------------------
    def evaluate(self, options: Any = None, /, *, timeout: int | None = None, break_on_sigint: bool = False) -> Future:
        """``module.evaluate()``: run the module (and what it imports, not run yet).

        ``timeout`` (ms) and ``break_on_sigint`` as for scripts, with the same kill ladder.
        The future settles with None, or with the error the module threw (evaluating an
        errored module again gives the same error). Returns an :class:`isolate.Future`.
        """
        if options is not None and not isinstance(options, dict):
            raise _invalid_type("options", "of type object", options, prop=False)
        given = {"timeout": timeout} if timeout is not None else {}
        if break_on_sigint is not False:
            given["break_on_sigint"] = break_on_sigint
        opts = normalize_options(options, given)
        timeout = opts.pop("timeout", None)
        break_on_sigint = opts.pop("break_on_sigint", False)
        if opts:
            key = next(iter(opts))
            raise InvalidArgValueError(f"The property 'options.{key}' is not a known option of evaluate(). "
                                       f"Received {describe(opts[key])}")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float))):
            raise _invalid_type("options.timeout", "of type number", timeout)
        if not isinstance(break_on_sigint, bool):
            raise _invalid_type("options.breakOnSigint", "of type boolean", break_on_sigint)
        run_opts = run_options({"timeout": timeout, "break_on_sigint": break_on_sigint})
        future: Future[None] = Future()
        loop = _running_loop()
        if loop is not None and not _serving():
            self._context._pool._dispatcher.submit(lambda: self._evaluate_into(future, run_opts))
        else:
            self._evaluate_into(future, run_opts)
        return future

    def _evaluate_into(self, future: Future, run_opts) -> None:
        try:
            settled = self._evaluate_now(run_opts)
        except Exception as exc:  # settles the future, as Node rejects
            future.set_exception(exc)
            return
        if settled:
            future.set_result(None)
            return
        # Its top-level await waits for something only later code in the context can do:
        # the future settles when the module's evaluation does (the worker calls back).
        with self._lock:
            if self._settled_outcome is None:
                self._pending_evaluations.append(future)
                return
        self._settle_pending()

    _settled_outcome: "tuple[bool, Any] | None" = None

    def _settle_hook(self):
        """The host function the worker calls when a pending evaluation settles."""
        hook = self.__dict__.get("_on_settle")
        if hook is None:
            self._pending_evaluations: list[Future] = []
            weak = weakref.ref(self)

            def settled(ok, error=None):
                module = weak()
                if module is not None:
                    with module._lock:
                        module._settled_outcome = (ok, error)
                    module._settle_pending()

            settled.__name__ = "settled"
            hook = self.__dict__["_on_settle"] = self._context._encode(settled)
        return hook

    def _settle_pending(self) -> None:
        with self._lock:
            pending, self._pending_evaluations = self._pending_evaluations, []
            assert self._settled_outcome is not None  # set before the worker's call back
            ok, error = self._settled_outcome
            if not ok and self._error is _NO_ERROR:
                self._error = error.value if isinstance(error, JSError) else error
        for future in pending:
            if ok:
                future.set_result(None)
            else:
                future.set_exception(_as_exception(self._error))

    def _evaluate_now(self, run_opts) -> bool:
        """Evaluate; True once settled, False while its top-level await still waits."""
        from .handles import relay_sigint

        status = self.status
        if self._error_is_link_error:  # the engine's module never got linked
            status = self._request("module_status", [self._id])[0]
        if status not in ("linked", "evaluated", "errored"):
            raise _status_error("must be one of linked, evaluated, or errored")
        if status == "errored" and self._error is not _NO_ERROR:
            raise _as_exception(self._error)
        options: dict = {"mirror": self._context._object is not None, "on_settle": self._settle_hook()}
        if run_opts.timeout is not None:
            options["timeout"] = run_opts.timeout
        if run_opts.break_on_sigint:
            options["break_on_sigint"] = True
        try:
            if run_opts.break_on_sigint:
                with relay_sigint(self._context._worker):
                    settled, globals_ = self._request("module_evaluate", self._id, options,
                                                      timeout_ms=run_opts.timeout)
            else:
                settled, globals_ = self._request("module_evaluate", self._id, options, timeout_ms=run_opts.timeout)
        except JSError as exc:
            self._context._apply_mirror(getattr(exc, "_mirror", None))
            with self._lock:
                if self._error is _NO_ERROR:
                    self._error = exc.value
            raise _as_exception(self._error) from None
        self._context._apply_mirror(globals_)
        return bool(settled)


_NO_ERROR = object()


def _as_exception(thrown: Any) -> BaseException:
    """The exception for a thrown JS value (the JSError itself for an Error)."""
    if isinstance(thrown, BaseException):
        return thrown
    from .errors import thrown_error

    return thrown_error(thrown)


def _walk(root: Module):
    seen: set = set()
    stack = [root]
    while stack:
        module = stack.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        yield module
        stack.extend(module._resolution or [])


class ModuleNamespace(JSObject):
    """The namespace object of a module, by reference (``module.namespace``).

    Items are the module's exports: ``ns["x"]`` (or ``ns.x``), ``"x" in ns``, ``list(ns)``.
    The bindings are live. It is read-only, as in JS (assigning raises the JS TypeError).
    """

    _module: Module
    _keys: tuple

    def __getitem__(self, key: str) -> Any:
        if key not in self._keys:
            raise KeyError(key)
        return self._context._access("get", self._ref.handle_id, property_key(key))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") and name not in self.__dict__.get("_keys", ()):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __iter__(self):
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def keys(self) -> list[str]:
        return list(self._keys)

    @property
    def module(self) -> Module:
        return self._module

    def __repr__(self) -> str:
        return f"<ModuleNamespace of {self._module!r}: {', '.join(self._keys)}>"


def _module_of(value: Any) -> Module | None:
    if isinstance(value, Module):
        return value
    if isinstance(value, ModuleNamespace):
        return value._module
    return None


class SourceTextModule(Module):
    """``vm.SourceTextModule``: a module from JavaScript source.

    ``SourceTextModule(code, *, identifier=None, context=None, line_offset=0,
    column_offset=0, cached_data=None, initialize_import_meta=None,
    import_module_dynamically=None, pool=None)``. A syntax error raises here
    (``JSSyntaxError``). ``context=None`` is the pool's main context (``pool``, or the
    default pool). Node's options dict (camelCase) is accepted in second position.
    """

    def __init__(self, code: str, options: Mapping[str, Any] | None = None, /, *, pool: Any = None,
                 **kwargs: Unpack[SourceTextModuleKwargs]) -> None:
        if not isinstance(code, str):
            raise _invalid_type("sourceText", "of type string", code, prop=False)
        code = plain(code)
        if options is not None and not isinstance(options, dict):
            raise _invalid_type("options", "of type object", options, prop=False)
        if isinstance(options, dict):
            options = dict(dict.items(options))  # a subclass's own methods never run
            if "initializeImportMeta" in options:
                options["initialize_import_meta"] = options.pop("initializeImportMeta")
        opts = normalize_options(options, dict(kwargs))
        loader_root = opts.pop("_loader_root", None)
        identifier = opts.pop("identifier", None)
        context = opts.pop("context", None)
        line_offset = _int32(opts.pop("line_offset", 0), "options.lineOffset")
        column_offset = _int32(opts.pop("column_offset", 0), "options.columnOffset")
        cached_data = opts.pop("cached_data", None)
        initialize_import_meta = opts.pop("initialize_import_meta", None)
        dynamic = opts.pop("import_module_dynamically", None)
        if opts:
            key = next(iter(opts))
            raise InvalidArgValueError(f"The property 'options.{key}' is not a known option of "
                                       f"SourceTextModule(). Received {describe(opts[key])}")
        if initialize_import_meta is not None and not callable(initialize_import_meta):
            raise _invalid_type("options.initializeImportMeta", "of type function", initialize_import_meta)
        check_import_module_dynamically(dynamic)
        if cached_data is not None and not isinstance(cached_data, (bytes, bytearray, memoryview)):
            raise _invalid_type("options.cachedData", "an instance of Buffer, TypedArray, or DataView",
                                cached_data)
        self._setup(context, pool, identifier)
        self.code = code
        self.line_offset = line_offset
        self.column_offset = column_offset
        self._initialize_import_meta = initialize_import_meta
        self._meta_initialized = False
        # Cached data does not depend on the identifier (as in Node); the bytecode does (it
        # names the module), so it carries the identifier it was compiled with.
        self._source = ScriptSource(code, "", line_offset, column_offset, kind="module")
        request: dict = {"identifier": self._identifier, "line_offset": line_offset, "column_offset": column_offset}
        if cached_data is not None:
            try:
                data = bytes(memoryview(cached_data))
            except ValueError:  # a released memoryview
                raise _invalid_type("options.cachedData", "an instance of Buffer, TypedArray, or DataView",
                                    cached_data) from None
            identifier, bytecode = _open_module_cached_data(self._source, data)
            if identifier == self._identifier:
                request["bytecode"] = bytecode
        if dynamic is not None:
            request["dynamic"] = _import_entry(self._context, dynamic, self, self._identifier, loader_root)
        module_id, specifiers, attributes = self._request("module_compile", code, request)[:3]
        self._specifiers = tuple(specifiers)
        self._attributes = tuple(dict(a) for a in attributes)
        self._registered(module_id)

    @property
    def dependency_specifiers(self) -> tuple:
        return self._specifiers

    async def _link(self, linker: Callable, session: set) -> None:
        # Node's [kLink]: the linker is called for every request first (an exception it
        # raises leaves the module "linking"), then each answer is awaited and checked.
        self._status_override = "linking"
        pending = []
        try:
            for specifier, attributes in zip(self._specifiers, self._attributes):
                extra = {"attributes": dict(attributes), "assert": dict(attributes)}
                pending.append(linker(specifier, self, extra))
        except BaseException:
            _close_all(pending)
            raise
        try:
            checks = [self._checked(spec, result, linker, session) for spec, result in zip(self._specifiers, pending)]
            if any(inspect.isawaitable(result) for result in pending):
                # As Node awaits its linker's promises together: each runs (and logs, and
                # links what it returns) whatever the others do; the first failure wins.
                modules = await _gather(checks)
            else:
                modules = [await check for check in checks]
            self._resolution = modules
        except BaseException as exc:
            _close_all(pending)
            self._error = exc
            self._error_is_link_error = True
            raise
        finally:
            self._status_override = None

    async def _checked(self, specifier: str, result: Any, linker: Callable, session: set) -> Module:
        if inspect.isawaitable(result):
            result = await _UserAwait(result)
        module = result
        if not isinstance(module, Module):
            raise _not_module()
        if module._context is not self._context:
            raise VMModuleError("ERR_VM_MODULE_DIFFERENT_CONTEXT", "Linked modules must use the same context")
        status = module.status
        if status == "errored":
            error = VMModuleError("ERR_VM_MODULE_LINK_FAILURE",
                                  f"request for '{specifier}' resolved to an errored module")
            error.cause = module.error
            raise error from _as_exception(error.cause)
        # Node links a module it finds unlinked. Its microtask order has every module's
        # linking started before any is seen again, so each is linked once per link():
        # the session gives the same outcome without that order.
        if status == "unlinked" and id(module) not in session:
            session.add(id(module))
            await module._link(linker, session)
        return module

    def _on_linked(self) -> None:
        # initializeImportMeta: once linked (QuickJS cannot call it lazily when the module
        # first reads import.meta), and only when its source mentions import.meta.
        if self._initialize_import_meta is None or self._meta_initialized:
            return
        self._meta_initialized = True
        if not _IMPORT_META.search(self.code):
            return
        meta, _keys = self._request("module_import_meta", self._id)
        self._initialize_import_meta(meta, self)

    def create_cached_data(self) -> bytes:
        """``sourceTextModule.createCachedData()``: bytes for ``cached_data=`` of a module
        with the same source and options (signed, see ``isolate.scripts``)."""
        if self.status in ("evaluating", "evaluated", "errored"):
            raise VMModuleError("ERR_VM_MODULE_CANNOT_CREATE_CACHED_DATA",
                                "Cached data cannot be created for a module which has been evaluated")
        if self._bytecode is None:
            reply = self._request("module_compile", self.code, {
                "identifier": self._identifier, "line_offset": self.line_offset,
                "column_offset": self.column_offset, "bytecode_out": True})
            self._worker.queue_release("module_release", [self._context._id, [reply[0]]])
            self._bytecode = reply[3]
        return make_cached_data(self._source, self._identifier.encode("utf-8", "surrogatepass") + b"\0" + self._bytecode)

    _bytecode: bytes | None = None


_IMPORT_META = re.compile(r"\bimport\s*\.\s*meta\b")


def _close_all(results: list) -> None:
    """Close the coroutines a linker returned that nobody will await."""
    for result in results:
        if inspect.iscoroutine(result):
            result.close()


def _int32(value: Any, name: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _invalid_type(name, "of type number", value)
    return check_int(value, name, -_INT32 - 1, _INT32)


def _open_module_cached_data(source: ScriptSource, data: bytes) -> tuple[str, bytes]:
    """``(identifier, bytecode)`` from ``data``, which must have been made here for exactly
    this module's source and offsets; anything else is ERR_VM_MODULE_CACHED_DATA_REJECTED,
    as in Node."""
    payload = open_cached_data(source, data)
    identifier, sep, bytecode = (payload or b"").partition(b"\0")
    if payload is None or not sep:
        raise VMModuleError("ERR_VM_MODULE_CACHED_DATA_REJECTED", "cachedData buffer was rejected")
    return identifier.decode("utf-8", "surrogatepass"), bytecode


class SyntheticModule(Module):
    """``vm.SyntheticModule``: a module whose exports the host sets.

    ``SyntheticModule(export_names, evaluate_callback, *, identifier=None, context=None,
    pool=None)``. ``evaluate_callback`` runs when the module is evaluated; it is called with
    the module when it takes an argument (Node calls it with the module as ``this``), and
    typically calls :meth:`set_export`.
    """

    def __init__(self, export_names: Sequence[str], evaluate_callback: Callable,
                 options: Mapping[str, Any] | None = None, /, *, pool: Any = None,
                 **kwargs: Unpack[SyntheticModuleKwargs]) -> None:
        if not isinstance(export_names, (list, tuple)):
            raise _invalid_type("exportNames", "an Array of unique strings", export_names, prop=False)
        export_names = list(list.__iter__(export_names)) if isinstance(export_names, list) else \
            list(tuple.__iter__(export_names))
        if any(not isinstance(n, str) for n in export_names):
            raise _invalid_type("exportNames", "an Array of unique strings", export_names, prop=False)
        export_names = [plain(n) for n in export_names]
        for i, name in enumerate(export_names):
            if name in export_names[i + 1:]:
                raise InvalidArgValueError(f"The property 'exportNames.{name}' is duplicated. Received {name!r}")
        if not callable(evaluate_callback):
            raise _invalid_type("evaluateCallback", "of type function", evaluate_callback, prop=False)
        if options is not None and not isinstance(options, dict):
            raise _invalid_type("options", "of type object", options, prop=False)
        opts = normalize_options(options, dict(kwargs))
        identifier = opts.pop("identifier", None)
        context = opts.pop("context", None)
        if opts:
            key = next(iter(opts))
            raise InvalidArgValueError(f"The property 'options.{key}' is not a known option of "
                                       f"SyntheticModule(). Received {describe(opts[key])}")
        self._setup(context, pool, identifier)
        self.export_names = tuple(export_names)
        self._evaluate_callback = evaluate_callback
        module = self

        def evaluate():  # called from JS when the module is evaluated
            _settle(_call_evaluate_callback(module._evaluate_callback, module))

        # The host function holds the module: it lives as long as the context, as the
        # module does in JavaScript once anything imports it.

        evaluate.__name__ = "evaluate"
        hook = self._context._encode(evaluate)
        module_id = self._request("module_synthetic", list(export_names),
                                  {"identifier": self._identifier, "evaluate": hook})
        self._registered(module_id)

    def set_export(self, name: str, value: Any) -> None:
        """``syntheticModule.setExport(name, value)``; the module must be linked."""
        if not isinstance(name, str):
            raise _invalid_type("name", "of type string", name, prop=False)
        name = plain(name)
        if self.status in ("unlinked", "linking"):
            raise _status_error("must be linked")
        if name not in self.export_names:
            raise JSReferenceError(f"Export '{name}' is not defined in module", name="ReferenceError")
        self._request("module_set_export", self._id, name, self._context._encode(value))


def _call_evaluate_callback(callback: Callable, module: SyntheticModule) -> Any:
    """Node calls it with the module as ``this``: here, as the argument, when it takes one."""
    try:
        parameters = inspect.signature(callback).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature
        return callback()
    takes = any(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL) for p in parameters)
    return callback(module) if takes else callback()


# ---------------------------------------------------------------------------------------
# Dynamic import(): what resolves it, per context
# ---------------------------------------------------------------------------------------
#
# Whatever was given as import_module_dynamically (a callable, or the default loader) is
# kept on the Context under a number, the "ref". The worker maps the name of the running
# script or module (its filename or identifier) to that ref, and asks the context's
# resolver (one host function per context) for the module: ``resolver(ref, specifier,
# attributes) -> module id``.

class _ImportEntry:
    __slots__ = ("callback", "referrer", "filename", "root")

    def __init__(self, callback, referrer, filename, root):
        self.callback, self.referrer, self.filename, self.root = callback, referrer, filename, root


def check_import_module_dynamically(value: Any, name: str = "options.importModuleDynamically") -> None:
    """A callable, ``constants.USE_MAIN_CONTEXT_DEFAULT_LOADER`` or None."""
    if value is None or value is USE_MAIN_CONTEXT_DEFAULT_LOADER or callable(value):
        return
    raise _invalid_type(name, "of type function", value)  # Node's words; the constant is accepted too


def _import_entry(ctx: Context, callback, referrer, filename: str, root: str | None = None) -> list:
    """Keep ``callback`` for import() on ``ctx``: ``[ref, resolver function id]`` for the worker."""
    with _imports_lock:
        entries = ctx.__dict__.setdefault("_import_entries", {})
        resolver = ctx.__dict__.get("_import_resolver")
        if resolver is None:
            resolver = _make_resolver(ctx)
            ctx.__dict__["_import_resolver"] = resolver
        ref = next(_import_refs)
        entries[ref] = _ImportEntry(callback, referrer, filename, root)
    return [ref, resolver]


_import_refs = itertools.count(1)
_imports_lock = threading.Lock()


def _make_resolver(ctx: Context) -> int:
    weak = weakref.ref(ctx)

    def resolve(ref, specifier, attributes):
        context = weak()
        if context is None:
            raise VMModuleError("ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING", "A dynamic import callback was not specified.")
        entry = context.__dict__.get("_import_entries", {}).get(ref)
        if entry is None:
            raise _TypeModuleError("ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING",
                                   "A dynamic import callback was not specified.")
        attributes = dict(attributes or {})
        if entry.callback is USE_MAIN_CONTEXT_DEFAULT_LOADER:
            module = _default_loader_import(context, entry, specifier, attributes)
        else:
            result = _settle(entry.callback(specifier, entry.referrer, attributes))
            module = _module_of(result)
            if module is None:
                raise _not_module()
            if module._context is not context:
                raise VMModuleError("ERR_VM_MODULE_DIFFERENT_CONTEXT",
                                    "Linked modules must use the same context")
            status = module.status
            if status == "errored":
                raise _as_exception(module.error)
            if status in ("unlinked", "linking"):
                raise _status_error("must not be unlinked or linking")
        return module._id

    resolve.__name__ = "import"
    return ctx._register_host_function(resolve).function_id


def register_script_referrer(ctx: Context, filename: str, callback, referrer=None) -> None:
    """import() in code compiled as ``filename`` in ``ctx`` resolves with ``callback`` (None:
    it rejects). The worker knows code by its file name only, so the latest registration for
    a name wins (see "Differences from Node")."""
    check_import_module_dynamically(callback)
    entry = None if callback is None else _import_entry(ctx, callback, referrer, filename)
    ctx._request("module_referrer", filename, entry)
    ctx.__dict__.setdefault("_import_names", set()).add(filename)


def register_context_referrer(ctx: Context, callback) -> None:
    """create_context's import_module_dynamically: for import() from code that no script or
    module registered (eval'd code, ``new Function`` bodies...)."""
    check_import_module_dynamically(callback)
    entry = _import_entry(ctx, callback, ctx._object if ctx._object is not None else ctx, "")
    ctx._request("module_referrer", None, entry)


# ---------------------------------------------------------------------------------------
# The default loader (constants.USE_MAIN_CONTEXT_DEFAULT_LOADER), for a Python host:
# files, resolved like Node's ESM loader resolves relative and absolute specifiers and
# file: URLs, never outside a root directory: Pool(default_loader_root=...), else the
# directory of the referrer's filename. JavaScript files become SourceTextModules (their own
# imports and import() go through the same loader), JSON files imported with
# { type: 'json' } become a SyntheticModule exporting the parsed value as default.
# ---------------------------------------------------------------------------------------

def _default_loader_import(ctx: Context, entry: _ImportEntry, specifier: str, attributes: dict) -> Module:
    root = entry.root or ctx._pool.default_loader_root
    filename = entry.filename
    if root is None:
        if filename and os.path.isabs(_path_of(filename)):
            root = os.path.dirname(_path_of(filename))
        else:
            raise _loader_error("ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING",
                                f"Cannot import '{specifier}' with the default loader: the importing code has no "
                                "absolute filename to resolve it from, and the pool has no default_loader_root")
    base = os.path.dirname(_path_of(filename)) if filename and os.path.isabs(_path_of(filename)) else root
    module = _load_file(ctx, specifier, attributes, base, root)
    status = module.status
    if status == "unlinked":
        module.link(_loader_linker(ctx, root)).result()
    elif status == "errored":
        raise _as_exception(module.error)
    return module


def _loader_linker(ctx: Context, root: str):
    def linker(specifier, referencing, extra):
        return _load_file(ctx, specifier, extra["attributes"], os.path.dirname(_path_of(referencing.identifier)), root)

    return linker


def _path_of(name: str) -> str:
    return _url_to_path(name) if name.startswith("file:") else name


def _url_to_path(url: str) -> str:
    from urllib.parse import unquote, urlparse

    parsed = urlparse(url)
    if parsed.netloc not in ("", "localhost"):
        raise _loader_error("ERR_INVALID_FILE_URL_HOST", f"File URL host must be \"localhost\" or empty: {url}")
    return unquote(parsed.path)


def _loader_error(code: str, message: str) -> VMModuleError:
    return VMModuleError(code, message)


def _load_file(ctx: Context, specifier: str, attributes: dict, base: str, root: str) -> Module:
    if specifier.startswith("file:"):
        path = _url_to_path(specifier)
    elif os.path.isabs(specifier):
        path = specifier
    elif specifier.startswith(("./", "../")) or specifier in (".", ".."):
        path = os.path.join(base, specifier)
    else:
        raise _loader_error("ERR_MODULE_NOT_FOUND",
                            f"Cannot find package '{specifier}': the default loader resolves files only "
                            "(relative or absolute paths, file: URLs)")
    real = os.path.realpath(path)
    root_real = os.path.realpath(root)
    if real != root_real and not real.startswith(root_real.rstrip(os.sep) + os.sep):
        raise _loader_error("ERR_ACCESS_DENIED",
                            f"Cannot import '{specifier}': {real} is outside the default loader's root {root_real}")
    if not os.path.isfile(real):
        raise _loader_error("ERR_MODULE_NOT_FOUND", f"Cannot find module '{real}' imported from {base}")
    kind = attributes.get("type")
    if kind is not None and kind != "json":
        raise _loader_error("ERR_IMPORT_ATTRIBUTE_UNSUPPORTED",
                            f"Import attribute \"type\" with value \"{kind}\" is not supported")
    url = Path(real).as_uri()
    is_json = real.endswith(".json")
    if is_json and kind != "json":
        raise _loader_error("ERR_IMPORT_ATTRIBUTE_MISSING",
                            f"Module \"{url}\" needs an import attribute of \"type: json\"")
    if kind == "json" and not is_json:
        raise _loader_error("ERR_IMPORT_ATTRIBUTE_TYPE_INCOMPATIBLE",
                            f"Module \"{url}\" is not of type \"json\"")
    cache = ctx.__dict__.setdefault("_loader_cache", {})
    key = (real, kind)
    with _imports_lock:
        module = cache.get(key)
    if module is not None:
        return module
    text = Path(real).read_text(encoding="utf-8")
    if kind == "json":
        data = json.loads(text)
        module = SyntheticModule(["default"], lambda m: m.set_export("default", data), context=ctx,
                                 identifier=url)
    else:
        # The root rides in the options dict: it is internal, not an option of the signature.
        module = SourceTextModule(text, {"_loader_root": root}, context=ctx, identifier=url,
                                  import_module_dynamically=USE_MAIN_CONTEXT_DEFAULT_LOADER)
    with _imports_lock:
        return cache.setdefault(key, module)
