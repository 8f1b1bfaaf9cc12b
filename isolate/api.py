"""The node:vm API in Python spelling: Script, create_context, run_in_*, compile_function.

Each public function normalizes its input (a ``str`` in place of options is
the filename; Node's camelCase keys are accepted), validates every option
(``options.py``), and only then delegates to a context. The module-level
functions use a default :class:`Pool`, started on first use.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from . import constants
from .context import Context, context_of as _lookup, contextify as _register
from .handles import JSFunction
from .defaults import default_pool, is_pool
from .errors import InvalidArgTypeError, ScriptNotCached
from .options import (
    plain, CompileOptions, RunOptions, check_code, check_import_module_dynamically, compile_options, context_options,
    describe, finish, normalize_options, run_options,
)
from .futures import AsyncFuture, CallThreads, Future
from .scripts import ScriptSource, make_cached_data, open_cached_data

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from .optiontypes import (
        CompileFunctionKwargs, CreateContextKwargs, MeasureMemoryKwargs, NewContextKwargs, OptionsArg,
        RunCodeKwargs, RunKwargs, ScriptKwargs, ScriptNewContextKwargs,
    )
    from .pool import Pool

__all__ = [
    "Script", "create_context", "is_context", "run_in_context", "run_in_new_context",
    "run_in_this_context", "compile_function", "default_pool", "measure_memory",
    "arun_in_context", "arun_in_new_context", "arun_in_this_context",
]

def is_context(obj: Any) -> bool:
    """``vm.isContext``: true for a Context, or a dict contextified by ``create_context``.

    As in Node, asking about a primitive (str, number, bool, None, undefined,
    a symbol or a BigInt) is an ERR_INVALID_ARG_TYPE, not False.
    """
    from .protocol.values import BigInt, JSSymbol, UndefinedType

    if obj is None or isinstance(obj, (str, bytes, int, float, JSSymbol, BigInt, UndefinedType)):
        raise InvalidArgTypeError(f'The "object" argument must be of type object. Received {describe(obj)}')
    return _lookup(obj) is not None


def _require_context(obj: Any, name: str = "contextifiedObject") -> Context:
    context = _lookup(obj)
    if context is None:
        if isinstance(obj, dict):
            raise InvalidArgTypeError(
                f'The "{name}" argument must be a vm.Context (this dict was never passed to '
                "create_context()). Received a dict")
        raise InvalidArgTypeError(f'The "{name}" argument must be a vm.Context. Received {describe(obj)}')
    return context


def _check_context_object(obj: Any) -> dict | list | None:
    # DONT_CONTEXTIFY (Node 22): the context's global is an ordinary object,
    # with no host object behind it. That is what every context is here; the
    # difference from a dict is only that there is nothing to mirror.
    if obj is None or obj is constants.DONT_CONTEXTIFY:
        return None
    if isinstance(obj, Context):
        return None
    if not isinstance(obj, (dict, list)):
        raise InvalidArgTypeError(
            f'The "contextObject" argument must be of type dict or list. Received {describe(obj)}')
    return obj


def _create_context(pool: "Pool", context_object: Any, options: Any, kwargs: Mapping[str, Any]) -> Context:
    if isinstance(context_object, Context):
        return context_object  # Node returns an already-contextified object as is
    existing = _lookup(context_object)
    if existing is not None:
        return existing
    obj = _check_context_object(context_object)
    _require_options_dict(options)
    opts = normalize_options(options, dict(kwargs))
    ctx_opts = context_options(opts)
    dynamic = check_import_module_dynamically(opts)
    finish(opts, "create_context()")
    context = Context._create(pool, obj, name=ctx_opts.name, origin=ctx_opts.origin,
                              memory_limit=ctx_opts.memory_limit, code_generation=ctx_opts.code_generation)
    if obj is not None:
        _register(obj, context, strong=True)
    if dynamic is not None:
        from .modules import register_context_referrer

        register_context_referrer(context, dynamic)
    return context


def create_context(context_object: dict[str, Any] | list[Any] | Context | None = None, options: OptionsArg = None, /,
                   **kwargs: Unpack[CreateContextKwargs]) -> Context:
    """``vm.createContext``: a new context whose globals start as ``context_object``'s items.

    Given a dict, the dict is contextified as in Node: ``is_context(d)`` is
    true, ``d`` may be passed wherever a context is expected, and after
    every call that runs code in the context ``d`` mirrors the context's
    own enumerable globals. Options: ``name``, ``origin``,
    ``code_generation``, ``microtask_mode``.
    """
    return _create_context(default_pool(), context_object, options, kwargs)


class Script:
    """``vm.Script``: code compiled once, run in any number of contexts.

    Syntax errors raise at construction (``JSSyntaxError``). Options:
    ``filename``, ``line_offset``, ``column_offset``, ``display_errors``,
    ``cached_data`` (bytes from :meth:`create_cached_data`: the script is
    then loaded without compiling; ``cached_data_rejected`` says whether it
    was refused) and ``produce_cached_data``. Compiled scripts are cached
    per worker by content: running one again sends only its key.
    """

    def __init__(self, code: str, options: OptionsArg = None, /, *, pool: Pool | None = None,
                 **kwargs: Unpack[ScriptKwargs]) -> None:
        self.code = check_code(code)
        if pool is not None and not is_pool(pool):
            raise InvalidArgTypeError(f'The "pool" argument must be an isolate.Pool. Received {describe(pool)}')
        opts = normalize_options(options, dict(kwargs))
        self._compile = compile_options(opts)
        finish(opts, "Script()")
        self._pool = pool
        self.filename = self._compile.filename
        self.line_offset = self._compile.line_offset
        self.column_offset = self._compile.column_offset
        self.source_map_url = _source_map_url(self.code)
        self._source = ScriptSource.of(self.code, self._compile)
        # As in Node: None (undefined) unless cached data was given / asked for.
        self.cached_data_rejected: bool | None = None
        self.cached_data_produced: bool | None = None
        self.cached_data: bytes | None = None
        if self._compile.cached_data is not None:
            bytecode = open_cached_data(self._source, self._compile.cached_data)
            self.cached_data_rejected = bytecode is None
            self._source.bytecode = bytecode
        if self._source.bytecode is None:
            # Compiled (checked) where asked: a pool of the caller's, else the default one.
            bytecode = _compile(self._pool or default_pool(), self._source, self._compile,
                                bytecode_out=self._compile.produce_cached_data)
            if self._compile.produce_cached_data:
                self._source.bytecode = bytecode
        if self._compile.produce_cached_data:
            self.cached_data = self.create_cached_data()
            self.cached_data_produced = True

    def create_cached_data(self) -> bytes:
        """``script.createCachedData()``: bytes that let ``Script(code, cached_data=...)``
        skip compiling. Signed for this script and engine (see ``isolate.scripts``)."""
        if self._source.bytecode is None:
            self._source.bytecode = _compile(self._pool or default_pool(), self._source, self._compile,
                                             bytecode_out=True)
        return make_cached_data(self._source, self._source.bytecode)

    def run_in_context(self, context: Context | dict[str, Any], options: Mapping[str, Any] | None = None, /,
                       **kwargs: Unpack[RunKwargs]) -> Any:
        ctx = _require_context(context)
        run_opts = _run_options_only(options, kwargs, "script.run_in_context()")
        _note_import(ctx, self._compile, self)
        return ctx._run(self._source, self._compile, run_opts)

    def run_in_new_context(self, context_object: dict[str, Any] | list[Any] | Context | None = None,
                           options: Mapping[str, Any] | None = None, /,
                           **kwargs: Unpack[ScriptNewContextKwargs]) -> Any:
        obj = _check_context_object(context_object)
        _require_options_dict(options)
        opts = normalize_options(options, dict(kwargs))
        run_opts = run_options(opts)
        ctx_opts = context_options(opts, prefix="context_")
        finish(opts, "script.run_in_new_context()")
        pool = self._pool or default_pool()
        context = _lookup(context_object)  # an object that already is a context is used as it is (Node)
        if context is None:
            context = Context._create(pool, obj, name=ctx_opts.name, origin=ctx_opts.origin,
                                      memory_limit=ctx_opts.memory_limit,
                                      code_generation=ctx_opts.code_generation)
            if obj is not None:
                _register(obj, context, strong=False)
        _note_import(context, self._compile, self)
        return context._run(self._source, self._compile, run_opts)

    def run_in_this_context(self, options: Mapping[str, Any] | None = None, /, **kwargs: Unpack[RunKwargs]) -> Any:
        run_opts = _run_options_only(options, kwargs, "script.run_in_this_context()")
        context = _main_context(self._pool or default_pool())
        _note_import(context, self._compile, self)
        return context._run(self._source, self._compile, run_opts)

    def __repr__(self) -> str:
        return f"<Script {self.filename!r}>"

    @classmethod
    def _uncompiled(cls, code: str, compile_opts: CompileOptions) -> "Script":
        """The Script a run_in_* call compiles, as import() callbacks see it (not compiled again)."""
        self = cls.__new__(cls)
        self.code, self._compile, self._pool = code, compile_opts, None
        self.filename, self.line_offset = compile_opts.filename, compile_opts.line_offset
        self.column_offset = compile_opts.column_offset
        self.source_map_url = _source_map_url(code)
        self._source = ScriptSource.of(code, compile_opts)
        self.cached_data_rejected = self.cached_data_produced = self.cached_data = None
        return self


def _source_map_url(code: str) -> str | None:
    import re

    matches = re.findall(r"^[ \t]*//[#@] sourceMappingURL=(\S+)[ \t]*$", code, re.MULTILINE)
    return matches[-1] if matches else None


def _compile(pool: "Pool", source: ScriptSource, compile_opts: CompileOptions, bytecode_out: bool = False):
    """Compile without running, so that syntax errors raise where Node raises them.

    The worker keeps the compiled script by its key, so the first run there
    sends no code. Returns the bytecode when ``bytecode_out``.
    """
    from .scheduler import ANYWHERE

    if not bytecode_out and any(source.key in w.scripts for w in list(pool._workers)):
        return None  # checked and cached already
    timeout_ms = pool.limits.compile_timeout_s * 1000.0
    # On any worker, in a throwaway context of its own (nothing of any tenant's).
    call = pool._scheduler.submit(ANYWHERE, "compile", [0, source.code, {
        "key": source.key, "filename": compile_opts.filename, "line_offset": compile_opts.line_offset,
        "column_offset": compile_opts.column_offset, "display_errors": compile_opts.display_errors,
        "bytecode_out": bytecode_out, "timeout": timeout_ms}], timeout_ms=timeout_ms)
    result = _compile_outcome(pool, call)
    assert call.worker is not None  # it ran
    call.worker.scripts.add(source.key)
    return result if bytecode_out else None


def _compile_outcome(pool: "Pool", call) -> Any:
    """A compile's result; a compile stopped at its bound is a syntax check that ran
    code outside its wrapper (nothing else runs while compiling): a SyntaxError."""
    from .errors import JSSyntaxError, ScriptTimeoutError

    try:
        return pool._scheduler.wait(call)
    except ScriptTimeoutError as exc:
        raise JSSyntaxError("Unexpected token '}' (the code ran past the compile bound of "
                            f"{pool.limits.compile_timeout_s * 1000:.0f} ms: it closes its function wrapper)",
                            name="SyntaxError") from exc


def _note_import(context: Context, compile_opts: CompileOptions, referrer: Any, code: str | None = None) -> None:
    """import_module_dynamically: tell the context what resolves import() in this code (its
    filename names it there) before it runs. Without the option, only a name some earlier
    code registered needs telling (that it has no callback now)."""
    dynamic = compile_opts.import_module_dynamically
    if dynamic is None and compile_opts.filename not in context.__dict__.get("_import_names", ()):
        return
    from .modules import register_script_referrer

    if referrer is None and dynamic is not None:
        referrer = Script._uncompiled(code or "", compile_opts)  # Node passes the compiled vm.Script
    register_script_referrer(context, compile_opts.filename, dynamic, referrer)


def _require_options_dict(options: Any) -> None:
    """Where Node takes only an options object (no filename string)."""
    if options is not None and not isinstance(options, dict):
        raise InvalidArgTypeError(f'The "options" argument must be of type dict. Received {describe(options)}')


def _run_options_only(options: Any, kwargs: Mapping[str, Any], what: str) -> RunOptions:
    key = _repeat_key(what, options, kwargs, kind="run options")
    known = _REPEATED.get(key) if key is not None else None
    if known is not None:
        return known
    _require_options_dict(options)
    opts = normalize_options(options, dict(kwargs))
    run_opts = run_options(opts)
    finish(opts, what)
    if key is not None:
        _remember(key, run_opts)
    return run_opts


def _split_options(options: Any, kwargs: Mapping[str, Any]) -> tuple[dict, CompileOptions, RunOptions]:
    opts = normalize_options(options, dict(kwargs))
    return opts, compile_options(opts), run_options(opts)


def run_in_context(code: str, context: Context | dict[str, Any], options: OptionsArg = None, /,
                   **kwargs: Unpack[RunCodeKwargs]) -> Any:
    """``vm.runInContext``: compile ``code`` and run it in ``context``; returns the completion value."""
    key = _repeat_key(code, options, kwargs, kind="code")
    known = _REPEATED.get(key) if key is not None else None
    ctx = _require_context(context)
    if known is not None:
        compile_opts, run_opts, script = known
    else:
        code = check_code(code)
        opts, compile_opts, run_opts = _split_options(options, kwargs)
        finish(opts, "run_in_context()")
        script = ScriptSource.of(code, compile_opts)
        if key is not None:
            _remember(key, (compile_opts, run_opts, script))
    _note_import(ctx, compile_opts, None, script.code)
    return ctx._run(script, compile_opts, run_opts)


# run_in_context with the same code and keyword options as a recent call (and
# Script.run_in_context with the same options) reuses what validating them and
# hashing the code gave then (~15 us of a round trip). Only when every option is
# a plain scalar (the outcome depends on nothing else); each value is keyed with
# its type, so timeout=True never passes as timeout=1.
_REPEATED: dict = {}
_REPEATED_MAX = 256
_SCALARS = frozenset((int, float, str, bool, type(None)))


def _remember(key: tuple, value: Any) -> None:
    if len(_REPEATED) >= _REPEATED_MAX:
        _REPEATED.clear()
    _REPEATED[key] = value


def _repeat_key(code: Any, options: Any, kwargs: Mapping[str, Any], *, kind: str) -> tuple | None:
    """The cache key of a call (None: not cacheable). ``kind`` keeps the entries of
    run_in_context (code, options) and of a Script's run (its API's name, options) apart."""
    if type(code) is not str or options is not None or len(code) > 4096:
        return None
    items = []
    for name, value in kwargs.items():
        if type(value) not in _SCALARS:
            return None
        items.append((name, type(value), value))
    return (kind, code, *items)


def _run_in_new_context(pool: "Pool", code: str, context_object: Any, options: Any,
                        kwargs: Mapping[str, Any]) -> Any:
    code = check_code(code)
    obj = _check_context_object(context_object)
    opts, compile_opts, run_opts = _split_options(options, kwargs)
    ctx_opts = context_options(opts, prefix="context_")
    finish(opts, "run_in_new_context()")
    existing = _lookup(context_object)
    if existing is not None:
        # Node's runInNewContext contextifies its object with createContext, which
        # returns an object that already is a context as it is: the code runs there.
        _note_import(existing, compile_opts, None, code)
        return existing._run(code, compile_opts, run_opts)
    if run_opts.break_on_sigint or compile_opts.import_module_dynamically is not None:
        # The SIGINT relay, and import(), need the context before the call: create, then run.
        context = Context._create(pool, obj, name=ctx_opts.name, origin=ctx_opts.origin,
                                  memory_limit=ctx_opts.memory_limit, code_generation=ctx_opts.code_generation)
        if obj is not None:
            _register(obj, context, strong=False)
        _note_import(context, compile_opts, None, code)
        return context._run(code, compile_opts, run_opts)
    value, context = Context._run_new(pool, obj, ctx_opts, code, compile_opts, run_opts)
    if obj is not None and context is not None:
        _register(obj, context, strong=False)
    return value


def run_in_new_context(code: str, context_object: dict[str, Any] | list[Any] | Context | None = None,
                       options: OptionsArg = None, /, **kwargs: Unpack[NewContextKwargs]) -> Any:
    """``vm.runInNewContext``: contextify ``context_object`` (or a new dict), run ``code`` in it.

    The dict mirrors the context's globals afterwards. Options as
    ``run_in_context`` plus ``context_name``, ``context_origin``,
    ``context_code_generation``, ``microtask_mode``.
    """
    return _run_in_new_context(default_pool(), code, context_object, options, kwargs)


def _run_in_this_context(pool: "Pool", code: str, options: Any, kwargs: Mapping[str, Any]) -> Any:
    code = check_code(code)
    opts, compile_opts, run_opts = _split_options(options, kwargs)
    finish(opts, "run_in_this_context()")
    context = _main_context(pool)
    _note_import(context, compile_opts, None, code)
    return context._run(code, compile_opts, run_opts)


def _main_context(pool: Pool) -> Context:
    """The pool's main context for code that relies on its state: if the last one
    was lost with its worker, that loss is reported once, then a new one serves."""
    reason = pool._take_main_context_loss()
    if reason is not None:
        from .errors import ContextLostError

        raise ContextLostError(f"the main context (run_in_this_context) is lost: {reason}; "
                               "the next call gets a new one")
    return pool.main_context


def run_in_this_context(code: str, options: OptionsArg = None, /, **kwargs: Unpack[RunCodeKwargs]) -> Any:
    """``vm.runInThisContext``: run in the pool's persistent main context (``Pool.main_context``)."""
    return _run_in_this_context(default_pool(), code, options, kwargs)


def _compile_function(pool: "Pool", code: str, params: Sequence[str], options: Any,
                      kwargs: Mapping[str, Any]) -> JSFunction:
    code = check_code(code)
    if isinstance(params, str) or not isinstance(params, (list, tuple)):
        raise InvalidArgTypeError(f'The "params" argument must be a list of str. Received {describe(params)}')
    # Exact copies: a list or str subclass's own methods never run.
    params = list(list.__iter__(params)) if isinstance(params, list) else list(tuple.__iter__(params))
    for i, param in enumerate(params):
        if not isinstance(param, str):
            raise InvalidArgTypeError(f'The "params[{i}]" argument must be of type str. Received {describe(param)}')
        params[i] = plain(param)
    opts = normalize_options(options, dict(kwargs))
    compile_opts = compile_options(opts, default_filename="")
    parsing_context = opts.pop("parsing_context", None)
    extensions = opts.pop("context_extensions", None)
    finish(opts, "compile_function()")
    context = pool.main_context if parsing_context is None else \
        _require_context(parsing_context, "options.parsingContext")
    if extensions is None:
        extensions = []
    if not isinstance(extensions, (list, tuple)):
        raise InvalidArgTypeError(
            f'The "options.contextExtensions" property must be a list of dict. Received {describe(extensions)}')
    extensions = list(list.__iter__(extensions)) if isinstance(extensions, list) else list(tuple.__iter__(extensions))
    for i, ext in enumerate(extensions):
        if not isinstance(ext, dict):
            raise InvalidArgTypeError(
                f'The "options.contextExtensions[{i}]" property must be of type dict. Received {describe(ext)}')
        extensions[i] = dict(dict.items(ext))
    source = ScriptSource(code, compile_opts.filename, compile_opts.line_offset, compile_opts.column_offset,
                          kind=f"function({','.join(params)})/{len(extensions)}")
    rejected = None
    if compile_opts.cached_data is not None:
        source.bytecode = open_cached_data(source, compile_opts.cached_data)
        rejected = source.bytecode is None
    options = {"key": source.key, "filename": compile_opts.filename, "line_offset": compile_opts.line_offset,
               "column_offset": compile_opts.column_offset, "display_errors": compile_opts.display_errors,
               "extensions": context._encode(list(extensions), holder=True),
               "bytecode_out": compile_opts.produce_cached_data}
    worker = context._worker
    send_code = source.key not in worker.scripts
    if source.bytecode is not None and send_code:
        options["bytecode"] = source.bytecode
    timeout_ms = pool.limits.compile_timeout_s * 1000.0
    options["timeout"] = timeout_ms

    def compile_on(code_or_none):
        context._check()
        call = pool._scheduler.submit(worker, "compile_function", [context._id, code_or_none, list(params), options],
                                      decode=context._decode, timeout_ms=timeout_ms, owner=context)
        return _compile_outcome(pool, call)

    try:
        result = compile_on(code if send_code else None)
    except ScriptNotCached:  # evicted there since: send the code
        worker.scripts.discard(source.key)
        result = compile_on(code)
    worker.scripts.add(source.key)
    fn = result
    if compile_opts.produce_cached_data:
        fn, bytecode = result
        fn.cached_data = make_cached_data(source, bytecode)
        fn.cached_data_produced = True
    if rejected is not None:
        fn.cached_data_rejected = rejected
    if compile_opts.import_module_dynamically is not None or \
            compile_opts.filename in context.__dict__.get("_import_names", ()):
        from .modules import register_script_referrer

        register_script_referrer(context, compile_opts.filename, compile_opts.import_module_dynamically, fn)
    return fn


def compile_function(code: str, params: Sequence[str] = (), options: OptionsArg = None, /,
                     **kwargs: Unpack[CompileFunctionKwargs]) -> JSFunction:
    """``vm.compileFunction``: ``code`` as the body of a function taking ``params``.

    Options: ``filename``, ``line_offset``, ``column_offset``,
    ``parsing_context`` (the context to compile in; default the main
    context), ``context_extensions`` (dicts whose items are in scope).
    """
    return _compile_function(default_pool(), code, params, options, kwargs)


def measure_memory(mode: Literal["summary", "detailed"] = "summary",
                   execution: Literal["default", "eager"] = "default", /,
                   **options: Unpack[MeasureMemoryKwargs]) -> Future[dict[str, Any]]:
    """``vm.measureMemory`` on the default pool: see :meth:`Pool.measure_memory`."""
    return default_pool().measure_memory(mode, execution, **options)


# -- asyncio twins on the default pool --------------------------------------------------------
# They run on threads of their own from the start, so even the default pool's first start
# (a process exec, a few hundred milliseconds) happens off the event loop.
_async_threads = CallThreads(64, "isolate-async-default")


def arun_in_context(code: str, context: Context | dict[str, Any], options: OptionsArg = None, /,
                    **kwargs: Unpack[RunCodeKwargs]) -> AsyncFuture[Any]:
    """The awaitable twin of :func:`run_in_context`: an :class:`isolate.AsyncFuture` at once
    (``await`` it, or hand it to ``asyncio.create_task``); the event loop never waits."""
    return _async_threads.submit(lambda: run_in_context(code, context, options, **kwargs))


def arun_in_new_context(code: str, context_object: dict[str, Any] | None = None, options: OptionsArg = None, /,
                        **kwargs: Unpack[NewContextKwargs]) -> AsyncFuture[Any]:
    """The awaitable twin of :func:`run_in_new_context`, on the default pool."""
    return _async_threads.submit(lambda: _run_in_new_context(default_pool(), code, context_object, options, kwargs))


def arun_in_this_context(code: str, options: OptionsArg = None, /,
                         **kwargs: Unpack[RunCodeKwargs]) -> AsyncFuture[Any]:
    """The awaitable twin of :func:`run_in_this_context`, in the default pool's main context."""
    return _async_threads.submit(lambda: _run_in_this_context(default_pool(), code, options, kwargs))
