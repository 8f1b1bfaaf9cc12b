"""Contexts: proxies of a worker's contexts.

A :class:`Context` is a live ``MutableMapping`` over a context's global
object; when its last proxy (and the last handle of a value in it:
isolate/handles.py) goes, the worker is told to drop the context.
"""

from __future__ import annotations

import itertools
import threading
import weakref
from collections import OrderedDict
from collections.abc import MutableMapping
from typing import Any, Callable, Iterator

from .protocol import (
    MAX_VALUE_DEPTH, ErrorValue, HandleRef, HostFunctionRef, UnencodableValue, encode_value, finish_values, undefined,
)
from .protocol.codec import peek

from .errors import (
    ContextLostError, InvalidArgTypeError, IsolateError, JSError, JSReferenceError, ProtocolViolationError,
    ScriptInterruptedError, ScriptNotCached, ScriptTimeoutError, UnencodableValueError, display_error,
    error_from_value,
)
from .options import describe, plain
from .scheduler import ANYWHERE, CallState
from .scripts import ScriptSource
from .handles import JSFunction, JSHandle, JSObject, JSPromise, queue_bound, relay_sigint

__all__ = ["Context", "contextify", "context_of"]

_GLOBAL = 0  # target id of the global object in get/set/delete/keys
_GLOBAL_REF = HandleRef("object", _GLOBAL, "Object")  # the global object as a value going into its context
# displayErrors: how many scripts' code a context keeps, and the largest kept (chars).
_REMEMBERED_SOURCES = 16
_REMEMBERED_SOURCE_CHARS = 256 * 1024

# Dicts contextified by create_context(), by id. The Context holds the dict, so
# the id cannot be reused while the entry exists; run_in_new_context's
# contexts are registered weakly (they live as long as their Context does).
_contextified: dict[int, Any] = {}
_contextified_lock = threading.Lock()


def contextify(obj: dict | list, context: "Context", strong: bool) -> None:
    """Make ``obj`` stand for ``context`` wherever a context is expected (vm.isContext)."""
    with _contextified_lock:
        _contextified[id(obj)] = context if strong else weakref.ref(context)


def context_of(obj: Any) -> "Context | None":
    """The Context that ``obj`` is, or that the dict ``obj`` was contextified as."""
    if isinstance(obj, Context):
        return obj
    if isinstance(obj, (dict, list)):
        with _contextified_lock:
            entry = _contextified.get(id(obj))
        if entry is None:
            return None
        context = entry if isinstance(entry, Context) else entry()
        if context is not None and context._object is obj:
            return context
    return None
_DEFAULT = object()  # "no queue_timeout given": the pool's default, else the call's own timeout




def _snapshot(obj: dict | list | None) -> dict:
    """The items of a sandbox as a plain dict of globals (a subclass's own methods are not
    called); a list's items are its index properties, as for Node's contextified array."""
    if obj is None:
        return {}
    if isinstance(obj, list):
        return {str(i): v for i, v in enumerate(list.__iter__(obj))}
    return dict(dict.items(obj))


def _mirror_into_list(target: list, globals_: dict) -> None:
    """A contextified list mirrors the global's index properties (``"0"``, ``"1"``...);
    other globals have no place in a list (README, "Differences from Node")."""
    items: dict[int, Any] = {}
    for key, value in globals_.items():
        if isinstance(key, str) and key.isdigit() and (key == "0" or key[0] != "0") and int(key) < 2**32 - 1:
            items[int(key)] = value
    length = max(items) + 1 if items else 0
    list.__setitem__(target, slice(None), [items.get(i, undefined) for i in range(length)])


def _reply(result: Any, method: str, fields: int) -> list:
    """A run's answer, checked: ``fields`` items (value, mirrored globals...) plus
    optional stats. A worker's malformed answer fails the call, typed."""
    if (not isinstance(result, list) or not fields <= len(result) <= fields + 1
            or not (result[fields - 1] is None or isinstance(result[fields - 1], dict))):
        raise ProtocolViolationError(f"malformed answer to {method!r}: {result!r:.80}")
    return result




class Context(MutableMapping):
    """A JavaScript context in a worker process (``vm.createContext``'s result).

    Reading and writing items reads and writes the context's globals, live.
    ``name`` and ``origin`` are kept as given (default name ``VM Context i``).
    """

    _pool: Any                  # the isolate.Pool (above this layer)
    _object: dict | list | None  # the contextified dict (or list), if any
    _lost_reason: str | None
    _host_functions: dict[int, Callable]
    _host_function_ids: dict[int, int]
    _id: int
    _worker: Any                # its WorkerHandle once placed
    _last_stats: dict | None
    _sources: "OrderedDict[str, tuple[str, int, int]]"  # displayErrors: recent scripts' code by file name
    name: str
    origin: str
    memory_limit: int | None

    def __init__(self) -> None:
        raise TypeError("use isolate.create_context() to make a Context")

    @classmethod
    def _create(cls, pool, context_object: dict | list | None, *, name: str | None, origin: str,
                globals_: dict | None = None, memory_limit: int | None = None,
                code_generation: dict | None = None) -> "Context":
        self = cls._blank(pool, context_object, name, origin, memory_limit)
        params = [{"name": self.name, "origin": self.origin, "memory_limit": memory_limit,
                   "code_generation": code_generation,
                   "globals": self._encode_globals(
                       globals_ if globals_ is not None else _snapshot(context_object))}]
        # Any worker: the first one free (least loaded among the idle). The
        # call counts in that worker's load from the moment it starts, so
        # recycling cannot retire the worker under the context being made.
        scheduler = pool._scheduler
        call = scheduler.submit(ANYWHERE, "create_context", params, places_context=True, owner=self)
        try:
            self._id = scheduler.wait(call)
        except BaseException:
            if call.placed:
                call.worker.live_contexts -= 1
                call.placed = False
            raise
        finally:
            if call.worker is not None and call.state is CallState.DONE:
                pool._after_call(call.worker)
        self._adopt(call.worker)
        return self

    @classmethod
    def _blank(cls, pool, context_object, name, origin, memory_limit) -> "Context":
        self = object.__new__(cls)
        self._pool = pool
        self._object = context_object
        self._lost_reason = None
        # The callables given to this context, by the id the worker knows them by:
        # the only ones a call_host from this context can reach (isolate.hostcalls).
        self._host_functions = {}
        self._host_function_ids = {}   # id(callable) -> its id here
        self._id = 0
        self._worker = None
        self.name = name if name is not None else f"VM Context {next(_context_numbers)}"
        self.origin = origin
        self.memory_limit = memory_limit
        # The code of the scripts last run here, by file name, for displayErrors'
        # source line of an error thrown in a function one of them defined.
        self._sources = OrderedDict()
        return self

    def _adopt(self, worker) -> None:
        """Register this context as living on ``worker`` (its load was counted at creation)."""
        self._worker = worker
        worker.contexts.add(self)
        self._pool._contexts[(id(worker), self._id)] = self
        weakref.finalize(self, _release_context, worker, self._id)

    @classmethod
    def _run_new(cls, pool, context_object: dict | list | None, ctx_opts, code: str, compile_opts, run_opts,
                 stats: bool = False, report: dict | None = None):
        """run_in_new_context in one round trip (the worker's ``run_new``), on any worker.

        Returns ``(value, context)``: the context is None when the worker
        disposed of it (the outcome held no handles), else a live Context.
        A worker that dies before starting the call does not fail it: the
        call runs on another worker. ``report`` (a dict) receives the pid of
        the worker that ran it and the call's stats, whatever the outcome.
        """
        self = cls._blank(pool, context_object, ctx_opts.name, ctx_opts.origin, ctx_opts.memory_limit)
        try:
            return self._run_new_here(context_object, ctx_opts, code, compile_opts, run_opts, stats)
        finally:
            if report is not None:
                report["pid"] = self._worker.pid if self._worker is not None else None
                report["stats"] = getattr(self, "_last_stats", None)

    def _run_new_here(self, context_object, ctx_opts, code, compile_opts, run_opts, stats):
        try:
            return self._run_new_once(context_object, ctx_opts, code, compile_opts, run_opts, stats)
        except JSError as exc:
            if compile_opts.display_errors and run_opts.display_errors:
                script = code if isinstance(code, ScriptSource) else ScriptSource.of(code, compile_opts)
                display_error(exc, {script.filename: (script.code, script.line_offset, script.column_offset)})
            raise
        except (ScriptTimeoutError, ScriptInterruptedError):
            if self._id and self._worker is not None and self._object is not None:
                # What the script did before it was stopped stays, as in Node: the
                # worker kept the context for this; it goes with this Context.
                self._adopt(self._worker)
                self._refresh_mirror()
            raise

    def _run_new_once(self, context_object, ctx_opts, code, compile_opts, run_opts, stats):
        pool = self._pool
        context_params = {"name": self.name, "origin": self.origin, "memory_limit": ctx_opts.memory_limit,
                          "code_generation": ctx_opts.code_generation,
                          "globals": self._encode_globals(_snapshot(context_object))}
        options = self._run_options(compile_opts, run_opts, stats)
        script = code if isinstance(code, ScriptSource) else ScriptSource.of(code, compile_opts)
        scheduler = pool._scheduler

        def params(worker):
            self._worker = worker
            return [context_params, *script_params(worker, script, options)]

        def decode(raw, needs_finish):
            # A result starts with the context id, so that handles decode
            # against it; error data starts with the thrown value instead.
            first = peek(raw, 0) if isinstance(raw, list) or hasattr(raw, "root") else None
            if isinstance(first, int) and not isinstance(first, bool):
                self._id = first
            return self._decode(raw, needs_finish)

        for attempt in range(2):
            call = scheduler.submit(ANYWHERE, "run_new", params, decode=decode, timeout_ms=options.get("timeout"),
                                    queue_timeout_ms=queue_bound(pool, run_opts.queue_timeout, run_opts.timeout),
                                    places_context=True, owner=self)
            try:
                context_id, value, globals_, *rest = _reply(scheduler.wait(call), "run_new", 3)
                if isinstance(context_id, bool) or not isinstance(context_id, int):
                    raise ProtocolViolationError(f"malformed answer to 'run_new': context id {context_id!r:.40}")
            except ScriptNotCached:
                call.worker.scripts.discard(script.key)  # evicted there: the next attempt sends the code
                if attempt == 1:
                    raise
                continue
            except JSError as exc:
                self._apply_mirror(getattr(exc, "_mirror", None))
                self._last_stats = getattr(exc, "_stats", None)
                raise
            except (ScriptTimeoutError, ScriptInterruptedError) as exc:
                kept = exc.__dict__.pop("_kept_context", None)
                if kept is not None:
                    self._id = kept  # the worker kept the context: read the mirror below
                elif "_mirror" in exc.__dict__:  # a nested call's stop, through JS
                    self._apply_mirror(exc.__dict__["_mirror"])
                raise
            except IsolateError as exc:  # isolate's own error raised by a host callable, through JS
                self._apply_mirror(exc.__dict__.get("_mirror"))
                raise
            finally:
                # The worker disposes of the context unless the outcome holds handles
                # (then it stays counted, as its Context is adopted below).
                if call.placed and not (call.state is CallState.DONE and self._id):
                    call.worker.live_contexts -= 1
                    call.placed = False
                if call.state is CallState.DONE:
                    pool._after_call(call.worker)
            break
        worker = call.worker
        worker.scripts.add(script.key)
        self._apply_mirror(globals_)
        self._last_stats = rest[0] if rest else None
        if not context_id:
            return value, None
        self._adopt(worker)
        return value, self

    # -- plumbing ----------------------------------------------------------
    def _check(self) -> None:
        if self._lost_reason is not None:
            raise ContextLostError(f"context {self.name!r} is lost: {self._lost_reason}")

    def _lost(self, reason: str) -> None:
        self._lost_reason = reason

    def _request(self, method: str, *params: Any, timeout_ms: float | None = None,
                 queue_timeout_ms: Any = _DEFAULT) -> Any:
        self._check()
        options = params[-1] if params and isinstance(params[-1], dict) else {}
        if queue_timeout_ms is _DEFAULT:
            queue_timeout_ms = queue_bound(self._pool, None, timeout_ms)
        return self._pool._scheduler.request(
            self._worker, method, [self._id, *params], decode=self._decode, timeout_ms=timeout_ms,
            queue_timeout_ms=queue_timeout_ms, interruptible=bool(options.get("break_on_sigint")), owner=self)

    def _access(self, method: str, *params: Any, timeout_ms: float | None = None) -> Any:
        """A property access (get/set/has/delete/keys): it may run script getters,
        setters or Proxy traps, so it is bounded (by default by the pool's access timeout)."""
        if timeout_ms is None:
            timeout_ms = self._pool.limits.access_timeout_s * 1000.0
        return self._request(method, *params, {"timeout": timeout_ms}, timeout_ms=timeout_ms)

    def _encode(self, value: Any, *, holder: bool = False, for_js: bool = False) -> Any:
        """Wire-encode ``value`` for this context. ``holder``: it only holds the values
        (an argument list, a sandbox's globals), so the depth limit applies to its items.
        ``for_js``: the value is stored in JS as a whole (a plain one may cross as JSON text)."""
        # The contextified dict, met inside a value, is the global object (Node's
        # sandbox is the global): `sandbox["window"] = sandbox` makes `window === this`.
        stand_ins = {id(self._object): _GLOBAL_REF} if self._object is not None else None
        try:
            return encode_value(value, self._to_ref, max_depth=MAX_VALUE_DEPTH + (1 if holder else 0),
                                stand_ins=stand_ins, for_js=for_js)
        except UnencodableValue as exc:
            raise UnencodableValueError(str(exc)) from None

    def _encode_globals(self, globals_: dict) -> Any:
        """A sandbox's globals for the worker's ``set_globals``: when plain (see
        ``protocol.plainjson``), the whole dict crosses as one JSON text that the
        engine parses, with no walk on either side; an empty one stays ``{}``
        (no op at all in the worker)."""
        return self._encode(globals_, holder=True, for_js=bool(globals_))

    def _to_ref(self, obj: Any):
        if isinstance(obj, JSHandle):
            if obj._context is not self:
                # Nothing of the other context (not even its name) in a message JS can read.
                raise UnencodableValue(f"a {type(obj).__name__} of another context cannot be passed into "
                                       "this one: a handle cannot cross contexts")
            return obj._ref
        if obj is self:
            return _GLOBAL_REF  # a context stored in itself is its global object, as in Node
        if isinstance(obj, Context):
            raise UnencodableValue("a Context cannot be passed as a value into another context")
        if isinstance(obj, JSError):
            return ErrorValue(obj.name, obj.message, obj.stack, obj.props)
        if isinstance(obj, BaseException):
            return ErrorValue("Error", str(obj), f"Error: {obj}", {"pythonType": type(obj).__name__})
        if callable(obj):
            return self._register_host_function(obj)
        return None

    def _decode(self, value: Any, needs_finish: bool) -> Any:
        return finish_values(value, needs_finish, make_error=_make_error,
                             make_handle=self._make_handle,
                             make_host_function=self._make_host_function)

    def _make_handle(self, ref: HandleRef) -> "JSHandle":
        cls = {"function": JSFunction, "promise": JSPromise}.get(ref.kind, JSObject)
        return cls(self, ref)

    def _register_host_function(self, fn: Callable) -> HostFunctionRef:
        """Give ``fn`` to this context (once per callable): its id here, for the worker."""
        function_id = self._host_function_ids.get(id(fn))
        if function_id is None:
            function_id = len(self._host_functions) + 1
            self._host_functions[function_id] = fn   # keeps fn alive, so id(fn) stays its own
            self._host_function_ids[id(fn)] = function_id
        name = getattr(fn, "__name__", "")
        return HostFunctionRef(function_id, name if type(name) is str else "")

    def _make_host_function(self, ref):
        fn = self._host_functions.get(ref.function_id)
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
        # Host-side only (popped before sending): how long the call may wait for its worker.
        options["queue_timeout"] = queue_bound(self._pool, run_opts.queue_timeout, run_opts.timeout)
        return options

    def _run(self, code: "str | ScriptSource", compile_opts, run_opts, stats: bool = False) -> Any:
        """Run a script in this context and return its completion value."""
        script = code if isinstance(code, ScriptSource) else ScriptSource.of(code, compile_opts)
        options = self._run_options(compile_opts, run_opts, stats)
        if run_opts.break_on_sigint:
            with relay_sigint(self._worker):
                return self._run_script(script, options)
        return self._run_script(script, options)

    def _run_script(self, script: "ScriptSource", options: dict) -> Any:
        worker = self._worker
        self._remember_source(script)
        try:
            try:
                value = self._with_mirror("run", *script_params(worker, script, options))
            except ScriptNotCached:  # the worker evicted it: send the code this time
                worker.scripts.discard(script.key)
                value = self._with_mirror("run", *script_params(worker, script, options))
        except JSError as exc:
            if options.get("display_errors"):
                current = (script.code, script.line_offset, script.column_offset)
                display_error(exc, {**self._sources, script.filename: current})
            raise
        worker.scripts.add(script.key)
        return value

    def _remember_source(self, script: "ScriptSource") -> None:
        """Keep ``script``'s code for displayErrors (the last few, small ones only)."""
        if len(script.code) > _REMEMBERED_SOURCE_CHARS:
            self._sources.pop(script.filename, None)  # (an older script of that name is not this one)
            return
        self._sources[script.filename] = (script.code, script.line_offset, script.column_offset)
        self._sources.move_to_end(script.filename)
        while len(self._sources) > _REMEMBERED_SOURCES:
            self._sources.popitem(last=False)

    def _with_mirror(self, method: str, *params: Any) -> Any:
        options = dict(params[-1])
        queue_timeout = options.pop("queue_timeout", _DEFAULT)
        params = (*params[:-1], options)
        try:
            value, globals_, *stats = _reply(self._request(method, *params, timeout_ms=options.get("timeout"),
                                                           queue_timeout_ms=queue_timeout), method, 2)
        except JSError as exc:
            mirrored = getattr(exc, "_mirror", None)
            if mirrored is not None:
                self._apply_mirror(mirrored)
            self._last_stats = getattr(exc, "_stats", None)
            raise
        except (ScriptTimeoutError, ScriptInterruptedError) as exc:
            # What the script did before it was stopped stays, as in Node (a call
            # that never started did nothing).
            # A stop in a nested call that crossed this script (isolate.hostcalls)
            # brings the mirror of this script's end.
            if "_mirror" in exc.__dict__:
                self._apply_mirror(exc.__dict__["_mirror"])
            elif getattr(exc, "stage", None) != "queued":
                self._refresh_mirror()
            raise
        except IsolateError as exc:  # isolate's own error raised by a host callable, through JS
            self._apply_mirror(exc.__dict__.get("_mirror"))
            raise
        self._apply_mirror(globals_)
        self._last_stats = stats[0] if stats else None
        return value

    def _refresh_mirror(self) -> None:
        """Bring the contextified dict up to date after a stopped call (best effort:
        a killed worker took the context with it)."""
        if self._object is None or self._lost_reason is not None:
            return
        timeout_ms = self._pool.limits.access_timeout_s * 1000.0
        try:
            # The worker's `mirror` runs no script code and leaves queued promise jobs queued.
            _, globals_, *_ = _reply(self._request("mirror", {"timeout": timeout_ms}, timeout_ms=timeout_ms),
                                     "mirror", 2)
        except IsolateError:
            return
        self._apply_mirror(globals_)

    def _apply_mirror(self, globals_: dict | None) -> None:
        if isinstance(self._object, list) and globals_ is not None:
            _mirror_into_list(self._object, globals_)
        elif isinstance(self._object, dict) and globals_ is not None:
            # dict's own methods: a dict subclass's overrides are the caller's, not run here.
            dict.clear(self._object)
            dict.update(self._object, globals_)

    # -- MutableMapping over the global object --------------------------------
    def __getitem__(self, key: str) -> Any:
        key = _check_key(key)
        try:
            return self._access("get", _GLOBAL, key)
        except JSReferenceError:
            raise KeyError(key) from None

    def __setitem__(self, key: str, value: Any) -> None:
        key = _check_key(key)
        self._access("set", _GLOBAL, key, self._encode(value, for_js=True))
        if isinstance(self._object, dict):
            dict.__setitem__(self._object, key, value)

    def __delitem__(self, key: str) -> None:
        key = _check_key(key)
        if not self._access("has", _GLOBAL, key):
            raise KeyError(key)
        self._access("delete", _GLOBAL, key)
        if isinstance(self._object, dict):
            dict.pop(self._object, key, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._access("keys", _GLOBAL))

    def __len__(self) -> int:
        return len(self._access("keys", _GLOBAL))

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and bool(self._access("has", _GLOBAL, plain(key)))

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




def _check_key(key: Any) -> str:
    if not isinstance(key, str):
        raise InvalidArgTypeError(f"context keys must be of type str. Received {describe(key)}")
    return plain(key)


def _release_context(worker, context_id: int) -> None:
    worker.live_contexts -= 1
    worker.queue_release("release_context", [context_id])


_make_error = error_from_value
