"""Runs one module case (module_cases.py) through isolate: the Python twin of node_runner.js.

Each step does with isolate's API what the step of the same name does with node:vm in
node_runner.js, and describes the outcome in the same tagged JSON (``describe`` here and
in node_runner.js map values the same way). Linkers, import callbacks, import.meta
initializers and synthetic evaluate callbacks are Python callables here, JS functions there.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import re
from pathlib import Path
from typing import Any, Callable

import isolate

FIXTURES = Path(__file__).resolve().parent / "fixtures"
STEP_TIMEOUT_S = 10.0


# ---- describe: a value isolate returned -> tagged JSON ---------------------------
def describe(v: Any) -> dict:
    if isinstance(v, isolate.Unhashable):
        v = v.value
    if v is isolate.undefined:
        return {"t": "undefined"}
    if v is None:
        return {"t": "null"}
    if isinstance(v, bool):
        return {"t": "boolean", "v": v}
    if isinstance(v, isolate.BigInt):
        return {"t": "bigint", "v": str(int(v))}
    if isinstance(v, int):
        return {"t": "number", "v": v}
    if isinstance(v, float):
        if v != v:
            return {"t": "number", "v": "NaN"}
        if v in (float("inf"), float("-inf")):
            return {"t": "number", "v": "Infinity" if v > 0 else "-Infinity"}
        if v == 0 and str(v).startswith("-"):
            return {"t": "number", "v": "-0"}
        return {"t": "number", "v": int(v) if v.is_integer() and abs(v) <= 2**53 else v}
    if isinstance(v, str):
        return {"t": "string", "v": v}
    if isinstance(v, isolate.JSSymbol):
        return {"t": "symbol", "description": v.description}
    if isinstance(v, (list, tuple)):
        return {"t": "array", "v": [describe(x) for x in v]}
    if isinstance(v, BaseException):  # a JS error value, or isolate's own error (ERR_*) as a value
        return describe_thrown(v)
    if isinstance(v, dict):
        return {"t": "object", "v": [[str(k), describe(x)] for k, x in v.items()]}
    if isinstance(v, (bytes, bytearray, memoryview, isolate.JSTypedArray)):
        return {"t": "bytes"}
    if isinstance(v, isolate.JSPromise):
        return {"t": "promise"}
    if isinstance(v, isolate.JSFunction) or callable(v):
        return {"t": "function"}
    return {"t": "instance"}


_STACKS = False  # the running case compares stack locations


def stack_location(stack: Any) -> str | None:
    """``file:line`` of the first stack frame (columns differ between engines)."""
    if not isinstance(stack, str):
        return None
    m = re.search(r"^\s*at (?:[^\n(]*\()?([^\s()]+):(\d+):\d+\)?$", stack, re.MULTILINE)
    return f"{m.group(1)}:{m.group(2)}" if m else None


def _error_name(exc: BaseException) -> str:
    """The name Node gives the same error (isolate's own errors mirror Node's ERR_* ones)."""
    if isinstance(exc, isolate.JSError):
        return exc.name
    for cls, name in ((isolate.OutOfRangeError, "RangeError"), (isolate.InvalidArgValueError, "TypeError"),
                      (TypeError, "TypeError"), (NameError, "ReferenceError"), (SyntaxError, "SyntaxError"),
                      (RecursionError, "RangeError")):
        if isinstance(exc, cls):
            return name
    return "Error"


def describe_thrown(exc: BaseException) -> dict:
    """What a raised exception (or a JS error value) looks like, in node_runner.js's terms."""
    if isinstance(exc, concurrent.futures.TimeoutError) and not isinstance(exc, isolate.IsolateError):
        return {"t": "error", "name": "HostTimeout", "message": f"no outcome within {STEP_TIMEOUT_S} s"}
    if isinstance(exc, isolate.JSError) and exc.value is not exc:
        return {"t": "throw", "v": describe(exc.value)}
    out: dict = {"t": "error", "name": _error_name(exc)}
    out["message"] = exc.message if isinstance(exc, isolate.JSError) else str(exc)
    code = None
    props = getattr(exc, "props", None) or {}
    if isinstance(exc, isolate.JSError):
        code = props.get("code")
        if not isinstance(code, str) and exc.code != "ERR_JS_EXCEPTION":
            code = exc.code
    else:
        code = getattr(exc, "code", None)
    if isinstance(code, str):
        out["code"] = code
    cause = getattr(exc, "cause", None)
    if cause is None and "cause" in props:
        cause = props["cause"]
    if cause is None and code == "ERR_VM_MODULE_LINK_FAILURE":
        cause = exc.__cause__
    if cause is not None and cause is not isolate.undefined:
        out["cause"] = describe_thrown(cause) if isinstance(cause, BaseException) else {"t": "throw", "v": describe(cause)}
    if _STACKS:
        out["at"] = stack_location(getattr(exc, "stack", None))
    return out


def describe_namespace(ns: Any) -> dict:
    entries = []
    for key in list(ns):
        try:
            entries.append([key, describe(ns[key])])
        except Exception as exc:  # noqa: BLE001 - a binding in its TDZ
            entries.append([key, {"t": "throws", "error": describe_thrown(exc)}])
    return {"t": "namespace", "v": entries}


class _Described:
    """A value a step has already described."""

    def __init__(self, desc: dict):
        self.desc = desc


_SNAKE = {"timeout": "timeout", "breakOnSigint": "break_on_sigint"}


class Run:
    def __init__(self, case: dict, pool: isolate.Pool, use_asyncio: bool):
        self.c = case
        self.pool = pool
        self.use_asyncio = use_asyncio
        self.contexts: dict[str, Any] = {}
        self.sandboxes: dict[str, dict] = {}
        self.modules: dict[str, Any] = {}
        self.slots: dict[str, Any] = {}
        self.hlog: list = []
        self.linker_calls: list = []
        self.dynamic_calls: list = []
        self.construct: dict[str, dict] = {}
        self.default_context = case.get("context", "ctx")

    # -- values and setup ---------------------------------------------------------
    def host_log(self, *args):
        """``hlog(x)`` in every context: appends x to the host log, returns undefined (as in Node)."""
        self.hlog.append(args[0] if args else isolate.undefined)
        return isolate.undefined

    def value(self, spec: Any) -> Any:
        if isinstance(spec, dict):
            if "$raw" in spec:
                return spec["$raw"]
            if "$slot" in spec:
                return self.slots[spec["$slot"]]
        if isinstance(spec, str) and spec.startswith("$fixture:"):
            return str(FIXTURES / spec[len("$fixture:"):])
        return spec

    def setup(self) -> None:
        main = self.pool.main_context
        self.pool.run_in_this_context("globalThis.log = []")
        main["hlog"] = self.host_log
        specs = {"ctx": {}, **(self.c.get("contexts") or {})}
        for name, spec in specs.items():
            sandbox = {"log": [], "hlog": self.host_log, **(spec.get("globals") or {})}
            self.sandboxes[name] = sandbox
            self.contexts[name] = self.pool.create_context(sandbox)
        for name, spec in (self.c.get("modules") or {}).items():
            if isinstance(spec, dict) and spec.get("lazy"):
                continue
            try:
                self.create(name)
            except Exception as exc:  # noqa: BLE001 - construction errors are outcomes
                self.construct[name] = describe_thrown(exc)

    def teardown(self) -> None:
        try:
            self.pool.run_in_this_context("delete globalThis.log; delete globalThis.hlog")
        except Exception:  # noqa: BLE001 - best effort
            pass

    def context_of(self, name: str):
        return None if name == "main" else self.contexts[name]

    def module_spec(self, name: str) -> dict:
        spec = self.c["modules"][name]
        return {"source": spec} if isinstance(spec, str) else spec

    def name_of(self, module: Any) -> str:
        for name, m in self.modules.items():
            if m is module:
                return name
        return "<not a case module>"

    def create(self, name: str):
        spec = self.module_spec(name)
        kwargs: dict[str, Any] = {}
        ctx_spec = spec.get("context")
        if isinstance(ctx_spec, dict):
            kwargs["context"] = self.value(ctx_spec)
        else:
            ctx = self.context_of(ctx_spec or self.default_context)
            if ctx is None:
                kwargs["pool"] = self.pool
            else:
                kwargs["context"] = ctx
        if "identifier" in spec:
            kwargs["identifier"] = self.value(spec["identifier"])
        holder: list = []
        if "synthetic" in spec:
            if "callback" in spec:
                callback = self.value(spec["callback"])
            else:
                actions = spec.get("evaluate") or []

                def callback(*_args):
                    for action in actions:
                        op = action[0]
                        if op == "set":
                            holder[0].set_export(action[1], action[2])
                        elif op == "hlog":
                            self.hlog.append(action[1])
                        elif op == "throw":
                            raise Exception(action[1])
                        else:
                            raise ValueError(f"unknown synthetic action {op}")

            module = isolate.SyntheticModule(self.value(spec["synthetic"]), callback, **kwargs)
        else:
            for key, kw in (("lineOffset", "line_offset"), ("columnOffset", "column_offset"),
                            ("cachedData", "cached_data")):
                if key in spec:
                    kwargs[kw] = self.value(spec[key])
            if "initializeImportMeta" in spec:
                kwargs["initialize_import_meta"] = self.import_meta(spec["initializeImportMeta"], holder)
            if "importModuleDynamically" in spec:
                kwargs["import_module_dynamically"] = self.dynamic(spec["importModuleDynamically"], holder)
            module = isolate.SourceTextModule(self.value(spec["source"]), **kwargs)
        holder.append(module)
        self.modules[name] = module
        return module

    def import_meta(self, spec: dict, holder: list):
        if "$raw" in spec:
            return spec["$raw"]

        def initialize(meta, module):
            self.hlog.append(["import.meta", self.name_of(module), bool(holder) and module is holder[0]])
            if "throw" in spec:
                raise Exception(spec["throw"])
            for key, value in (spec.get("set") or {}).items():
                meta[key] = value

        return initialize

    def dynamic(self, spec: Any, holder: list):
        if spec == "default_loader":
            return isolate.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER
        if isinstance(spec, dict) and "$raw" in spec:
            return spec["$raw"]

        def callback(specifier, referrer, attributes):
            self.dynamic_calls.append([specifier, "self" if holder and referrer is holder[0] else "other",
                                       describe(dict(attributes or {}))])
            if "throw" in spec:
                raise Exception(spec["throw"])
            if "return" in spec:
                return self.value(spec["return"])
            mapping = spec["map"] if isinstance(spec.get("map"), dict) else {}
            module = self.modules[mapping.get(specifier, specifier)]
            return module.namespace if spec.get("namespace") else module

        if spec.get("async"):
            async def callback_later(specifier, referrer, attributes):
                await asyncio.sleep(0)
                return callback(specifier, referrer, attributes)

            return callback_later
        return callback

    def linker(self, spec: Any = None):
        spec = {} if spec is None else spec
        if isinstance(spec, dict) and "$raw" in spec:
            return spec["$raw"]

        def resolve(specifier, referencing, extra):
            self.linker_calls.append([specifier, self.name_of(referencing),
                                      describe(dict(extra["attributes"] or {}))])
            if "throw" in spec:
                raise Exception(spec["throw"])
            if "return" in spec:
                return self.value(spec["return"])
            name = (spec.get("map") or {}).get(specifier, specifier)
            if name not in self.modules and name in (self.c.get("modules") or {}):
                self.create(name)
            return self.modules.get(name)

        if spec.get("async"):
            async def resolve_later(specifier, referencing, extra):
                await asyncio.sleep(0)
                return resolve(specifier, referencing, extra)

            return resolve_later
        return resolve

    # -- settling futures and promises ----------------------------------------------
    async def settle(self, value: Any) -> Any:
        if isinstance(value, BaseException):
            raise value
        if self.use_asyncio:
            if isinstance(value, concurrent.futures.Future):
                return await asyncio.wait_for(asyncio.wrap_future(value), STEP_TIMEOUT_S)
            if isinstance(value, isolate.JSPromise) or inspect.isawaitable(value):
                return await asyncio.wait_for(_awaited(value), STEP_TIMEOUT_S)
            return value
        if isinstance(value, concurrent.futures.Future):
            return value.result(timeout=STEP_TIMEOUT_S)
        if isinstance(value, isolate.JSPromise):
            return value.result()
        return value

    def run_code(self, code: str, ctx_name: str | None = None) -> Any:
        ctx = self.context_of(ctx_name or self.default_context)
        if ctx is None:
            return self.pool.run_in_this_context(code)
        return self.pool.run_in_context(code, ctx)

    async def outcome(self, fn: Callable[[], Any]) -> dict:
        try:
            value = fn()
            if inspect.isawaitable(value) and not isinstance(value, (concurrent.futures.Future, isolate.JSPromise)):
                value = await value
            if isinstance(value, _Described):
                return {"ok": value.desc}
            return {"ok": describe(value)}
        except Exception as exc:  # noqa: BLE001 - every failure is part of the outcome
            return {"err": describe_thrown(exc)}

    def start(self, slot: str, fn: Callable[[], Any]) -> dict:
        try:
            self.slots[slot] = fn()
            return {"ok": {"t": "started"}}
        except Exception as exc:  # noqa: BLE001
            self.slots[slot] = exc
            return {"err": describe_thrown(exc)}

    async def evaluated(self, future: Any) -> Any:
        result = await self.settle(future)
        if result is None or result is isolate.undefined:
            return isolate.undefined
        return _Described({"t": "unexpected evaluate() result", "v": describe(result)})

    # -- steps ------------------------------------------------------------------------
    async def step(self, op: str, args: list) -> dict:
        m = lambda: self.modules[args[0]]  # noqa: E731
        if op == "new":
            return await self.outcome(lambda: (self.create(args[0]), isolate.undefined)[1])
        if op == "status":
            return await self.outcome(lambda: m().status)
        if op == "identifier":
            return await self.outcome(lambda: m().identifier)
        if op == "error":
            return await self.outcome(lambda: m().error)
        if op == "dependency_specifiers":
            return await self.outcome(lambda: m().dependency_specifiers)
        if op == "context_is":
            def context_is():
                ctx = m().context
                return ctx is self.contexts.get(args[1]) or ctx is self.sandboxes.get(args[1])
            return await self.outcome(context_is)
        if op == "namespace":
            return await self.outcome(lambda: _Described(describe_namespace(m().namespace)))
        if op == "ns_get":
            return await self.outcome(lambda: m().namespace[args[1]])
        if op == "ns_call":
            return await self.outcome(lambda: m().namespace[args[1]](*args[2:]))
        if op == "ns_set":
            def ns_set():
                m().namespace[args[1]] = args[2]
                return isolate.undefined
            return await self.outcome(ns_set)
        if op == "ns_has":
            return await self.outcome(lambda: args[1] in m().namespace)
        if op == "set_export":
            def set_export():
                m().set_export(self.value(args[1]), self.value(args[2]))
                return isolate.undefined
            return await self.outcome(set_export)
        if op == "link":
            return await self.outcome(lambda: self.evaluated(m().link(self.linker(args[1] if len(args) > 1 else None))))
        if op == "evaluate":
            opts = {_SNAKE[k]: v for k, v in (args[1] if len(args) > 1 else {}).items()}
            return await self.outcome(lambda: self.evaluated(m().evaluate(**opts)))
        if op == "link_start":
            return self.start(args[1], lambda: m().link(self.linker(args[2] if len(args) > 2 else None)))
        if op == "evaluate_start":
            return self.start(args[1], lambda: m().evaluate())
        if op == "await":
            return await self.outcome(lambda: self.evaluated(self.slots[args[0]]))
        if op == "evaluate_twice":
            return await self.evaluate_twice(m())
        if op == "link_during_link":
            return await self.link_during_link(m(), args[1] if len(args) > 1 else None)
        if op == "cached_data":
            def cached_data():
                self.slots[args[1]] = m().create_cached_data()
                return self.slots[args[1]]
            return await self.outcome(cached_data)
        if op == "eval":
            return await self.outcome(lambda: self.run_code(args[0], args[1] if len(args) > 1 else None))
        if op == "settle":
            return await self.outcome(lambda: self.settle(self.run_code(args[0], args[1] if len(args) > 1 else None)))
        if op == "script":
            return await self.outcome(lambda: self.script(args[0]))
        if op == "run_in_context":
            return await self.outcome(lambda: self.run_in_context(args[0]))
        if op == "compile_function":
            return await self.outcome(lambda: self.compile_function(args[0]))
        raise ValueError(f"case {self.c['id']}: unknown step {op}")

    async def script(self, spec: dict) -> Any:
        holder: list = []
        kwargs: dict[str, Any] = {}
        if "filename" in spec:
            kwargs["filename"] = self.value(spec["filename"])
        if "importModuleDynamically" in spec:
            kwargs["import_module_dynamically"] = self.dynamic(spec["importModuleDynamically"], holder)
        script = isolate.Script(spec["code"], **kwargs)
        holder.append(script)
        ctx = self.context_of(spec.get("context") or self.default_context)
        result = self.pool.run_in_this_context(script) if ctx is None else script.run_in_context(ctx)
        return await self.settle(result)

    async def run_in_context(self, spec: dict) -> Any:
        kwargs: dict[str, Any] = {}
        if "filename" in spec:
            kwargs["filename"] = self.value(spec["filename"])
        if "importModuleDynamically" in spec:
            kwargs["import_module_dynamically"] = self.dynamic(spec["importModuleDynamically"], [])
        ctx = self.context_of(spec.get("context") or self.default_context)
        return await self.settle(isolate.run_in_context(spec["code"], ctx, **kwargs))

    async def compile_function(self, spec: dict) -> Any:
        holder: list = []
        kwargs: dict[str, Any] = {}
        if "filename" in spec:
            kwargs["filename"] = self.value(spec["filename"])
        ctx = self.context_of(spec.get("context") or self.default_context)
        if ctx is not None:
            kwargs["parsing_context"] = ctx
        if "importModuleDynamically" in spec:
            kwargs["import_module_dynamically"] = self.dynamic(spec["importModuleDynamically"], holder)
        fn = isolate.compile_function(spec["code"], [], **kwargs)
        holder.append(fn)
        return await self.settle(fn())

    async def link_during_link(self, module: Any, linker_spec: Any) -> dict:
        """link(), then status, namespace and a second link() before the first has settled."""
        linker = self.linker(linker_spec)
        try:
            first = module.link(linker)
        except Exception as exc:  # noqa: BLE001
            first = exc
        status = module.status
        try:
            module.namespace
            namespace = {"ok": {"t": "available"}}
        except Exception as exc:  # noqa: BLE001
            namespace = {"err": describe_thrown(exc)}
        try:
            second = module.link(linker)
        except Exception as exc:  # noqa: BLE001
            second = exc
        return {"during": {"status": status, "namespace": namespace,
                           "second": await self.outcome(lambda: self.evaluated(second)),
                           "first": await self.outcome(lambda: self.evaluated(first))}}

    async def evaluate_twice(self, module: Any) -> dict:
        errors: list = []
        results: list = []
        for _ in range(2):
            try:
                results.append({"ok": (await self.evaluated(module.evaluate()))})
            except Exception as exc:  # noqa: BLE001
                errors.append(exc)
                results.append({"err": describe_thrown(exc)})
        for r in results:
            if "ok" in r:
                r["ok"] = r["ok"].desc if isinstance(r["ok"], _Described) else describe(r["ok"])
        out: dict = {"first": results[0], "second": results[1]}
        if len(errors) == 2:
            out["same"] = same_error(errors[0], errors[1]) and same_error(errors[0], module.error)
        return {"twice": out}

    async def run(self) -> dict:
        global _STACKS
        _STACKS = "stack" in _as_list(self.c.get("compare"))
        self.setup()
        try:
            steps = []
            for op, *args in self.c.get("steps") or []:
                steps.append([op, await self.step(op, args)])
            out: dict = {"steps": steps}
            if self.construct:
                out["construct"] = self.construct
            out["log"] = describe(self.run_code("log"))
            if self.hlog:
                out["hlog"] = describe(self.hlog)
            if self.linker_calls:
                out["linker_calls"] = self.linker_calls
            if self.dynamic_calls:
                out["dynamic_calls"] = self.dynamic_calls
            return out
        finally:
            self.teardown()


def same_error(a: Any, b: Any) -> bool:
    """The same JS error: the same object, or proxies of one error (same name, message, stack)."""
    if a is b:
        return True
    if isinstance(a, isolate.JSError) and isinstance(b, isolate.JSError):
        if a.value is not a or b.value is not b:
            return a.value == b.value
        return (a.name, a.message, a.stack) == (b.name, b.message, b.stack)
    return False


async def _awaited(value: Any) -> Any:
    return await value


def _as_list(x: Any) -> list:
    if x is None:
        return []
    return [x] if isinstance(x, str) else list(x)


def run_case(case: dict, pool: isolate.Pool) -> dict:
    """The outcome of ``case`` through isolate, described as node_runner.js describes Node's."""
    if case.get("asyncio"):
        return asyncio.run(Run(case, pool, use_asyncio=True).run())
    coro = Run(case, pool, use_asyncio=False).run()
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError(f"case {case['id']}: the synchronous run suspended")
