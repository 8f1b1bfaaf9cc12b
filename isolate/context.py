"""Proxies of things that live in a worker: contexts, functions, objects and promises.

A :class:`Context` is a live ``MutableMapping`` over a context's global
object. :class:`JSFunction`, :class:`JSObject` and :class:`JSPromise` are
handles: the value stays in the worker, the proxy holds its id. A handle
keeps its context alive; when the last proxy of a value is garbage-collected
the worker is told to drop it (and when the last proxy of a context goes,
the context).
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import threading
import weakref
from collections.abc import MutableMapping
from typing import Any, Iterator

from protocol import ErrorValue, HandleRef, UnencodableValue, encode_value, finish_values
from protocol.codec import peek

from .errors import (
    ContextLostError, IsolateError, JSError, JSReferenceError, PromisePendingError, ScriptInterruptedError,
    ScriptNotCached, ScriptTimeoutError, UnencodableValueError, js_error_class,
)
from .scripts import ScriptSource

__all__ = ["Context", "JSFunction", "JSObject", "JSPromise", "JSHandle"]

_GLOBAL = 0  # target id of the global object in get/set/delete/keys


class Context(MutableMapping):
    """A JavaScript context in a worker process (``vm.createContext``'s result).

    Reading and writing items reads and writes the context's globals, live.
    ``name`` and ``origin`` are kept as given (default name ``VM Context i``).
    """

    def __init__(self):
        raise TypeError("use isolate.create_context() to make a Context")

    @classmethod
    def _create(cls, pool, context_object: dict | None, *, name: str | None, origin: str,
                globals_: dict | None = None, memory_limit: int | None = None,
                code_generation: dict | None = None) -> "Context":
        self = object.__new__(cls)
        self._pool = pool
        self._object = context_object
        self._lost_reason = None
        self._host_function_ids: list[int] = []
        self.name = name if name is not None else f"VM Context {next(_context_numbers)}"
        self.origin = origin
        self.memory_limit = memory_limit
        params = [{"name": self.name, "origin": self.origin, "memory_limit": memory_limit,
                   "code_generation": code_generation,
                   "globals": self._encode(globals_ if globals_ is not None else (context_object or {}))}]
        from .errors import PoolClosedError
        from .pool import RerouteCall

        for attempt in range(3):
            worker = pool._pick_worker()
            worker.live_contexts += 1  # counted from now on, so recycling cannot retire it under us
            try:
                self._id = worker.request("create_context", params)
                break
            except (RerouteCall, PoolClosedError):
                worker.live_contexts -= 1
                # The worker was lost or retired between pick and send: pick again
                # (a closed pool fails the next pick with PoolClosedError).
                if attempt == 2:
                    raise
            except BaseException:
                worker.live_contexts -= 1
                raise
        self._worker = worker
        worker.contexts.add(self)
        pool._contexts[(id(worker), self._id)] = self
        weakref.finalize(self, _release_context, pool, worker, self._id, self._host_function_ids)
        return self

    @classmethod
    def _run_new(cls, pool, context_object: dict | None, ctx_opts, code: str, compile_opts, run_opts,
                 stats: bool = False):
        """run_in_new_context in one round trip (the worker's ``run_new``).

        Returns ``(value, context)``: the context is None when the worker
        disposed of it (the outcome held no handles), else a live Context.
        """
        self = object.__new__(cls)
        self._pool = pool
        self._object = context_object
        self._lost_reason = None
        self._host_function_ids = []
        self._id = 0
        self.name = ctx_opts.name if ctx_opts.name is not None else f"VM Context {next(_context_numbers)}"
        self.origin = ctx_opts.origin
        self.memory_limit = ctx_opts.memory_limit
        context_params = {"name": self.name, "origin": self.origin, "memory_limit": ctx_opts.memory_limit,
                          "code_generation": ctx_opts.code_generation,
                          "globals": self._encode(context_object or {})}
        options = self._run_options(compile_opts, run_opts, stats)
        script = code if isinstance(code, ScriptSource) else ScriptSource.of(code, compile_opts)
        from .errors import PoolClosedError
        from .pool import RerouteCall

        def decode(raw, needs_finish):
            # A result starts with the context id, so that handles decode
            # against it; error data starts with the thrown value instead.
            first = peek(raw, 0) if isinstance(raw, list) or hasattr(raw, "root") else None
            if isinstance(first, int) and not isinstance(first, bool):
                self._id = first
            return self._decode(raw, needs_finish)

        for attempt in range(3):
            worker = pool._pick_worker()
            self._worker = worker
            try:
                context_id, value, globals_, *rest = worker.request(
                    "run_new", [context_params, *script_params(worker, script, options)], decode,
                    options.get("timeout"), interruptible=bool(options.get("break_on_sigint")), owner=self)
                worker.scripts.add(script.key)
                break
            except ScriptNotCached:
                worker.scripts.discard(script.key)  # evicted there: the next attempt sends the code
                if attempt == 2:
                    raise
            except (RerouteCall, PoolClosedError):
                if attempt == 2:
                    raise
            except JSError as exc:
                self._apply_mirror(getattr(exc, "_mirror", None))
                self._last_stats = getattr(exc, "_stats", None)
                raise
        self._apply_mirror(globals_)
        self._last_stats = rest[0] if rest else None
        if not context_id:
            pool._release_host_functions(self._host_function_ids)
            return value, None
        worker.live_contexts += 1
        worker.contexts.add(self)
        pool._contexts[(id(worker), self._id)] = self
        weakref.finalize(self, _release_context, pool, worker, self._id, self._host_function_ids)
        return value, self

    # -- plumbing ----------------------------------------------------------
    def _check(self) -> None:
        if self._lost_reason is not None:
            raise ContextLostError(f"context {self.name!r} is lost: {self._lost_reason}")

    def _lost(self, reason: str) -> None:
        self._lost_reason = reason

    def _request(self, method: str, *params: Any, timeout_ms: int | None = None) -> Any:
        self._check()
        options = params[-1] if params and isinstance(params[-1], dict) else {}
        return self._worker.request(method, [self._id, *params], self._decode, timeout_ms,
                                    interruptible=bool(options.get("break_on_sigint")), owner=self)

    def _encode(self, value: Any) -> Any:
        try:
            return encode_value(value, self._to_ref)
        except UnencodableValue as exc:
            raise UnencodableValueError(str(exc)) from None

    def _to_ref(self, obj: Any):
        if isinstance(obj, JSHandle):
            if obj._context is not self:
                raise UnencodableValue(
                    f"{obj!r} belongs to context {obj._context.name!r}, not {self.name!r}: "
                    "a handle cannot cross contexts")
            return obj._ref
        if isinstance(obj, Context):
            raise UnencodableValue("a Context cannot be passed as a value")
        if isinstance(obj, JSError):
            return ErrorValue(obj.name, obj.message, obj.stack, obj.props)
        if isinstance(obj, BaseException):
            return ErrorValue("Error", str(obj), f"Error: {obj}", {"pythonType": type(obj).__name__})
        if callable(obj):
            ref = self._pool._register_host_function(obj)
            self._host_function_ids.append(ref.function_id)
            return ref
        return None

    def _decode(self, value: Any, needs_finish: bool) -> Any:
        return finish_values(value, needs_finish, make_error=_make_error,
                             make_handle=self._make_handle,
                             make_host_function=self._make_host_function)

    def _make_handle(self, ref: HandleRef) -> "JSHandle":
        cls = {"function": JSFunction, "promise": JSPromise}.get(ref.kind, JSObject)
        return cls(self, ref)

    def _make_host_function(self, ref):
        fn = self._pool._host_functions.get(ref.function_id)
        return fn if fn is not None else ref

    def _run_options(self, compile_opts, run_opts, stats: bool) -> dict:
        options = {"filename": compile_opts.filename, "mirror": self._object is not None,
                   "stats": stats,
                   "line_offset": compile_opts.line_offset, "column_offset": compile_opts.column_offset,
                   # Either place may turn it off: the script's compile options or this run's.
                   "display_errors": compile_opts.display_errors and run_opts.display_errors}
        if run_opts.timeout is not None:
            options["timeout"] = run_opts.timeout
        if run_opts.break_on_sigint:
            options["break_on_sigint"] = True
        return options

    def _run(self, code: "str | ScriptSource", compile_opts, run_opts, stats: bool = False) -> Any:
        """Run a script in this context and return its completion value."""
        script = code if isinstance(code, ScriptSource) else ScriptSource.of(code, compile_opts)
        options = self._run_options(compile_opts, run_opts, stats)
        if run_opts.break_on_sigint:
            with _relay_sigint(self._worker):
                return self._run_script(script, options)
        return self._run_script(script, options)

    def _run_script(self, script: "ScriptSource", options: dict) -> Any:
        worker = self._worker
        try:
            value = self._with_mirror("run", *script_params(worker, script, options))
        except ScriptNotCached:  # the worker evicted it: send the code this time
            worker.scripts.discard(script.key)
            value = self._with_mirror("run", *script_params(worker, script, options))
        worker.scripts.add(script.key)
        return value

    def _with_mirror(self, method: str, *params: Any) -> Any:
        options = params[-1]
        try:
            value, globals_, *stats = self._request(method, *params, timeout_ms=options.get("timeout"))
        except JSError as exc:
            mirrored = getattr(exc, "_mirror", None)
            if mirrored is not None:
                self._apply_mirror(mirrored)
            self._last_stats = getattr(exc, "_stats", None)
            raise
        except (ScriptTimeoutError, ScriptInterruptedError):
            self._refresh_mirror()  # what the script did before it was stopped stays, as in Node
            raise
        self._apply_mirror(globals_)
        self._last_stats = stats[0] if stats else None
        return value

    def _refresh_mirror(self) -> None:
        """Bring the contextified dict up to date after a stopped call (best effort:
        a killed worker took the context with it)."""
        if self._object is None or self._lost_reason is not None:
            return
        try:
            self._run_script(ScriptSource("void 0", "evalmachine.<anonymous>", 0, 0), {"mirror": True})
        except IsolateError:
            pass

    def _apply_mirror(self, globals_: dict | None) -> None:
        if self._object is not None and globals_ is not None:
            self._object.clear()
            self._object.update(globals_)

    # -- MutableMapping over the global object --------------------------------
    def __getitem__(self, key: str) -> Any:
        _check_key(key)
        try:
            return self._request("get", _GLOBAL, key)
        except JSReferenceError:
            raise KeyError(key) from None

    def __setitem__(self, key: str, value: Any) -> None:
        _check_key(key)
        self._request("set", _GLOBAL, key, self._encode(value))
        if self._object is not None:
            self._object[key] = value

    def __delitem__(self, key: str) -> None:
        _check_key(key)
        if not self._request("has", _GLOBAL, key):
            raise KeyError(key)
        self._request("delete", _GLOBAL, key)
        if self._object is not None:
            self._object.pop(key, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._request("keys", _GLOBAL))

    def __len__(self) -> int:
        return len(self._request("keys", _GLOBAL))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and bool(self._request("has", _GLOBAL, key))

    def __repr__(self) -> str:
        state = f" lost: {self._lost_reason}" if self._lost_reason else ""
        return f"<Context {self.name!r} on worker {self._worker.pid}{state}>"

    def __eq__(self, other: object) -> bool:
        return self is other

    __hash__ = object.__hash__

    def memory_usage(self) -> dict:
        """This context's engine memory (QuickJS's own accounting): ``used``, ``allocated``,
        ``limit`` in bytes and ``objects``, plus every raw ``JSMemoryUsage`` field under ``engine``."""
        usage = self._pool._worker_memory(self._worker, eager=False).get(str(self._id))  # JS object keys are strings
        return _usage_summary(usage)

    @property
    def worker_pid(self) -> int:
        """Pid of the worker process hosting this context."""
        return self._worker.pid


_context_numbers = itertools.count(1)


def script_params(worker, script: "ScriptSource", options: dict) -> list:
    """``[code, options]`` of a run: the code only if ``worker`` may not have the
    script yet, else just its key (and verified bytecode in place of code)."""
    options = dict(options, key=script.key)
    if script.key in worker.scripts:
        return [None, options]
    if script.bytecode is not None:
        options["bytecode"] = script.bytecode
    return [script.code, options]


def _usage_summary(usage: dict | None) -> dict:
    if usage is None:
        from .errors import UnsupportedError

        raise UnsupportedError("the engine's memory accounting is unavailable in this installation")
    return {"used": usage["memory_used_size"], "allocated": usage["malloc_size"],
            "limit": usage["malloc_limit"], "objects": usage.get("obj_count", 0), "engine": usage}


@contextlib.contextmanager
def _relay_sigint(worker):
    """breakOnSigint: during the call, a SIGINT to the host interrupts the script.

    As in Node, the host's own SIGINT handler is set aside for the call and
    restored after. Python only installs signal handlers from the main
    thread, so elsewhere this fails loudly instead of silently not working.
    """
    if threading.current_thread() is not threading.main_thread():
        from .errors import InvalidArgValueError

        raise InvalidArgValueError(
            "The property 'options.breakOnSigint' can only be used from the main thread: "
            "Python delivers SIGINT to, and installs signal handlers in, the main thread only")

    def relay(signum, frame):
        worker.interrupt()

    previous = signal.signal(signal.SIGINT, relay)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _check_key(key: Any) -> None:
    if not isinstance(key, str):
        from .errors import InvalidArgTypeError
        from .options import describe

        raise InvalidArgTypeError(f"context keys must be of type str. Received {describe(key)}")


def _release_context(pool, worker, context_id: int, host_function_ids: list[int]) -> None:
    worker.live_contexts -= 1
    worker.queue_release("release_context", [context_id])
    pool._release_host_functions(host_function_ids)


def _make_error(err: ErrorValue) -> JSError:
    cls = js_error_class(err.name, err.message)
    return cls(err.message, name=err.name, stack=err.stack, props=err.props)


class JSHandle:
    """A JavaScript value that stays in its worker; this proxy holds its handle id."""

    def __init__(self, context: Context, ref: HandleRef):
        self._context = context
        self._ref = ref
        weakref.finalize(self, context._worker.queue_release, "release", [context._id, [ref.handle_id]])

    @property
    def context(self) -> Context:
        return self._context

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._ref.class_name} #{self._ref.handle_id}>"

    # Property access on the JS value.
    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __getitem__(self, key: str) -> Any:
        try:
            return self._context._request("get", self._ref.handle_id, str(key))
        except JSReferenceError:
            raise KeyError(key) from None

    def __setitem__(self, key: str, value: Any) -> None:
        self._context._request("set", self._ref.handle_id, str(key), self._context._encode(value))

    def keys(self) -> list[str]:
        return self._context._request("keys", self._ref.handle_id)


class JSObject(JSHandle):
    """A non-plain JavaScript object (a class instance, a Proxy, ...), by reference."""


class JSFunction(JSHandle):
    """A JavaScript function, callable from Python. Arguments and result are converted."""

    @property
    def name(self) -> str:
        return self._ref.name

    def __call__(self, *args: Any, timeout: int | None = None, break_on_sigint: bool = False) -> Any:
        return self._invoke(args, timeout, break_on_sigint, construct=False)

    def new(self, *args: Any, timeout: int | None = None, break_on_sigint: bool = False) -> Any:
        """``new fn(...args)``."""
        return self._invoke(args, timeout, break_on_sigint, construct=True)

    def _invoke(self, args, timeout, break_on_sigint, construct: bool) -> Any:
        from .options import run_options

        run_opts = run_options({"timeout": timeout, "break_on_sigint": break_on_sigint})
        ctx = self._context
        options: dict = {"mirror": ctx._object is not None, "construct": construct}
        if run_opts.timeout is not None:
            options["timeout"] = run_opts.timeout
        encoded = ctx._encode(list(args))
        if run_opts.break_on_sigint:
            options["break_on_sigint"] = True
            with _relay_sigint(ctx._worker):
                return ctx._with_mirror("call", self._ref.handle_id, encoded, options)
        return ctx._with_mirror("call", self._ref.handle_id, encoded, options)


class JSPromise(JSHandle):
    """A JavaScript promise. ``result()`` gives its value; ``await`` works too.

    Promise jobs run inside the call that created them, so a promise is
    usually settled by the time Python sees it. One that is still pending
    can only be settled by later calls into its context.
    """

    def state(self) -> str:
        """``"pending"``, ``"fulfilled"`` or ``"rejected"``."""
        return self._context._request("promise_state", self._ref.handle_id)[0]

    def result(self, timeout: float | None = None) -> Any:
        state, value = self._context._request("promise_state", self._ref.handle_id)
        if state == "fulfilled":
            return value
        if state == "rejected":
            from .pool import _thrown

            raise _thrown(value)
        raise PromisePendingError("the promise is still pending: nothing in its context will settle "
                                  "it until more code runs there")

    def __await__(self):
        import asyncio  # only when awaited: asyncio is a heavy import

        return asyncio.get_running_loop().run_in_executor(None, self.result).__await__()
