"""ES modules in the worker: module records, QuickJS's module hooks, the ``module_*`` methods.

Node's module model (construct, link with a host linker, instantiate, evaluate) mapped onto
QuickJS-ng 0.11, which resolves a module's imports as soon as it compiles (or reads) it,
has no separate "instantiate" step, no status getter and no import attributes:

* **Construction** (``module_compile``): the source is compiled in a scratch context whose
  hooks record every specifier and resolve it to the importing module itself. That checks
  the syntax (a SyntaxError at construction, as in Node), gives ``dependency_specifiers``
  and the bytecode the module's own context reads later. Nothing is added to that context.
* **Linking** (``module_link``): the host has run the linker and knows the module chosen for
  every request of the graph. The worker reads each module into the context from its
  bytecode (QuickJS resolves each import on reading: to a placeholder, for now), then
  compiles a wrapper ``import THROWER; import ROOT``. QuickJS resolves the wrapper's imports
  at once and walks the graph depth first; the hooks follow that walk (:class:`_Resolve`)
  and answer each request with the module the host chose. Evaluating the wrapper links
  (instantiates) the whole graph, then stops at THROWER, a module that only throws, before
  any module of the graph runs: the graph is left *linked*, as after V8's Instantiate, and a
  link error (a missing export) surfaces here, at link time, as in Node.
* **Evaluation** (``module_evaluate``): ``JS_EvalFunction`` runs the module (and what it
  imports), then the promise jobs (top-level await) run under the request's deadline, then
  the outcome is read from the evaluation promise.
* **Status**: read from the module's JSModuleDef (``ModuleAPI``), verified at first use.
* **Synthetic modules**: two generated source modules, an inner one holding one ``var``
  binding per export and a setter (``set_export``), and the public one re-exporting them and
  calling the host's evaluate callback, through its ``import.meta``, when evaluated.
* **Dynamic import()**: QuickJS calls the hooks from a promise job with the name of the
  running script or module; the hooks map it to what the host registered for that name
  (``module_referrer``, or ``module_compile``'s ``dynamic``) and ask the host for the
  module (a ``call_host`` of the context's resolver function).
* **Import attributes**: QuickJS-ng 0.11 parses neither ``import x from 'a' with {...}`` nor
  ``import(a, {with: ...})``. When a compile fails on one of them, :func:`rewrite_attributes`
  moves the attributes into the specifier string (``a`` + ``\\x01`` + JSON) and the hooks take
  them out again; the host sees the specifier and its attributes, as in Node.

Every module value the worker obtains is kept referenced until the context is destroyed:
QuickJS keeps modules in a per-context list without counting it as a reference its garbage
collector sees, so a module held only by that list is freed under it.
"""

from __future__ import annotations

import ctypes
import json
from typing import Any

from ..protocol import ErrorValue, WireError

from . import engine as _engine
from .engine import DEFERRING_CODES, EngineContext, EngineError
from .quickjs import (
    UNDEFINED, EvalFlag, JSValue, LoaderFunc, ModuleAPI, ModuleStatus, NormalizeFunc, PromiseState, Tag,
    quickjs,
)
from .tagged import from_tagged, to_tagged

__all__ = ["ModuleMethods", "rewrite_attributes", "split_specifier"]

# Names of the worker's own modules and the names the hooks resolve requests to. They
# start with \x01 so that no specifier a user writes can name them.
_PLACEHOLDER = b"\x01isolate:placeholder"
_THROWER = b"\x01isolate:thrower"
_STOPPER = b"\x01isolate:stop"
_WRAPPER = b"\x01isolate:link"
_TARGET = b"\x01isolate:target"       # normalized name of a request during a link walk
_IMPORT = b"\x01isolate:import"       # normalized name of a dynamic import()
_INNER_SPEC = "\x01isolate:inner"     # the public synthetic module's import of its inner one
_ATTRIBUTES = "\x01"                 # specifier + _ATTRIBUTES + JSON of the import attributes
_META_EVALUATE = b"\x01evaluate"      # import.meta key of a synthetic module's evaluate callback

# The scratch context used for construction is replaced after this many modules, which it
# keeps (QuickJS never drops a module from its context).
_SCRATCH_MODULES = 500


class _HookError(Exception):
    """Something the hooks cannot answer: becomes a JS exception where QuickJS asked."""


def split_specifier(raw: bytes) -> tuple[str, dict]:
    """``(specifier, attributes)`` of a request as QuickJS gives it (see rewrite_attributes)."""
    text = raw.decode("utf-8", "surrogatepass")
    spec, mark, attrs = text.partition(_ATTRIBUTES)
    if not mark:
        return text, {}
    try:
        attributes = json.loads(attrs)
    except ValueError:
        return text, {}
    if not isinstance(attributes, dict):
        return spec, {}
    return spec, {str(k): v if isinstance(v, str) else str(v) for k, v in attributes.items()}


class ModuleRecord:
    """One module of a context, as the worker knows it (the host's Module proxies it)."""

    __slots__ = ("id", "kind", "name", "raw_specifiers", "specifiers", "attributes", "bytecode",
                 "export_names", "mdef", "inner", "resolution", "evaluate_fn")

    def __init__(self, module_id: int, kind: str, name: str):
        self.id = module_id
        self.kind = kind                  # "source" or "synthetic"
        self.name = name.encode("utf-8", "surrogatepass")
        self.raw_specifiers: list[bytes] = []
        self.specifiers: list[str] = []
        self.attributes: list[dict] = []
        self.bytecode: bytes | None = None
        self.export_names: list[str] = []
        self.mdef: JSValue | None = None  # the module in its context, once linked (or being linked)
        self.inner: JSValue | None = None  # synthetic: the module holding the bindings
        self.resolution: list = []        # the records chosen for raw_specifiers, while linking
        self.evaluate_fn = None           # synthetic: the host's evaluate callback, as a wire value


class _Discover:
    """Hooks mode while compiling or reading a module for its specifiers: every request
    resolves to the importing module itself (QuickJS finds it by name, no loader call).
    Once ``closed``, requests are resolved the same way but no longer recorded."""

    def __init__(self):
        self.specifiers: list[bytes] = []
        self.closed = False


class _Read:
    """Hooks mode while reading a module into its context: every request resolves to the
    context's placeholder module, until the link walk gives the real one."""


class _Frame:
    __slots__ = ("name", "specifiers", "targets", "index")

    def __init__(self, name: bytes, specifiers: list, targets: list):
        self.name, self.specifiers, self.targets, self.index = name, specifiers, targets, 0


class _Resolve:
    """Hooks mode while QuickJS resolves a graph: it walks it depth first (js_resolve_module),
    asking for each request of the module it is resolving, in order, and descending into each
    module not resolved yet right after loading it. This follows the same walk, so a request
    is always known by its position even when two modules share a name."""

    def __init__(self, first: _Frame, fresh: set):
        self.stack = [first]
        self.fresh = fresh                # ids of the records QuickJS has still to resolve
        self.visited: set = set()
        self.pending = None

    def normalize(self, base: bytes, specifier: bytes) -> bytes:
        while self.stack and self.stack[-1].index >= len(self.stack[-1].specifiers):
            self.stack.pop()
        if not self.stack:
            raise _HookError(f"unexpected request for {specifier!r} from {base!r}")
        frame = self.stack[-1]
        i = frame.index
        if frame.name != base or frame.specifiers[i] != specifier:
            raise _HookError(f"the link walk is out of step at {base!r} importing {specifier!r}")
        frame.index += 1
        self.pending = frame.targets[i]
        return _TARGET

    def load(self) -> int:
        target, self.pending = self.pending, None
        if isinstance(target, ModuleRecord):
            if target.mdef is None:
                raise _HookError(f"module {target.name!r} is not in this context")
            if target.id in self.fresh and target.id not in self.visited:
                self.visited.add(target.id)
                self.stack.append(_Frame(target.name, target.raw_specifiers, target.resolution))
            return target.mdef.u
        if isinstance(target, JSValue):
            return target.u
        raise _HookError("no module for this request")


class ModuleSpace:
    """The modules of one context, and the worker's own helper modules there."""

    def __init__(self, engine: EngineContext, mapi: ModuleAPI):
        self.engine = engine
        self.api = quickjs()
        self.mapi = mapi
        self.records: dict[int, ModuleRecord] = {}
        self.referrers: dict[bytes, tuple[int, int]] = {}  # script/module name -> (ref, resolver)
        self.context_ref: tuple[int, int] | None = None     # from create_context
        self._values: list[JSValue] = []   # every module value obtained here: freed with the context
        self._placeholder: JSValue | None = None
        self._thrower: JSValue | None = None
        self._then = self._noop = None     # Promise.prototype.then and a no-op, from before user code

    # -- engine helpers -------------------------------------------------------------
    def native(self):
        return self.engine._native_ready()

    def keep(self, value: JSValue) -> JSValue:
        self._values.append(value)
        return value

    def capture_primordials(self) -> None:
        """Promise.prototype.then, as it is at the context's first module operation."""
        api, rt, ctx = self.native()
        source = b"[Promise.prototype.then, function () {}]"
        pair = api.eval(ctx, source, len(source), b"<isolate-modules>", EvalFlag.TYPE_GLOBAL)
        if pair.tag != Tag.OBJECT:
            if pair.tag == Tag.EXCEPTION:
                api.clear_exception(ctx)
            raise EngineError("could not capture the module primordials")
        self._then = api.get_property_str(ctx, pair, b"0")
        self._noop = api.get_property_str(ctx, pair, b"1")
        api.free_value(ctx, pair)

    def mark_handled(self, promise: JSValue) -> None:
        """Attach a no-op rejection handler: the worker reads the outcome itself, and a
        rejection nobody else handles is not an unhandled rejection of the caller's run."""
        if self._then is None:
            self.capture_primordials()
        api, rt, ctx = self.native()
        args = (JSValue * 2)(UNDEFINED, self._noop)
        # `then` looks up the promise's constructor (species), which a script can
        # hook: engine work that a deadline must be able to stop.
        _engine._running_ops += 1
        try:
            api.update_stack_top(rt)
            derived = EngineContext._js(api, ctx, api.call, ctx, self._then, promise, 2, args)
        finally:
            _engine._running_ops -= 1
        if derived.tag == Tag.EXCEPTION:
            api.clear_exception(ctx)
        else:
            api.free_value(ctx, derived)

    def compile_own(self, source: bytes, name: bytes) -> JSValue:
        """A module of the worker's own, compiled and kept for the context's lifetime."""
        api, rt, ctx = self.native()
        api.update_stack_top(rt)
        value = api.compile(ctx, source, name.decode(), 1, EvalFlag.TYPE_MODULE)
        if value.tag != Tag.MODULE:
            if value.tag == Tag.EXCEPTION:
                text = EngineContext._exception_text(api, ctx)
            else:
                text = f"unexpected value tag {value.tag}"
            raise EngineError(f"isolate: could not compile the worker's module {name!r}: {text}")
        return self.keep(value)

    def placeholder(self) -> JSValue:
        if self._placeholder is None:
            self._placeholder = self.compile_own(b"export {};", _PLACEHOLDER)
        return self._placeholder

    def thrower(self) -> JSValue:
        if self._thrower is None:
            self._thrower = self.compile_own(b"throw undefined;", _THROWER)
        return self._thrower

    def record(self, module_id: int) -> ModuleRecord:
        rec = self.records.get(module_id)
        if rec is None:
            raise _ModuleError(f"no module {module_id} in this context")
        return rec

    def status(self, rec: ModuleRecord) -> str:
        if rec.mdef is None:
            return "unlinked"
        raw = self.mapi.status(rec.mdef.u)
        if raw == ModuleStatus.EVALUATED:
            return "errored" if self.mapi.threw(rec.mdef.u) else "evaluated"
        return {ModuleStatus.UNLINKED: "unlinked", ModuleStatus.LINKING: "linking",
                ModuleStatus.LINKED: "linked", ModuleStatus.EVALUATING: "evaluating",
                # Still awaiting at top level: Node (V8) reports "evaluated" already.
                ModuleStatus.EVALUATING_ASYNC: "evaluated"}.get(raw, "unlinked")

    def close(self) -> None:
        values, self._values = self._values, []
        extra = [v for v in (self._then, self._noop) if v is not None]
        self._then = self._noop = None
        if not (values or extra) or self.engine._native is None:
            return
        api, _, ctx = self.engine._native
        for value in values + extra:
            api.free_value(ctx, value)

    def __del__(self):
        try:
            with _signals_held():  # a finalizer runs anywhere: a stop must not cut it short
                self.close()
        except Exception:
            pass


def _ModuleError(message: str):
    """A module request the worker refuses (the host asked for something impossible)."""
    from .worker import WorkerError

    return WorkerError(WireError.INVALID_PARAMS, message)


def _throw_type_error(space_api, mapi: ModuleAPI, ctx, message: str, code: str | None = None) -> None:
    """Leave a pending TypeError (with Node's ``code``) in the context."""
    api = space_api
    exc = _new_error(api, ctx, "TypeError", message)
    if code is not None:
        text = code.encode()
        api.set_property_str(ctx, exc, b"code", api.new_string_len(ctx, text, len(text)))
    mapi.throw(ctx, exc)


def _new_error(api, ctx, name: str, message: str) -> JSValue:
    """A new error object of a builtin class, made through the C API (no user code runs)."""
    source = f"new {name}({json.dumps(message)})".encode("utf-8", "surrogatepass")
    value = api.eval(ctx, source, len(source), b"<isolate-modules>", EvalFlag.TYPE_GLOBAL)
    if value.tag == Tag.EXCEPTION:
        return api.take_exception(ctx)
    return value


# ---------------------------------------------------------------------------------------
# Import attributes: QuickJS-ng 0.11 parses neither form, so a source that fails to compile
# on one is rewritten to carry them inside the specifier string.
# ---------------------------------------------------------------------------------------

# Dynamic import(a, b): the specifier becomes a + "\x01" + JSON of b.with (or b.assert).
_DYNAMIC_HELPER = ('(function (s, o) { s = "" + s; try { var w = o == null ? undefined : '
                   '(o["with"] !== undefined ? o["with"] : o["assert"]); '
                   'if (w != null && typeof w === "object") s += "\\u0001" + JSON.stringify(w); '
                   '} catch (e) {} return s; })(')


def rewrite_attributes(source: str) -> str | None:
    """``source`` with its import attributes moved into the specifiers, or None when it has
    none. Only used after the source failed to compile as written."""
    tokens = _tokens(source)
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement)
    for i, (kind, start, end) in enumerate(tokens):
        text = source[start:end]
        # Static: `from 'x' with { ... }`, `import 'x' with { ... }` (also `assert`).
        if kind == "str" and i + 2 < len(tokens) and i > 0:
            prev = source[tokens[i - 1][1]:tokens[i - 1][2]]
            nxt = source[tokens[i + 1][1]:tokens[i + 1][2]]
            if prev in ("from", "import") and nxt in ("with", "assert") and \
                    source[tokens[i + 2][1]:tokens[i + 2][2]] == "{":
                close = _matching(tokens, i + 2, source)
                if close is None:
                    continue
                attrs = _literal_object(source, tokens[i + 3:close])
                if attrs is None:
                    continue
                quote = text[0]
                payload = json.dumps(attrs, separators=(",", ":"), ensure_ascii=True)
                payload = payload.replace("\\", "\\\\").replace(quote, "\\" + quote)
                region_end = tokens[close][2]
                newlines = source.count("\n", end, region_end)
                edits.append((start, region_end, text[:-1] + "\\u0001" + payload + quote + "\n" * newlines))
        # Dynamic: `import(a, b)` -> `import(helper(a, b))`.
        if kind == "word" and text == "import" and i + 1 < len(tokens) and \
                source[tokens[i + 1][1]:tokens[i + 1][2]] == "(":
            if i > 0 and source[tokens[i - 1][1]:tokens[i - 1][2]] == ".":
                continue
            close = _matching(tokens, i + 1, source)
            if close is None:
                continue
            depth_commas = _top_level_commas(tokens, i + 1, close, source)
            if not depth_commas:
                continue
            open_end = tokens[i + 1][2]
            edits.append((open_end, open_end, _DYNAMIC_HELPER))
            edits.append((tokens[close][1], tokens[close][1], ")"))
    if not edits:
        return None
    out = []
    last = 0
    for start, end, replacement in sorted(edits, key=lambda e: (e[0], e[1])):
        if start < last:
            return None  # overlapping edits: leave the source as it is
        out.append(source[last:start])
        out.append(replacement)
        last = end
    out.append(source[last:])
    return "".join(out)


_PUNCT_BEFORE_REGEX = set("(,=:[!&|?{};+-*%<>~^") | {"return", "typeof", "case", "do", "else", "in",
                                                     "instanceof", "new", "void", "delete", "throw"}


def _tokens(source: str) -> list[tuple[str, int, int]]:
    """A coarse JS tokenizer: words, strings, punctuation; comments, templates and regular
    expressions skipped as whole tokens. Enough to find brackets and import clauses."""
    out: list[tuple[str, int, int]] = []
    i, n = 0, len(source)
    while i < n:
        c = source[i]
        if c.isspace():
            i += 1
            continue
        if source.startswith("//", i):
            j = source.find("\n", i)
            i = n if j < 0 else j
            continue
        if source.startswith("/*", i):
            j = source.find("*/", i + 2)
            i = n if j < 0 else j + 2
            continue
        if c in "'\"":
            j = i + 1
            while j < n and source[j] != c and source[j] != "\n":
                j += 2 if source[j] == "\\" else 1
            out.append(("str", i, min(j + 1, n)))
            i = j + 1
            continue
        if c == "`":
            j = _skip_template(source, i + 1)
            out.append(("tpl", i, j))
            i = j
            continue
        if c == "/":
            prev = source[out[-1][1]:out[-1][2]] if out else "("
            if not out or prev in _PUNCT_BEFORE_REGEX:
                j = i + 1
                in_class = False
                while j < n and source[j] != "\n":
                    if source[j] == "\\":
                        j += 2
                        continue
                    if source[j] == "[":
                        in_class = True
                    elif source[j] == "]":
                        in_class = False
                    elif source[j] == "/" and not in_class:
                        break
                    j += 1
                j += 1
                while j < n and (source[j].isalnum() or source[j] in "_$"):
                    j += 1
                out.append(("re", i, j))
                i = j
                continue
        if c.isalnum() or c in "_$" or ord(c) > 127:
            j = i + 1
            while j < n and (source[j].isalnum() or source[j] in "_$" or ord(source[j]) > 127):
                j += 1
            out.append(("word", i, j))
            i = j
            continue
        out.append(("punct", i, i + 1))
        i += 1
    return out


def _skip_template(source: str, i: int) -> int:
    n = len(source)
    while i < n:
        c = source[i]
        if c == "\\":
            i += 2
            continue
        if c == "`":
            return i + 1
        if source.startswith("${", i):
            depth = 1
            i += 2
            while i < n and depth:
                if source[i] == "{":
                    depth += 1
                elif source[i] == "}":
                    depth -= 1
                elif source[i] == "`":
                    i = _skip_template(source, i + 1) - 1
                elif source[i] in "'\"":
                    q = source[i]
                    i += 1
                    while i < n and source[i] != q:
                        i += 2 if source[i] == "\\" else 1
                i += 1
            continue
        i += 1
    return n


_OPEN, _CLOSE = "([{", ")]}"


def _matching(tokens, open_index: int, source: str) -> int | None:
    depth = 0
    for k in range(open_index, len(tokens)):
        kind, s, e = tokens[k]
        if kind != "punct":
            continue
        ch = source[s]
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
            if depth == 0:
                return k
    return None


def _top_level_commas(tokens, open_index: int, close_index: int, source: str) -> list[int]:
    depth = 0
    commas = []
    for k in range(open_index, close_index):
        kind, s, e = tokens[k]
        if kind != "punct":
            continue
        ch = source[s]
        if ch in _OPEN:
            depth += 1
        elif ch in _CLOSE:
            depth -= 1
        elif ch == "," and depth == 1:
            commas.append(k)
    return commas


def _literal_object(source: str, tokens) -> dict | None:
    """``{ key: 'value', ... }`` (the tokens between the braces) as a dict, else None."""
    out: dict = {}
    k = 0
    while k < len(tokens):
        kind, s, e = tokens[k]
        if kind == "punct" and source[s] == ",":
            k += 1
            continue
        if kind not in ("word", "str") or k + 2 >= len(tokens) + 0 and k + 2 > len(tokens):
            return None
        key = source[s:e] if kind == "word" else _string_value(source[s:e])
        if k + 2 >= len(tokens) + 1:
            return None
        colon, value = tokens[k + 1], tokens[k + 2] if k + 2 < len(tokens) else None
        if value is None or source[colon[1]:colon[2]] != ":" or value[0] != "str" or key is None:
            return None
        string = _string_value(source[value[1]:value[2]])
        if string is None:
            return None
        out[key] = string
        k += 3
    return out


def _string_value(literal: str) -> str | None:
    """The value of a simple JS string literal (JSON-compatible escapes), else None."""
    if len(literal) < 2 or literal[0] not in "'\"" or literal[-1] != literal[0]:
        return None
    body = literal[1:-1]
    if literal[0] == "'":
        body = body.replace('\\"', '"').replace('"', '\\"').replace("\\'", "'")
    try:
        return json.loads('"' + body + '"')
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------
# The worker's request handlers (mixed into workers.worker.Worker)
# ---------------------------------------------------------------------------------------

class ModuleMethods:
    """``module_*`` requests and the module hooks of every context (see the module docstring)."""

    # Process-wide: whether modules work with this engine build, probed once.
    _module_probe_result: tuple | None = None  # (ModuleAPI or None, problem or None)
    _next_module_id = 1

    # Per worker (set on first use).
    _module_hooks = None       # (normalize, loader) ctypes callbacks, alive as long as the worker
    _module_mode = None        # what the hooks are doing (_Discover, _Read, _Resolve; None: import())
    _import_request = None     # (context_id, base, specifier), from normalize to loader
    _module_scratch = None     # (EngineContext, ModuleSpace) where modules are constructed
    _module_scratch_count = 0

    # -- set-up ----------------------------------------------------------------------
    # Binding the module functions is cheap and done for the first context (every context
    # needs the hooks: import() in a plain script must reject properly). Verifying the
    # JSModuleDef layout costs a few modules in a probe context: done at the first module
    # request only.

    @property
    def _module_mapi(self) -> ModuleAPI | None:
        return ModuleMethods._module_bound

    _module_bound: ModuleAPI | None = None
    _module_bind_tried = False

    def _module_bind(self) -> ModuleAPI | None:
        if not ModuleMethods._module_bind_tried:
            ModuleMethods._module_bind_tried = True
            api = quickjs()
            try:
                ModuleMethods._module_bound = ModuleAPI(api) if api is not None else None
            except Exception:  # a missing symbol: no modules, no import() hooks
                ModuleMethods._module_bound = None
        if self._module_hooks is None:
            self._module_hooks = (NormalizeFunc(self._module_normalize_hook), LoaderFunc(self._module_loader_hook))
        return ModuleMethods._module_bound

    def _module_api(self) -> ModuleAPI:
        """The module C API, verified; raises UNSUPPORTED with the reason otherwise."""
        mapi = self._module_bind()
        if ModuleMethods._module_probe_result is None:
            if mapi is None:
                problem = "the QuickJS C API is unavailable"
            else:
                try:
                    problem = self._module_layout_problem(quickjs(), mapi)
                except Exception as exc:  # any failure: modules are refused, the worker goes on
                    problem = f"{type(exc).__name__}: {exc}"
            ModuleMethods._module_probe_result = (mapi if problem is None else None, problem)
        mapi, problem = ModuleMethods._module_probe_result
        if problem is not None:
            raise self._worker_error(WireError.UNSUPPORTED, f"ES modules are unavailable here: {problem}")
        return mapi

    def _module_layout_problem(self, api, mapi: ModuleAPI) -> str | None:
        """Check the JSModuleDef fields ModuleAPI reads, on modules in every state."""
        engine = EngineContext(lambda *a: {"ok": False, "e": None})
        self._module_install(engine, None)
        space = ModuleSpace(engine, mapi)
        checks: list = []
        try:
            _, _, ctx = space.native()
            fine = ModuleRecord(0, "source", "probe-fine")
            fine.mdef = space.compile_own(b"export let a = 1;", b"probe-fine")
            throws = ModuleRecord(0, "source", "probe-throws")
            throws.mdef = space.compile_own(b"throw 1;", b"probe-throws")
            tla = space.compile_own(b"await 0; export let b = 2;", b"probe-tla")
            checks += [("resolved", mapi.resolved(fine.mdef.u)),
                       ("unlinked", mapi.status(fine.mdef.u) == ModuleStatus.UNLINKED),
                       ("top-level await", mapi.has_tla(tla.u) and not mapi.has_tla(fine.mdef.u))]
            for rec, threw in ((fine, False), (throws, True)):
                if self._module_instantiate(space, rec, set()) is not None:
                    return "a probe module did not link"
                checks.append(("linked", mapi.status(rec.mdef.u) == ModuleStatus.LINKED))
                promise = self._module_run(space, rec)
                space.mark_handled(promise)
                api.free_value(ctx, promise)
                checks.append(("evaluated", mapi.status(rec.mdef.u) == ModuleStatus.EVALUATED))
                checks.append(("threw" if threw else "did not throw", mapi.threw(rec.mdef.u) == threw))
        finally:
            space.close()
        failed = [name for name, ok in checks if not ok]
        return f"the JSModuleDef layout does not match ({', '.join(failed)})" if failed else None

    def _module_install(self, engine: EngineContext, context_id: int | None) -> bool:
        """Install the module hooks on ``engine``'s runtime (``context_id`` is their opaque)."""
        mapi = self._module_bind()
        if mapi is None:
            return False
        _, rt, _ = engine._native_ready()
        mapi.set_loader(rt, *self._module_hooks, context_id)
        return True

    def _module_space(self, state) -> ModuleSpace:
        """The ModuleSpace of a context (made on first use)."""
        space = getattr(state, "modules", None)
        if space is None:
            if not getattr(state, "module_hooks", False):
                self._module_api()  # raises with the reason when modules cannot work here at all
                raise self._worker_error(WireError.UNSUPPORTED, "ES modules are unavailable in this context")
            space = state.modules = ModuleSpace(state.engine, self._module_mapi)
        return space

    def _modules_attach(self, context_id: int, state, options: dict) -> None:
        """Called for every new context: QuickJS's module hooks, which import() needs in
        any code (without a callback registered, it must reject as Node's does)."""
        state.module_hooks = self._module_install(state.engine, context_id)

    @staticmethod
    def _module_deadline(options) -> float:
        """The deadline (ms) of a module request that can run a script's code: the host's
        `timeout` option, else the worker's bound for its own engine work."""
        from .worker import INTERNAL_OP_TIMEOUT_MS, _timeout

        return _timeout(options) or INTERNAL_OP_TIMEOUT_MS

    def _worker_error(self, code: WireError, message: str, data=None):
        from .worker import WorkerError

        return WorkerError(code, message, data)

    # -- the hooks ---------------------------------------------------------------------
    # QuickJS calls these from inside the engine, where a Python exception cannot go
    # through: a stop signal (timeout, interrupt) must not raise in them. Their frames are
    # registered with engine.in_abort_tail, which defers stops while ``defer_stops`` is true
    # (all along, except while the loader waits for the host), until control is back in the
    # engine; a stop caught during that wait is delivered again, to the engine.
    def _module_normalize_hook(self, ctx, base, specifier, opaque):
        defer_stops = True  # noqa: F841 - read by engine.in_abort_tail
        failure = None
        try:
            mode = self._module_mode
            if isinstance(mode, _Discover):
                if not mode.closed:
                    mode.specifiers.append(specifier)
                name = base
            elif isinstance(mode, _Read):
                name = _PLACEHOLDER
            elif isinstance(mode, _Resolve):
                name = mode.normalize(base, specifier)
            else:
                self._import_request = (opaque or 0, base, specifier)
                name = _IMPORT
            return self._module_mapi.strdup(ctx, name)
        except BaseException as exc:  # must not escape into QuickJS
            failure = exc
        return self._module_hook_failed(ctx, failure)

    def _module_loader_hook(self, ctx, name, opaque):
        from .worker import ScriptInterrupted, ScriptTimeout

        defer_stops = True
        failure = None
        try:
            mode = self._module_mode
            if isinstance(mode, _Resolve) and name == _TARGET:
                return mode.load()
            if mode is None and name == _IMPORT and self._import_request is not None:
                request, self._import_request = self._import_request, None
                call = self._module_import_call(ctx, *request)
                if not isinstance(call, tuple):
                    return call  # answered here (no callback: rejected)
                space, context_id, resolver, args, stopper = call
                stop = None
                defer_stops = False  # the host may take long: a stop may end the wait
                try:
                    reply = self._call_host(context_id, resolver, args, False)
                except (ScriptTimeout, ScriptInterrupted) as exc:
                    stop = exc
                defer_stops = True  # noqa: F841 - read by engine.in_abort_tail
                if stop is not None:
                    # Answer with a module that only spins: its evaluation is where the
                    # stop, delivered again, lands, so no JS sees this import() settle.
                    self._reraise_later(stop)
                    stop.__traceback__ = None  # it holds this frame: no cycle for the GC to find later
                    return stopper.u
                return self._module_import_result(ctx, space, reply)
            raise _HookError(f"no module named {name!r}")
        except BaseException as exc:
            failure = exc
        return self._module_hook_failed(ctx, failure)

    def _module_hook_failed(self, ctx, exc: BaseException):
        """A hook failed: QuickJS gets a pending exception (and NULL). A stop (timeout,
        interrupt) that landed in a hook is delivered again once back in the engine."""
        from .worker import ScriptInterrupted, ScriptTimeout

        api = quickjs()
        exc.__traceback__ = None  # it holds the hook's frame: no cycle for the GC to find later
        if isinstance(exc, (ScriptTimeout, ScriptInterrupted)):
            self._reraise_later(exc)
        if not api.has_exception(ctx):
            message = str(exc) if isinstance(exc, _HookError) else f"isolate: {type(exc).__name__}: {exc}"
            self._module_mapi.throw(ctx, _new_error(api, ctx, "InternalError", message))
        return None

    # -- construction ------------------------------------------------------------------
    def _module_scratch_engine(self) -> EngineContext:
        scratch = self._module_scratch
        if scratch is None or self._module_scratch_count >= _SCRATCH_MODULES or not scratch[0].usable:
            if scratch is not None:
                scratch[1].close()
            engine = EngineContext(lambda *a: {"ok": False, "e": None})
            self._module_install(engine, None)
            self._module_scratch = scratch = (engine, ModuleSpace(engine, self._module_api()))
            self._module_scratch_count = 0
        return scratch

    def _on_module_compile(self, context_id: int, code: str | None, options: dict) -> list:
        """SourceTextModule's constructor: ``[module_id, specifiers, attributes, bytecode?]``."""
        state = self._context(context_id)
        space = self._module_space(state)
        self._module_api()
        identifier = options.get("identifier") or "vm:module"
        bytecode = options.get("bytecode")
        engine, scratch = self._module_scratch_engine()
        api, rt, ctx = scratch.native()
        discover = _Discover()
        saved, self._module_mode = self._module_mode, discover
        try:
            api.update_stack_top(rt)
            if bytecode is not None:
                value = api.deserialize(ctx, bytecode)
                if value.tag != Tag.MODULE:
                    if value.tag == Tag.EXCEPTION:
                        api.clear_exception(ctx)
                    raise self._worker_error(WireError.JS_EXCEPTION, "isolate: the cached data could not be loaded",
                                             [ErrorValue("Error", "isolate: the cached data could not be loaded"), None])
                # Reading resolved its imports without marking it resolved: finish that, so
                # that no later compile here walks into it (it would record its requests).
                discover.closed = True
                if scratch.mapi.resolve(ctx, value) < 0:
                    api.clear_exception(ctx)
            else:
                value = self._module_compile_source(scratch, code, identifier, options, discover)
            scratch.keep(value)
            self._module_scratch_count += 1
            if bytecode is None:
                bytecode = api.serialize(ctx, value)
        finally:
            self._module_mode = saved
        rec = ModuleRecord(self._module_new_id(), "source", identifier)
        rec.bytecode = bytecode
        rec.raw_specifiers = discover.specifiers
        for raw in discover.specifiers:
            spec, attrs = split_specifier(raw)
            rec.specifiers.append(spec)
            rec.attributes.append(attrs)
        space.records[rec.id] = rec
        dynamic = options.get("dynamic")
        if dynamic:
            space.referrers[rec.name] = (int(dynamic[0]), int(dynamic[1]))
        result = [rec.id, rec.specifiers, rec.attributes]
        if options.get("bytecode_out"):
            result.append(bytecode)
        return result

    def _module_compile_source(self, scratch: ModuleSpace, code: str, identifier: str, options: dict,
                               discover: _Discover) -> JSValue:
        api, rt, ctx = scratch.native()
        line_offset = max(int(options.get("line_offset", 0)), 0)
        column_offset = int(options.get("column_offset", 0))
        text = _engine._positioned(code, column_offset)
        value = api.compile(ctx, text, identifier, line_offset + 1, EvalFlag.TYPE_MODULE)
        if value.tag == Tag.EXCEPTION:
            rewritten = rewrite_attributes(code) if ("with" in code or "assert" in code) else None
            if rewritten is not None:
                api.clear_exception(ctx)
                discover.specifiers.clear()
                value = api.compile(ctx, _engine._positioned(rewritten, column_offset), identifier,
                                    line_offset + 1, EvalFlag.TYPE_MODULE)
                if value.tag == Tag.EXCEPTION:  # report the error of the source as written
                    api.clear_exception(ctx)
                    discover.specifiers.clear()
                    value = api.compile(ctx, text, identifier, line_offset + 1, EvalFlag.TYPE_MODULE)
        if value.tag == Tag.EXCEPTION:
            scratch.engine._stash_exception(api, ctx)
            # As in Node, the stack names the module's position, without Script's source-line banner.
            reply = scratch.engine.op("finish", False, True, code, identifier, line_offset, column_offset,
                                      bool(options.get("display_errors", False)))
            self._value_of(reply)  # raises the SyntaxError
        return value

    def _module_new_id(self) -> int:
        module_id = ModuleMethods._next_module_id
        ModuleMethods._next_module_id += 1
        return module_id

    def _on_module_synthetic(self, context_id: int, export_names: list, options: dict) -> int:
        """SyntheticModule's constructor: a record; its modules are made when it is linked."""
        state = self._context(context_id)
        space = self._module_space(state)
        self._module_api()
        rec = ModuleRecord(self._module_new_id(), "synthetic", options.get("identifier") or "vm:module")
        rec.export_names = [str(n) for n in export_names]
        rec.evaluate_fn = options.get("evaluate")
        space.records[rec.id] = rec
        return rec.id

    # -- linking -------------------------------------------------------------------------
    def _on_module_link(self, context_id: int, root_id: int, graph: list, options: dict | None = None) -> list:
        """Instantiate ``root_id`` and the not-yet-linked modules of its graph.

        ``graph`` is ``[[module_id, [target_id, ...]], ...]``: for each module to link, the
        module chosen for each of its requests, in order. Replies with the ids of the
        modules now linked; a link error (a missing export) is a JS_EXCEPTION.
        """
        state = self._context(context_id)
        space = self._module_space(state)
        self._module_api()
        pending: list[ModuleRecord] = []
        for module_id, targets in graph:
            rec = space.record(module_id)
            if rec.mdef is not None and space.status(rec) != "unlinked":
                continue  # linked meanwhile (through another graph): nothing to do
            chosen = [space.record(t) for t in targets] if rec.kind == "source" else []
            if len(chosen) != len(rec.raw_specifiers):
                raise _ModuleError(f"module {module_id} has {len(rec.raw_specifiers)} requests, "
                                   f"{len(chosen)} targets were given")
            rec.resolution = chosen
            pending.append(rec)
        root = space.record(root_id)
        if root not in pending and root.mdef is None:
            raise _ModuleError(f"module {root_id} is not in its link graph")
        for rec in pending:
            for target in rec.resolution:
                if target.mdef is None and target not in pending:
                    raise _ModuleError(f"module {target.id} is neither linked nor in the link graph")
        return self._guarded(self._module_deadline(options), lambda: self._module_link(space, root, pending))

    def _module_link(self, space: ModuleSpace, root: ModuleRecord, pending: list) -> list:
        api, rt, ctx = space.native()
        # Synthetic modules call their host callback through a host function: made first,
        # by the bridge, outside the section below.
        callbacks = {rec.id: self._module_host_value(space, rec.evaluate_fn)
                     for rec in pending if rec.kind == "synthetic"}
        error = None
        outcomes: list = []  # evaluation promises to mark handled, once stops can land again
        try:
            with _signals_held():
                saved = self._module_mode
                fresh = set()
                try:
                    space.placeholder()
                    space.thrower()
                    for rec in pending:
                        rec.mdef = None
                        if rec.kind == "source":
                            self._module_mode = _Read()
                            api.update_stack_top(rt)
                            value = api.deserialize(ctx, rec.bytecode)
                            self._module_mode = saved
                            if value.tag != Tag.MODULE:
                                if value.tag == Tag.EXCEPTION:
                                    api.clear_exception(ctx)
                                raise _ModuleError(f"module {rec.id} could not be read into its context")
                            rec.mdef = space.keep(value)
                            fresh.add(rec.id)
                        else:
                            self._module_make_synthetic(space, rec, callbacks.pop(rec.id))
                    error = self._module_instantiate(space, root, fresh, outcomes)
                finally:
                    self._module_mode = saved
                    for fn in callbacks.values():
                        api.free_value(ctx, fn)
                    linked = []
                    for rec in pending:
                        if rec.mdef is not None and space.mapi.status(rec.mdef.u) == ModuleStatus.LINKED:
                            linked.append(rec.id)
                        else:
                            rec.mdef = None  # read again next time (its imports are fixed once resolved)
            for outcome in outcomes:
                space.mark_handled(outcome)  # can run a script's hook: outside the section above
        finally:
            for outcome in outcomes:
                api.free_value(ctx, outcome)
        if error is not None:
            api.set_property_str(ctx, space.engine._stash, b"value", error)
            api.set_property_str(ctx, space.engine._stash, b"thrown", JSValue(1, Tag.BOOL))
            self._value_of(space.engine.op("finish", False, False, None, None, 0, 0, False))
        return linked

    def _module_instantiate(self, space: ModuleSpace, root: ModuleRecord, fresh: set,
                            outcomes: list | None = None) -> JSValue | None:
        """Resolve the fresh modules of root's graph and link it (see the module docstring).
        Returns None, or the link error (an owned value). With ``outcomes``, the wrapper's
        evaluation promise is appended there (owned) for the caller to mark handled."""
        api, rt, ctx = space.native()
        thrower = space.thrower()
        specifiers = [b"\x01isolate:thrower", b"\x01isolate:root"]
        resolve = _Resolve(_Frame(_WRAPPER, specifiers, [thrower, root]), fresh)
        saved, self._module_mode = self._module_mode, resolve
        try:
            api.update_stack_top(rt)
            source = b'import "\x01isolate:thrower"; import "\x01isolate:root";'
            value = api.compile(ctx, source, _WRAPPER.decode(), 1, EvalFlag.TYPE_MODULE)
        finally:
            self._module_mode = saved
        if value.tag != Tag.MODULE:
            text = EngineContext._exception_text(api, ctx) if value.tag == Tag.EXCEPTION else "no module"
            raise _ModuleError(f"isolate: resolving the module graph failed: {text}")
        space.keep(value)
        if fresh - resolve.visited:
            raise _ModuleError("isolate: some modules of the graph were not resolved")
        outcome = api.eval_function(ctx, api.dup_value(ctx, value))  # consumes the duplicate
        if outcome.tag == Tag.EXCEPTION:
            return api.take_exception(ctx)
        if outcomes is not None:
            outcomes.append(outcome)
            return None
        space.mark_handled(outcome)  # rejected by the thrower, as planned
        api.free_value(ctx, outcome)
        return None

    def _module_host_value(self, space: ModuleSpace, value: Any) -> JSValue:
        """A wire value as a JS value of the context (owned), through the bridge."""
        api, rt, ctx = space.native()
        reply = space.engine.op("stash_value", to_tagged(value))
        if not reply.get("ok"):
            self._value_of(reply)
        out = api.get_property_str(ctx, space.engine._stash, b"value")
        api.set_property_str(ctx, space.engine._stash, b"value", UNDEFINED)
        return out

    def _module_make_synthetic(self, space: ModuleSpace, rec: ModuleRecord, evaluate_fn: JSValue) -> None:
        """The two modules of a synthetic module, in its context (see the module docstring).
        ``evaluate_fn`` (borrowed) is the host function its evaluation calls."""
        names = rec.export_names
        setter = _setter_name(names)
        bindings = ", ".join(f"e{i}" for i in range(len(names))) or "_"
        exports = "".join(f"e{i} as {_js_string(n)}, " for i, n in enumerate(names))
        cases = " ".join(f"case {i}: e{i} = v; return;" for i in range(len(names)))
        inner_source = (f"var {bindings};\nexport {{ {exports}s as {_js_string(setter)} }};\n"
                        f"function s(i, v) {{ switch (i) {{ {cases} }} }}\n")
        rec.inner = space.compile_own(inner_source.encode("utf-8", "surrogatepass"), b"\x01isolate:synthetic")
        reexports = ", ".join(_js_string(n) for n in names)
        outer_source = (f"export {{ {reexports} }} from {_js_string(_INNER_SPEC)};\n"
                        f"import.meta[{_js_string(_META_EVALUATE.decode())}]();\n")
        api, rt, ctx = space.native()
        frame = _Frame(rec.name, [_INNER_SPEC.encode()], [rec.inner])
        saved, self._module_mode = self._module_mode, _Resolve(frame, set())
        try:
            api.update_stack_top(rt)
            value = api.compile(ctx, outer_source.encode("utf-8", "surrogatepass"),
                                rec.name.decode("utf-8", "surrogatepass"), 1, EvalFlag.TYPE_MODULE)
        finally:
            self._module_mode = saved
        if value.tag != Tag.MODULE:
            text = EngineContext._exception_text(api, ctx) if value.tag == Tag.EXCEPTION else "no module"
            raise _ModuleError(f"isolate: the synthetic module could not be made: {text}")
        rec.mdef = space.keep(value)
        meta = space.mapi.import_meta(ctx, rec.mdef.u)
        api.set_property_str(ctx, meta, _META_EVALUATE, api.dup_value(ctx, evaluate_fn))
        api.free_value(ctx, meta)

    # -- evaluation ----------------------------------------------------------------------
    def _module_run(self, space: ModuleSpace, rec: ModuleRecord) -> JSValue:
        """JS_EvalFunction on a linked module: its evaluation promise (owned). The engine runs
        the module's synchronous part now; a stop raises out of here."""
        api, rt, ctx = space.native()
        _engine._running_ops += 1
        try:
            api.update_stack_top(rt)
            promise = EngineContext._js(api, ctx, api.eval_function, ctx, api.dup_value(ctx, rec.mdef))
        finally:
            _engine._running_ops -= 1
        if promise.tag == Tag.EXCEPTION:
            raise EngineError(EngineContext._exception_text(api, ctx))
        return promise

    def _module_settle(self, space: ModuleSpace, promise: JSValue) -> int:
        """Run promise jobs until ``promise`` settles (or none is left); its state."""
        api, rt, ctx = space.native()
        job_ctx = ctypes.c_void_p()
        _engine._running_ops += 1
        try:
            while space.mapi.promise_state(ctx, promise) == PromiseState.PENDING and api.is_job_pending(rt):
                api.update_stack_top(rt)
                if EngineContext._js(api, ctx, api.execute_pending_job, rt, ctypes.byref(job_ctx)) < 0:
                    raise EngineError(EngineContext._exception_text(api, ctx))
        finally:
            _engine._running_ops -= 1
        return space.mapi.promise_state(ctx, promise)

    def _on_module_evaluate(self, context_id: int, module_id: int, options: dict) -> list:
        """``module.evaluate()``: ``[settled, globals]``; a JS_EXCEPTION when it throws.
        ``settled`` is false when its top-level await is still waiting once no job is left."""
        state = self._context(context_id)
        space = self._module_space(state)
        rec = space.record(module_id)
        if rec.mdef is None or space.status(rec) in ("unlinked", "linking"):
            raise _ModuleError(f"module {module_id} is not linked")
        mirror = bool(options.get("mirror"))
        api, rt, ctx = space.native()

        def run():
            promise = self._module_run(space, rec)
            try:
                space.mark_handled(promise)
                outcome = self._module_settle(space, promise)
                if outcome == PromiseState.PENDING and options.get("on_settle") is not None:
                    self._module_on_settle(space, promise, options["on_settle"])
                if outcome == PromiseState.REJECTED:
                    api.set_property_str(ctx, space.engine._stash, b"value", space.mapi.promise_result(ctx, promise))
                    api.set_property_str(ctx, space.engine._stash, b"thrown", JSValue(1, Tag.BOOL))
                # finish drains what is left, within this deadline too.
                return outcome != PromiseState.PENDING, space.engine.op("finish", mirror, False, None, None,
                                                                        0, 0, False)
            finally:
                api.free_value(ctx, promise)

        settled, reply = self._guarded(options.get("timeout"), run)
        _, globals_ = self._result(reply, mirror, state)
        return [settled, globals_]

    def _module_on_settle(self, space: ModuleSpace, promise: JSValue, hook: Any) -> None:
        """Still awaiting: call the host's ``hook(true)`` / ``hook(false, error)`` when the
        evaluation settles (in some later run's promise jobs)."""
        api, rt, ctx = space.native()
        fn = self._module_host_value(space, hook)
        try:
            source = b"(function (f) { return [function () { f(true); }, function (e) { f(false, e); }]; })"
            factory = api.eval(ctx, source, len(source), b"<isolate-modules>", EvalFlag.TYPE_GLOBAL)
            args = (JSValue * 1)(fn)
            pair = api.call(ctx, factory, UNDEFINED, 1, args)
            api.free_value(ctx, factory)
            if pair.tag != Tag.OBJECT:
                if pair.tag == Tag.EXCEPTION:
                    api.clear_exception(ctx)
                return
            if space._then is None:
                space.capture_primordials()
            reactions = (JSValue * 2)(api.get_property_str(ctx, pair, b"0"), api.get_property_str(ctx, pair, b"1"))
            _engine._running_ops += 1  # `then` reads the species a script may have hooked
            try:
                derived = EngineContext._js(api, ctx, api.call, ctx, space._then, promise, 2, reactions)
            finally:
                _engine._running_ops -= 1
            for value in (reactions[0], reactions[1], pair, derived):
                if value.tag == Tag.EXCEPTION:
                    api.clear_exception(ctx)
                else:
                    api.free_value(ctx, value)
        finally:
            api.free_value(ctx, fn)

    # -- reading a module ------------------------------------------------------------------
    def _on_module_status(self, context_id: int, module_ids: list) -> list:
        space = self._module_space(self._context(context_id))
        return [space.status(space.record(m)) for m in module_ids]

    # The requests below touch values a script made (a thrown value, a namespace) and so can
    # run its code (getters, hooked builtins): each runs under a deadline (_module_deadline).
    def _on_module_error(self, context_id: int, module_id: int, options: dict | None = None):
        """The value an errored module threw (evaluating it again only replays that)."""
        space = self._module_space(self._context(context_id))
        rec = space.record(module_id)
        if space.status(rec) != "errored":
            raise _ModuleError(f"module {module_id} is not errored")
        api, rt, ctx = space.native()

        def read():
            promise = self._module_run(space, rec)
            try:
                space.mark_handled(promise)
                api.set_property_str(ctx, space.engine._stash, b"value", space.mapi.promise_result(ctx, promise))
            finally:
                api.free_value(ctx, promise)
            return space.engine.op("finish", False, False, None, None, 0, 0, False)

        return self._value_of(self._guarded(self._module_deadline(options), read))

    def _module_handle(self, space: ModuleSpace, value: JSValue, class_name: str):
        """``value`` (owned) as a handle for the host, whatever its kind."""
        api, rt, ctx = space.native()
        if value.tag == Tag.EXCEPTION:
            space.engine._stash_exception(api, ctx)
            return self._value_of(space.engine.op("finish", False, False, None, None, 0, 0, False))
        api.set_property_str(ctx, space.engine._stash, b"value", value)  # consumes it
        return self._value_of(space.engine.op("stash_handle", class_name))

    def _on_module_namespace(self, context_id: int, module_id: int, options: dict | None = None):
        """The module namespace object, as a handle (class ``Module``)."""
        space = self._module_space(self._context(context_id))
        rec = space.record(module_id)
        if space.status(rec) in ("unlinked", "linking"):
            raise _ModuleError(f"module {module_id} is not linked")
        api, rt, ctx = space.native()
        return self._guarded(self._module_deadline(options), lambda: self._module_handle(
            space, space.mapi.namespace(ctx, rec.mdef.u), "Module"))

    def _on_module_import_meta(self, context_id: int, module_id: int, options: dict | None = None):
        """The module's ``import.meta`` object, as a handle, for initializeImportMeta."""
        space = self._module_space(self._context(context_id))
        rec = space.record(module_id)
        if rec.mdef is None:
            raise _ModuleError(f"module {module_id} is not linked")
        api, rt, ctx = space.native()
        return self._guarded(self._module_deadline(options), lambda: self._module_handle(
            space, space.mapi.import_meta(ctx, rec.mdef.u), "Object"))

    def _on_module_set_export(self, context_id: int, module_id: int, name: str, value: Any,
                              options: dict | None = None):
        """``syntheticModule.setExport(name, value)`` on a linked synthetic module."""
        space = self._module_space(self._context(context_id))
        rec = space.record(module_id)
        if rec.kind != "synthetic" or rec.inner is None:
            raise _ModuleError(f"module {module_id} is not a linked synthetic module")
        index = rec.export_names.index(name)
        return self._guarded(self._module_deadline(options),
                             lambda: self._module_set_export(space, rec, index, value))

    def _module_set_export(self, space: ModuleSpace, rec: ModuleRecord, index: int, value: Any):
        api, rt, ctx = space.native()
        reply = space.engine.op("stash_value", to_tagged(value))
        if not reply.get("ok"):
            return self._value_of(reply)
        setter_name = _setter_name(rec.export_names)
        ns = space.mapi.namespace(ctx, rec.inner.u)
        try:
            setter = api.get_property_str(ctx, ns, setter_name.encode())
            stored = api.get_property_str(ctx, space.engine._stash, b"value")
            api.set_property_str(ctx, space.engine._stash, b"value", UNDEFINED)
            args = (JSValue * 2)(JSValue(index, Tag.INT), stored)
            result = api.call(ctx, setter, UNDEFINED, 2, args)
            api.free_value(ctx, stored)
            api.free_value(ctx, setter)
            if result.tag == Tag.EXCEPTION:
                space.engine._stash_exception(api, ctx)
                return self._value_of(space.engine.op("finish", False, False, None, None, 0, 0, False))
            api.free_value(ctx, result)
        finally:
            api.free_value(ctx, ns)
        return None

    # -- dynamic import() ----------------------------------------------------------------
    def _on_module_referrer(self, context_id: int, name: str | None, ref: list | None) -> bool:
        """Register what resolves import() in code named ``name`` (a script's filename) in
        this context, ``[ref, resolver_function_id]``, or nil: no callback (import() rejects).
        ``name`` nil sets the context's own (create_context's), for code nobody registered."""
        space = self._module_space(self._context(context_id))
        entry = (int(ref[0]), int(ref[1])) if ref else None
        if name is None:
            space.context_ref = entry
        else:
            space.referrers[name.encode("utf-8", "surrogatepass")] = entry
        return True

    def _module_import_call(self, ctx, context_id: int, base: bytes, raw: bytes):
        """import() (QuickJS calls the hooks from a promise job): what to ask the host,
        ``(space, context_id, resolver, args, stopper)``; or None, with a TypeError
        (ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING) pending, when nothing resolves it."""
        api = quickjs()
        state = self.contexts.get(context_id)
        if state is None:
            raise _HookError("import() in a context the worker does not know")
        space = self._module_space(state)
        specifier, attributes = split_specifier(raw)
        # What the script or module named ``base`` was compiled with; else the context's own.
        entry = space.referrers[base] if base in space.referrers else space.context_ref
        if entry is None:
            _throw_type_error(api, self._module_mapi, ctx, "A dynamic import callback was not specified.",
                              "ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING")
            return None
        ref, resolver = entry
        # Made beforehand: little may run once a stop is caught.
        stopper = space.compile_own(b"for (;;) {}", _STOPPER)
        return space, context_id, resolver, [ref, specifier, attributes], stopper

    def _module_import_result(self, ctx, space: ModuleSpace, reply: dict) -> int | None:
        """The host's answer to import(): the module's JSModuleDef, or NULL with its error."""
        api = quickjs()
        if not reply.get("ok"):
            out = space.engine.op("stash_value", [reply.get("e"), True])
            if out.get("ok"):
                error = api.get_property_str(ctx, space.engine._stash, b"value")
                api.set_property_str(ctx, space.engine._stash, b"value", UNDEFINED)
                self._module_mapi.throw(ctx, error)
                return None
            raise _HookError("isolate: the import() callback failed")
        module_id = from_tagged(reply.get("v"), True)
        rec = space.records.get(module_id) if isinstance(module_id, int) else None
        if rec is None or rec.mdef is None:
            raise _HookError("isolate: import() was given a module that is not linked in this context")
        return rec.mdef.u

    def _module_retry_script(self, engine: EngineContext, code: str, options: dict) -> bytes | None:
        """A script that failed to compile, compiled again with its import attributes moved
        into the specifiers (see rewrite_attributes); None if that does not help."""
        if "with" not in code and "assert" not in code:
            return None
        rewritten = rewrite_attributes(code)
        if rewritten is None:
            return None
        bytecode, failure = engine.compile_script(
            rewritten, options.get("filename", "evalmachine.<anonymous>"), options.get("line_offset", 0),
            options.get("column_offset", 0), options.get("display_errors", True))
        return bytecode if failure is None else None

    def _module_function_source(self, code: str, params: list) -> str:
        """A function body as compile_function should compile it: with its import attributes
        moved into the specifiers when, as written, it does not compile (see rewrite_attributes)."""
        if "import" not in code or ("with" not in code and "assert" not in code) or self._module_bind() is None:
            return code
        rewritten = rewrite_attributes(code)
        if rewritten is None:
            return code
        engine, _ = self._module_scratch_engine()
        api, rt, ctx = engine._native_ready()
        head = "(function (" + ", ".join(params) + ") {\n"
        for candidate in (code, rewritten):
            text = (head + candidate + "\n})").encode("utf-8", "surrogatepass")
            api.update_stack_top(rt)
            fn = api.compile(ctx, text, "<isolate-check>", 1, EvalFlag.TYPE_GLOBAL)
            if fn.tag == Tag.EXCEPTION:
                api.clear_exception(ctx)
                continue
            api.free_value(ctx, fn)
            return candidate
        return code

    # -- notifications -------------------------------------------------------------------
    def _on_module_release(self, context_id: int, module_ids: list) -> None:
        """The host dropped these modules. Their QuickJS modules stay with the context (QuickJS
        cannot unload a module); only the records go."""
        state = self.contexts.get(context_id)
        space = getattr(state, "modules", None) if state is not None else None
        if space is not None:
            for module_id in module_ids:
                space.records.pop(module_id, None)


def _setter_name(export_names: list) -> str:
    """The inner synthetic module's export of its setter: a name no export uses."""
    name = "\x01set"
    while name in export_names:
        name += "_"
    return name


def _js_string(text: str) -> str:
    """A JS string literal for ``text`` (JSON's escapes are JS's)."""
    return json.dumps(text, ensure_ascii=True)


class _signals_held:
    """Block the stop signals while the worker rewires a context's modules: QuickJS's hooks
    run Python code that must not be cut short. A stop that arrives meanwhile is delivered
    when this ends."""

    def __enter__(self):
        import signal

        self._old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM, signal.SIGUSR1})

    def __exit__(self, *exc):
        import signal

        signal.pthread_sigmask(signal.SIG_SETMASK, self._old)
        return False


DEFERRING_CODES.update({ModuleMethods._module_normalize_hook.__code__, ModuleMethods._module_loader_hook.__code__})
