"""Runs one case of cases.json through isolate: the Python twin of node_runner.js.

Every ``api`` here does what the function of the same name in node_runner.js
does, with isolate's spelling of the same call, and returns the same shape of
description (see describe.py).
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Callable

import isolate

from describe import describe, describe_exception


# ---- host functions: `{"$fn": name}` in a sandbox -------------------------------
def _js_typeof(x: Any) -> str:
    if x is isolate.undefined:
        return "undefined"
    if x is None:
        return "object"
    if isinstance(x, bool):
        return "boolean"
    if isinstance(x, isolate.BigInt):
        return "bigint"
    if isinstance(x, (int, float)):
        return "number"
    if isinstance(x, str):
        return "string"
    if isinstance(x, isolate.JSSymbol):
        return "symbol"
    if callable(x):
        return "function"
    return "object"


def _boom():
    raise Exception("boom from host")


def host_functions() -> dict[str, Callable]:
    """The twins of node_runner.js's hostFunctions(): a fresh set per sandbox."""
    ticks = 0

    def tick():
        nonlocal ticks
        ticks += 1
        return ticks

    return {
        "double": lambda x: x * 2,
        "add": lambda a, b: a + b,
        "greet": lambda name: "hello " + name,
        "sum": lambda *args: sum(args),
        "jsTypeof": _js_typeof,
        "makeObj": lambda: {"a": [1, 2], "b": {"c": "d"}},
        "boom": _boom,
        "tick": tick,
        "innerTimeout": lambda: isolate.run_in_new_context("while (true) {}", {}, {"timeout": 10}),
        "badTimeout": lambda: isolate.run_in_new_context("1", {}, {"timeout": -1}),
    }


_NUMBERS = {"NaN": float("nan"), "Infinity": float("inf"), "-Infinity": float("-inf"), "-0": -0.0}


def materialize(spec: Any, fns: dict[str, Callable]) -> Any:
    """A sandbox spec (JSON plus a few tagged values) as Python values."""
    if isinstance(spec, list):
        return [materialize(x, fns) for x in spec]
    if not isinstance(spec, dict):
        return spec
    if "$fn" in spec:
        return fns[spec["$fn"]]
    if "$undefined" in spec:
        return isolate.undefined
    if "$bigint" in spec:
        return isolate.BigInt(int(spec["$bigint"]))
    if "$number" in spec:
        return _NUMBERS[spec["$number"]]
    if "$date" in spec:
        return _dt.datetime.fromtimestamp(spec["$date"] / 1000, _dt.timezone.utc)
    if "$set" in spec:
        return set(materialize(spec["$set"], fns))
    if "$map" in spec:
        return isolate.JSMap((materialize(k, fns), materialize(v, fns)) for k, v in spec["$map"])
    return {k: materialize(v, fns) for k, v in spec.items()}


def sandbox_of(case: dict, spec: Any = ...) -> Any:
    if spec is ...:
        spec = case.get("sandbox", ...)
    if spec is ... or (isinstance(spec, dict) and "$undefined" in spec):
        return None  # no sandbox: isolate's spelling of `undefined` here
    sandbox = materialize(spec, host_functions())
    if spec is case.get("sandbox"):
        for path in case.get("self_keys") or []:  # "a.b": sandbox["a"]["b"] holds the sandbox
            *parents, last = path.split(".")
            holder = sandbox
            for key in parents:
                holder = holder[key]
            holder[last] = sandbox
    return sandbox


# ---- running one case ------------------------------------------------------------
def outcome(case: dict, fn: Callable[[], Any]) -> dict:
    try:
        return {"result": describe(fn())}
    except Exception as exc:  # noqa: BLE001 - every failure is part of the outcome
        return describe_exception(exc, case)


def steps(case: dict, fn: Callable[[str], Any]) -> dict:
    """Single-code cases give {result|error|throw}; multi-code ones {steps: [...]}."""
    codes = case["code"] if isinstance(case["code"], list) else [case["code"]]
    out = [outcome(case, lambda code=code: fn(code)) for code in codes]
    return {"steps": out} if isinstance(case["code"], list) else out[0]


def with_sandbox(out: dict, sandbox: Any) -> dict:
    if sandbox is not None:
        out["sandbox"] = describe(sandbox)
    return out


def _opts(case: dict, key: str = "options") -> dict:
    # isolate accepts Node's camelCase option names in an options dict.
    return dict(case.get(key) or {})


def run_in_new_context(case: dict) -> dict:
    sandbox = sandbox_of(case)
    out = steps(case, lambda code: isolate.run_in_new_context(code, sandbox, _opts(case)))
    return with_sandbox(out, sandbox)


def run_in_context_sequence(case: dict) -> dict:
    sandbox = sandbox_of(case)
    sandbox = {} if sandbox is None else sandbox
    isolate.create_context(sandbox, _opts(case, "context_options"))
    out = steps(case, lambda code: isolate.run_in_context(code, sandbox, _opts(case)))
    return with_sandbox(out, sandbox)


def run_in_new_context_contextified(case: dict) -> dict:
    sandbox = sandbox_of(case)
    sandbox = {} if sandbox is None else sandbox
    isolate.create_context(sandbox, _opts(case, "context_options"))
    out = steps(case, lambda code: isolate.run_in_new_context(code, sandbox, _opts(case)))
    return with_sandbox(out, sandbox)


def run_in_context_uncontextified(case: dict) -> dict:
    sandbox = sandbox_of(case)
    sandbox = {} if sandbox is None else sandbox
    return steps(case, lambda code: isolate.run_in_context(code, sandbox, _opts(case)))


def create_context(case: dict) -> dict:
    sandbox = sandbox_of(case)
    sandbox = {} if sandbox is None else sandbox
    fns = host_functions()
    out: dict = {"isContextBefore": isolate.is_context(sandbox)}
    contexts = []

    def create():
        contexts.append(isolate.create_context(sandbox, _opts(case, "context_options")))
        return isolate.undefined

    created = outcome(case, create)
    if "result" not in created:
        return {**out, "create": created}
    ctx = contexts[0]
    out["isContextAfter"] = isolate.is_context(sandbox)
    for key, value in (case.get("set") or {}).items():
        ctx[key] = materialize(value, fns)
    for key in case.get("delete") or []:
        del ctx[key]
    out.update(steps(case, lambda code: isolate.run_in_context(code, sandbox, _opts(case))))
    if "get" in case:
        out["get"] = [describe(ctx.get(key, isolate.undefined)) for key in case["get"]]
    return with_sandbox(out, sandbox)


def run_in_this_context(case: dict) -> dict:
    return steps(case, lambda code: isolate.run_in_this_context(code, _opts(case)))


def script(case: dict) -> dict:
    def construct():
        isolate.Script(case["code"], _opts(case, "script_options"))
        return isolate.undefined

    return outcome(case, construct)


def script_run_in_context_multi(case: dict) -> dict:
    sandbox = sandbox_of(case)
    sandbox = {} if sandbox is None else sandbox
    isolate.create_context(sandbox)
    s = isolate.Script(case["code"], _opts(case, "script_options"))
    out = [outcome(case, lambda: s.run_in_context(sandbox, _opts(case))) for _ in range(case["repeat"])]
    return with_sandbox({"steps": out}, sandbox)


def script_run_in_new_context_multi(case: dict) -> dict:
    s = isolate.Script(case["code"], _opts(case, "script_options"))
    sandboxes = [sandbox_of(case, spec) for spec in case["sandboxes"]]
    out = [outcome(case, lambda sb=sb: s.run_in_new_context(sb, _opts(case))) for sb in sandboxes]
    return {"steps": out, "sandboxes": [None if sb is None else describe(sb) for sb in sandboxes]}


def script_run_in_this_context_multi(case: dict) -> dict:
    s = isolate.Script(case["code"], _opts(case, "script_options"))
    return {"steps": [outcome(case, lambda: s.run_in_this_context(_opts(case))) for _ in range(case["repeat"])]}


def compile_function(case: dict) -> dict:
    options = _opts(case)
    sandbox = None
    if "extensions" in case:
        options["contextExtensions"] = [sandbox_of(case, spec) for spec in case["extensions"]]
    if "parsing_sandbox" in case:
        sandbox = sandbox_of(case, case["parsing_sandbox"])
        options["parsingContext"] = isolate.create_context(sandbox)
    functions = []

    def compile_():
        functions.append(isolate.compile_function(case["code"], case.get("params", []), options))
        return isolate.undefined

    compiled = outcome(case, compile_)
    if "result" not in compiled:
        return {"compile": compiled}
    fn = functions[0]
    calls = case.get("calls", [[]])
    out = [outcome(case, lambda args=args: fn(*materialize(args, host_functions()))) for args in calls]
    return with_sandbox({"steps": out}, sandbox)


API: dict[str, Callable[[dict], dict]] = {
    "runInNewContext": run_in_new_context,
    "runInContext-sequence": run_in_context_sequence,
    "runInNewContext-contextified": run_in_new_context_contextified,
    "runInContext-uncontextified": run_in_context_uncontextified,
    "createContext": create_context,
    "runInThisContext": run_in_this_context,
    "Script": script,
    "Script.runInContext-multi": script_run_in_context_multi,
    "Script.runInNewContext-multi": script_run_in_new_context_multi,
    "Script.runInThisContext-multi": script_run_in_this_context_multi,
    "compileFunction": compile_function,
}


def run_case(case: dict) -> dict:
    return API[case["api"]](case)
