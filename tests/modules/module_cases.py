"""The ES module differential cases: each runs in node:vm (node_runner.js) and in isolate
(module_runner.py), and the two descriptions must match (test_module_differential.py).

    python tests/modules/module_cases.py          # prints the cases as JSON (node_runner.js reads that)

A case is a dict:

``id``
    unique name.
``modules``
    ``{name: spec}`` in creation order. A spec is the source text of a SourceTextModule, or a
    dict: ``source`` (a SourceTextModule), or ``synthetic`` (the export names of a
    SyntheticModule) with ``evaluate`` (its callback's actions: ``["set", name, value]``,
    ``["hlog", value]``, ``["throw", message]``) or ``callback`` (a ``$raw`` value in its place).
    Also: ``context`` (a context name, ``"main"``
    for none, or a ``$raw`` value), ``identifier``, ``lineOffset``, ``columnOffset``,
    ``cachedData``, ``initializeImportMeta`` (``{"set": {key: value}}``: the callback logs
    ``["import.meta", module, module is self]`` to hlog, then sets those keys; or
    ``{"throw": message}``),
    ``importModuleDynamically`` (see below), ``lazy`` (created by a ``new`` step, not up front).
    Modules are created up front in order; construction errors go to ``construct``. The
    linker creates a lazy module the first time it resolves to it.
``contexts``
    extra contexts ``{name: {"globals": {...}}}``. Every context (and ``ctx``, the default,
    always there) has ``log`` (an array) and ``hlog`` (a host function appending to the host
    log); modules go into ``ctx`` unless their spec says otherwise. ``context: "main"`` on
    the case makes the main context (no context option) the default.
``steps``
    ``[op, *args]`` run in order; each gives ``{"ok": value}`` or ``{"err": error}``:
    ``new m`` · ``status m`` · ``identifier m`` · ``error m`` · ``dependency_specifiers m`` ·
    ``context_is m ctx`` · ``namespace m`` (every export, or the error reading it) ·
    ``ns_get m k`` · ``ns_has m k`` · ``ns_set m k v`` · ``ns_call m k *args`` ·
    ``set_export m name value`` · ``link m [linker]`` · ``evaluate m [options]`` ·
    ``link_start m slot [linker]`` / ``evaluate_start m slot`` then ``await slot`` ·
    ``evaluate_twice m`` · ``link_during_link m [linker]`` (link(), then status, namespace and a
    second link() in one synchronous stretch) · ``cached_data m slot`` · ``eval code [ctx]`` (its value) ·
    ``settle code [ctx]`` (the value of the promise it gives, or its rejection) ·
    ``script {code, filename, importModuleDynamically, context}``, ``run_in_context {...}``
    and ``compile_function {...}`` (run it / call it, then settle the result).
    A linker is ``{}`` (resolve a specifier to the module of that name), ``{"map": {spec: name}}``,
    ``{"throw": message}``, ``{"return": value}``, ``{"async": true}``, or ``{"$raw": x}``.
    ``importModuleDynamically`` is ``"default_loader"`` (USE_MAIN_CONTEXT_DEFAULT_LOADER),
    ``{"map": true}`` (the module named by the specifier), ``{"map": {spec: name}}``,
    ``{"namespace": true, ...}`` (its namespace instead), ``{"return": v}``, ``{"throw": m}``,
    ``{"async": true, ...}`` (a coroutine / async function), or ``{"$raw": x}``. Calls to linkers and import callbacks are logged
    (``linker_calls``, ``dynamic_calls``).
Values: ``{"$raw": x}`` passes x as is (bad inputs), ``{"$slot": s}`` a value kept by a step,
``"$fixture:name"`` the path of tests/modules/fixtures/name.
``xfail``
    a documented engine limit (QuickJS vs V8) that makes isolate differ; the reason.
``compare``
    ``"stack"``: also compare ``file:line`` of the first stack frame of errors; ``"message"``:
    compare every error message verbatim (for messages Node words itself, outside ``ERR_*``).
``note``, ``source``
    why the case is there / which Node test it follows.

What is compared, on both sides (test_module_differential.normalize): error name, code
and cause; the message when it is Node's own (``ERR_*``: for ERR_INVALID_ARG_* and
ERR_OUT_OF_RANGE only up to ". Received", since the received value is Python's) or the
case's (messages starting ``boom``), never the engine's; linker calls as a multiset (the
order of linker calls is not specified; evaluation order is, and is compared through
``log`` / ``hlog``).
"""

from __future__ import annotations

import json
import sys


def chain_of(n: int) -> dict:
    """n modules in one cycle: m0 -> m1 -> ... -> m{n-1} -> m0, each logging its index."""
    modules = {}
    for i in range(n):
        nxt = (i + 1) % n
        modules[f"m{i}"] = (
            f"import {{ chain as next }} from 'm{nxt}';\n"
            f"log.push({i});\n"
            f"export const v{i} = {i};\n"
            f"export function chain(k) {{ return k === 0 ? {i} : {i} + next(k - 1); }}\n"
        )
    return modules


CASES: list[dict] = [
    # ---------------------------------------------------------------- statuses
    {
        "id": "status_walk_basic",
        "modules": {"root": "log.push('root'); export const x = 1; export default 'd';"},
        "steps": [
            ["status", "root"], ["context_is", "root", "ctx"], ["link", "root"], ["status", "root"],
            ["evaluate", "root"], ["status", "root"], ["namespace", "root"],
        ],
        "source": "test-vm-module-basic: unlinked -> linked -> evaluated",
    },
    {
        "id": "status_errored_on_throw",
        "modules": {"root": "log.push('before'); throw new Error('boom'); log.push('after');"},
        "steps": [["link", "root"], ["evaluate", "root"], ["status", "root"], ["error", "root"]],
        "source": "test-vm-module-errors: checkExecution",
    },
    {
        "id": "status_guards",
        "modules": {"root": "export const a = 1;"},
        "steps": [
            ["error", "root"], ["namespace", "root"], ["evaluate", "root"], ["status", "root"],
            ["link", "root"], ["error", "root"], ["evaluate", "root"], ["error", "root"],
        ],
        "note": "error/namespace/evaluate before their status: ERR_VM_MODULE_STATUS with Node's messages",
        "source": "test-vm-module-errors: checkModuleState",
    },
    {
        "id": "status_throw_non_error",
        "modules": {"root": "log.push(1); throw 5;"},
        "steps": [["link", "root"], ["evaluate", "root"], ["status", "root"], ["error", "root"]],
    },
    {
        "id": "status_strict_mode_reference_error",
        "modules": {"root": "undeclaredGlobal = 1;"},
        "steps": [
            ["link", "root"], ["evaluate", "root"], ["status", "root"], ["error", "root"],
            ["eval", "typeof undeclaredGlobal"],
        ],
        "note": "module code is strict: assigning an undeclared name is a ReferenceError",
    },
    {
        "id": "status_top_level_this_undefined",
        "modules": {"root": "export const t = typeof this; export const g = typeof globalThis.log;"},
        "steps": [["link", "root"], ["evaluate", "root"], ["namespace", "root"]],
    },
    {
        "id": "identifiers_default_and_custom",
        "modules": {
            "a": "export const a = 1;",
            "b": {"synthetic": ["x"]},
            "c": {"source": "", "identifier": "file:///srv/c.mjs"},
            "d": "",
            "e": {"source": "", "context": "c2"},
        },
        "contexts": {"c2": {}},
        "steps": [["identifier", "a"], ["identifier", "b"], ["identifier", "c"], ["identifier", "d"],
                  ["identifier", "e"]],
        "note": "vm:module(N) counts per context, synthetic modules included",
        "source": "test-vm-module-basic: generated identifiers",
    },
    {
        "id": "dependency_specifiers",
        "modules": {
            "root": {"source": "import './x'; import { y } from './y'; export * from './z';\n"
                               "import './x'; export { w } from './w'; import def from './y';"},
            "empty": "const a = 1;",
        },
        "steps": [["dependency_specifiers", "root"], ["dependency_specifiers", "empty"]],
    },
    {
        "id": "syntax_error_at_construction",
        "modules": {
            "bad": "export {",
            "bad_return": "return 5;",
            "bad_dup": "export const a = 1; export const a = 2;",
            "good": "export const ok = true;",
        },
        "steps": [["status", "good"], ["link", "good"], ["evaluate", "good"], ["namespace", "good"]],
        "note": "bad sources fail in the constructor with a SyntaxError (engine messages: compared by name)",
    },
    {
        "id": "stack_names_identifier",
        "modules": {"thrower": {"source": "\n\nthrow new Error('boom-stack');", "identifier": "vm:thrower"}},
        "steps": [["link", "thrower"], ["evaluate", "thrower"]],
        "compare": "stack",
    },
    {
        "id": "stack_names_throwing_dependency",
        "modules": {
            "root": {"source": "import { f } from 'dep';\nf();", "identifier": "vm:root"},
            "dep": {"source": "export function f() {\n  throw new Error('boom-in-dep');\n}", "identifier": "vm:dep"},
        },
        "steps": [["link", "root"], ["evaluate", "root"], ["status", "dep"]],
        "compare": "stack",
        "note": "the first frame names the dependency's identifier and line",
    },
    {
        "id": "stack_line_offset",
        "modules": {"thrower": {"source": "\nthrow new Error('boom-offset');", "identifier": "vm:off",
                                "lineOffset": 10}},
        "steps": [["link", "thrower"], ["evaluate", "thrower"]],
        "compare": "stack",
    },
    # ------------------------------------------------------------------ linking
    {
        "id": "link_default_export",
        "modules": {
            "root": "import five from 'foo'; log.push('root'); export const r = five * 2;",
            "foo": "log.push('foo'); export default 5;",
        },
        "steps": [["link", "root"], ["status", "root"], ["status", "foo"], ["evaluate", "root"],
                  ["status", "foo"], ["namespace", "root"]],
        "source": "test-vm-module-link: simple",
    },
    {
        "id": "link_depth_chain",
        "modules": {
            "barz": "import baz from 'baz'; export default baz;",
            "baz": "import bar from 'bar'; export default bar;",
            "bar": "import foo from 'foo'; export default foo;",
            "foo": "export default 5;",
        },
        "steps": [["link", "barz"], ["evaluate", "barz"], ["namespace", "barz"], ["status", "foo"]],
        "source": "test-vm-module-link: depth",
    },
    {
        "id": "link_diamond_evaluation_order",
        "modules": {
            "a": "import 'b'; import 'c'; log.push('a');",
            "b": "import 'd'; log.push('b');",
            "c": "import 'd'; log.push('c');",
            "d": "log.push('d');",
        },
        "steps": [["link", "a"], ["evaluate", "a"], ["status", "d"]],
        "note": "d is evaluated once, first; linker calls compared as a multiset",
    },
    {
        "id": "link_already_linked_dependency",
        "modules": {
            "foo": "export const v = 'foo';",
            "root": "import { v } from 'foo'; export const w = v + '!';",
        },
        "steps": [["link", "foo"], ["link", "root"], ["evaluate", "root"], ["namespace", "root"]],
        "note": "the linker is not called again for an already-linked module's dependencies",
    },
    {
        "id": "link_linker_throws",
        "modules": {"root": "import 'foo'; import 'bar';", "foo": "", "bar": ""},
        "steps": [["link", "root", {"throw": "boom-linker"}], ["status", "root"], ["status", "foo"]],
        "note": "Node v20 leaves the module 'linking' after a throwing linker",
    },
    {
        "id": "link_returns_non_module",
        "modules": {"r1": "import 'foo';", "r2": "import 'foo';", "r3": "import 'foo';"},
        "steps": [
            ["link", "r1", {"return": {}}], ["status", "r1"],
            ["link", "r2", {"return": None}], ["status", "r2"],
            ["link", "r3", {"return": 5}], ["status", "r3"], ["evaluate", "r1"], ["error", "r1"],
        ],
        "source": "test-vm-module-link: invalidLinkValue",
    },
    {
        "id": "link_returns_other_context_module",
        "modules": {"foo": {"source": "", "context": "c2"}, "root": "import 'foo';"},
        "contexts": {"c2": {"globals": {"a": 1}}},
        "steps": [["link", "foo"], ["link", "root"], ["status", "root"], ["context_is", "foo", "c2"]],
        "source": "test-vm-module-errors: checkLinking",
    },
    {
        "id": "link_returns_errored_module",
        "modules": {"bad": "log.push('bad'); throw new Error('boom-dep');", "root": "import 'bad';"},
        "steps": [["link", "bad"], ["evaluate", "bad"], ["status", "bad"], ["link", "root"],
                  ["status", "root"]],
        "note": "ERR_VM_MODULE_LINK_FAILURE with the dependency's error as cause",
        "source": "test-vm-module-errors: checkLinking",
    },
    {
        "id": "link_missing_export",
        "modules": {"root": "import { nope } from 'foo';", "foo": "export const a = 1;"},
        "steps": [["link", "root"], ["status", "root"]],
        "note": "instantiation fails with a SyntaxError (engine message, compared by name)",
        "source": "test-vm-module-errors: checkExecution",
    },
    {
        "id": "link_twice",
        "modules": {"m": "export const a = 1;", "n": "import 'dep';", "dep": "", "e": ""},
        "steps": [
            ["link", "m"], ["status", "m"], ["link", "m"],
            ["link_during_link", "n", {"async": True}], ["status", "n"],
            ["link", "e"], ["evaluate", "e"], ["link", "e"],
        ],
        "note": "linked: ERR_VM_MODULE_ALREADY_LINKED; linking or evaluated: ERR_VM_MODULE_STATUS",
        "source": "test-vm-module-errors: checkModuleState",
    },
    {
        "id": "link_linker_not_callable",
        "modules": {"a": "", "b": "", "c": "", "d": "import 'x';"},
        "steps": [["link", "a", {"$raw": 5}], ["link", "b", {"$raw": "str"}], ["link", "c", {"$raw": {}}],
                  ["link", "d", {"$raw": None}], ["status", "a"], ["status", "d"]],
        "source": "test-vm-module-errors: checkArgType",
    },
    {
        "id": "link_async_linker",
        "modules": {
            "root": "import { a } from 'x'; import { b } from 'y'; export const sum = a + b;",
            "x": "export const a = 1;",
            "y": "export const b = 2;",
        },
        "steps": [["link", "root", {"async": True}], ["status", "root"], ["evaluate", "root"],
                  ["namespace", "root"]],
        "note": "the linker returns a promise (an awaitable in Python)",
    },
    {
        "id": "link_async_linker_asyncio",
        "asyncio": True,
        "modules": {
            "root": "import { a } from 'x'; export const twice = a * 2;",
            "x": "export const a = 21;",
        },
        "steps": [["link", "root", {"async": True}], ["evaluate", "root"], ["namespace", "root"]],
        "note": "the whole case awaits link()/evaluate() inside an asyncio event loop",
    },
    {
        "id": "link_async_linker_rejects",
        "modules": {"root": "import 'a'; import 'b';", "a": "", "b": ""},
        "steps": [["link", "root", {"async": True, "throw": "boom-async-linker"}], ["status", "root"]],
    },
    {
        "id": "evaluate_after_failed_link",
        "modules": {"root": "import 'a'; import 'b';", "a": "", "b": ""},
        "steps": [["link", "root", {"throw": "boom-linker"}], ["status", "root"], ["evaluate", "root"],
                  ["status", "root"]],
        "note": "a link() that failed leaves the module 'linking': evaluate() is ERR_VM_MODULE_STATUS",
    },
    {
        "id": "evaluate_after_async_linker_rejects",
        "modules": {"root": "import 'a'; import 'b';", "a": "", "b": ""},
        "steps": [["link", "root", {"async": True, "throw": "boom-async-linker"}], ["status", "root"],
                  ["evaluate", "root"], ["status", "root"], ["error", "root"]],
        "note": "every request reaches the async linker (calls a and b), the module ends 'errored', and "
                "evaluate() is still ERR_VM_MODULE_STATUS: it never got linked",
    },
    {
        "id": "evaluate_after_async_linker_rejects_asyncio",
        "asyncio": True,
        "modules": {"root": "import 'a'; import 'b';", "a": "", "b": ""},
        "steps": [["link", "root", {"async": True, "throw": "boom-async-linker"}], ["status", "root"],
                  ["evaluate", "root"], ["status", "root"]],
        "note": "the same, awaited inside an asyncio event loop",
    },
    {
        "id": "link_concurrent_shared_dependency",
        "modules": {
            "r1": "import { v } from 'shared'; log.push('r1'); export const w = v + 1;",
            "r2": "import { v } from 'shared'; log.push('r2'); export const w = v + 2;",
            "shared": "log.push('shared'); export const v = 10;",
        },
        "steps": [["link_start", "r1", "p1", {"async": True}], ["link_start", "r2", "p2", {"async": True}],
                  ["await", "p1"], ["await", "p2"], ["status", "shared"], ["evaluate", "r1"], ["evaluate", "r2"],
                  ["ns_get", "r1", "w"], ["ns_get", "r2", "w"]],
        "note": "two link() calls in flight at once over one shared dependency",
    },
    {
        "id": "link_evaluated_dependency",
        "modules": {"dep": "log.push('dep'); export const v = 'once';", "root": "import { v } from 'dep'; log.push(v);"},
        "steps": [["link", "dep"], ["evaluate", "dep"], ["link", "root"], ["evaluate", "root"], ["status", "dep"]],
        "note": "an already evaluated dependency is not run again",
    },
    {
        "id": "link_failure_deep_in_graph",
        "modules": {
            "root": "import 'mid';",
            "mid": "import { missing } from 'leaf'; export const m = 1;",
            "leaf": "export const present = 1;",
        },
        "steps": [["link", "root"], ["status", "root"], ["status", "mid"], ["status", "leaf"]],
        "note": "a missing export two levels down fails the root's link()",
    },
    {
        "id": "link_import_attributes",
        "modules": {
            "root": "import d from 'data' with { type: 'json' }; import 'plain';\nexport const v = d.a;",
            "data": {"synthetic": ["default"], "evaluate": [["set", "default", {"a": [1, 2]}]]},
            "plain": "",
        },
        "steps": [["link", "root"], ["evaluate", "root"], ["namespace", "root"]],
        "note": "the linker sees extra.attributes ({} when there are none)",
        "source": "test-vm-module-link: asserts",
    },
    {
        "id": "link_specifier_mapping",
        "modules": {
            "root": "import { v } from './lib/v.mjs'; import { v as w } from 'v-alias'; export const same = v === w;",
            "v": "export const v = {};",
        },
        "steps": [["link", "root", {"map": {"./lib/v.mjs": "v", "v-alias": "v"}}], ["evaluate", "root"],
                  ["namespace", "root"]],
        "note": "two specifiers resolved to one module instance",
    },
    # ------------------------------------------------------------------- cycles
    {
        "id": "cycle_two_modules",
        "modules": {
            "foo": "import getFoo from 'bar';\nexport let foo = 42;\nexport default getFoo();",
            "bar": "import { foo } from 'foo';\nexport default function getFoo() { return foo; }",
        },
        "steps": [["link", "foo"], ["status", "foo"], ["status", "bar"], ["evaluate", "foo"],
                  ["ns_get", "foo", "default"], ["status", "bar"]],
        "source": "test-vm-module-link: circular",
    },
    {
        "id": "cycle_tdz_across_cycle",
        "modules": {
            "a": "import { b } from 'b'; log.push('a'); export const a = 'A';",
            "b": "import { a } from 'a'; log.push('b'); export const b = typeof a;",
        },
        "steps": [["link", "a"], ["evaluate", "a"], ["status", "a"], ["status", "b"], ["error", "a"],
                  ["error", "b"]],
        "note": "b reads a's binding before a has run: ReferenceError; the whole cycle is errored",
    },
    {
        "id": "cycle_three_modules_order",
        "modules": {
            "a": "import { fb } from 'b'; log.push('a:' + fb()); export function fa() { return 'fa'; }",
            "b": "import { fc } from 'c'; log.push('b:' + fc()); export function fb() { return 'fb'; }",
            "c": "import { fa } from 'a'; log.push('c:' + fa()); export function fc() { return 'fc'; }",
        },
        "steps": [["link", "a"], ["evaluate", "a"], ["status", "a"], ["status", "b"], ["status", "c"]],
        "note": "function declarations are hoisted, so the cycle runs c, b, a",
    },
    {
        "id": "cycle_star_exports",
        "modules": {
            "root": "import * as a from './a.mjs'; import * as b from './b.mjs';\n"
                    "export const keys = [Object.keys(a), Object.keys(b)];",
            "./a.mjs": {"source": "export * from './b.mjs'; export let fromA;", "identifier": "file:///a.mjs"},
            "./b.mjs": {"source": "export * from './a.mjs'; export let fromB;", "identifier": "file:///b.mjs"},
        },
        "steps": [["link", "root"], ["evaluate", "root"], ["ns_get", "root", "keys"]],
        "source": "test-vm-module-link: circular2",
    },
    {
        "id": "cycle_fifty_modules",
        "modules": {"root": "import { chain } from 'm0'; export const total = chain(49);", **chain_of(50)},
        "steps": [["link", "root"], ["status", "m49"], ["evaluate", "root"], ["namespace", "root"],
                  ["status", "m25"], ["ns_get", "m17", "v17"]],
        "note": "50 modules in one cycle: evaluation runs m49 first, m0 last",
    },
    # ----------------------------------------------------------- re-evaluation
    {
        "id": "reevaluate_evaluated",
        "modules": {"m": "log.push('ran'); export const n = log.length;"},
        "steps": [["link", "m"], ["evaluate", "m"], ["evaluate", "m"], ["evaluate_twice", "m"], ["status", "m"]],
        "source": "test-vm-module-reevaluate",
    },
    {
        "id": "reevaluate_errored_same_error",
        "modules": {"m": "log.push('ran'); throw new Error('boom-once');"},
        "steps": [["link", "m"], ["evaluate_twice", "m"], ["status", "m"], ["error", "m"]],
        "note": "the second evaluate() rethrows the same error without running the module again",
        "source": "test-vm-module-reevaluate",
    },
    {
        "id": "reevaluate_errored_dependency",
        "modules": {"root": "import 'dep'; log.push('root');", "dep": "log.push('dep'); throw new Error('boom-dep');"},
        "steps": [["link", "root"], ["evaluate", "root"], ["status", "root"], ["status", "dep"],
                  ["evaluate", "root"], ["error", "root"]],
    },
    # -------------------------------------------------------- top-level await
    {
        "id": "tla_resolved",
        "modules": {
            "root": "import { late } from 'dep'; log.push('root'); export const v = await Promise.resolve(late + 1);",
            "dep": "log.push('dep start'); await null; log.push('dep end'); export const late = 41;",
        },
        "steps": [["link", "root"], ["evaluate", "root"], ["status", "root"], ["namespace", "root"]],
    },
    {
        "id": "tla_rejected",
        "modules": {"root": "log.push('start'); await Promise.reject(new Error('boom-tla')); log.push('never');"},
        "steps": [["link", "root"], ["evaluate", "root"], ["status", "root"], ["error", "root"],
                  ["evaluate", "root"]],
    },
    {
        "id": "tla_rejected_in_dependency",
        "modules": {
            "root": "import 'dep'; log.push('root');",
            "dep": "log.push('dep'); await null; throw new Error('boom-dep-tla');",
        },
        "steps": [["link", "root"], ["evaluate", "root"], ["status", "root"], ["status", "dep"], ["error", "root"],
                  ["error", "dep"]],
    },
    {
        "id": "tla_pending_released_by_host",
        "modules": {"root": "log.push(1); const v = await new Promise((r) => { globalThis.release = r; });\n"
                            "log.push(v); export { v };"},
        "steps": [["link", "root"], ["evaluate_start", "root", "p"], ["status", "root"], ["eval", "log.length"],
                  ["eval", "release(7)"], ["await", "p"], ["status", "root"], ["namespace", "root"]],
        "note": "Node v20 reports 'evaluated' while the module still awaits",
    },
    {
        "id": "tla_evaluate_twice_concurrently",
        "modules": {"root": "log.push('once'); await new Promise((r) => { globalThis.release = r; }); export const done = true;"},
        "steps": [["link", "root"], ["evaluate_start", "root", "p1"], ["evaluate_start", "root", "p2"],
                  ["eval", "release()"], ["await", "p1"], ["await", "p2"], ["namespace", "root"]],
    },
    # -------------------------------------------------------------- namespaces
    {
        "id": "ns_live_bindings",
        "modules": {
            "counter": "export let count = 0; export function inc() { count += 1; return count; }",
            "user": "import { count, inc } from 'counter'; export function get() { return count; } export { inc };",
        },
        "steps": [["link", "user"], ["evaluate", "user"], ["ns_get", "counter", "count"],
                  ["ns_call", "counter", "inc"], ["ns_call", "user", "inc"], ["ns_get", "counter", "count"],
                  ["ns_call", "user", "get"], ["namespace", "user"]],
    },
    {
        "id": "ns_default_and_aliases",
        "modules": {"m": "const a = 1, b = [2, 'x'];\nexport { a as first, b as second, a };\n"
                         "export default function named() { return 'named'; }\nexport const obj = { k: null };"},
        "steps": [["link", "m"], ["evaluate", "m"], ["namespace", "m"], ["ns_call", "m", "default"],
                  ["ns_has", "m", "first"], ["ns_has", "m", "named"]],
    },
    {
        "id": "ns_reexports",
        "modules": {
            "root": "export * from 'a'; export * from 'b'; export { y as z } from 'b'; export * as nsA from 'a';",
            "a": "export const x = 'a.x'; export const onlyA = 1; export default 'a-default';",
            "b": "export const x = 'b.x'; export const y = 'b.y';",
            "user": "import { nsA, z } from 'root'; import * as all from 'root';\n"
                    "export const keys = [Object.keys(nsA), Object.keys(all), z, nsA === all.nsA];",
        },
        "steps": [["link", "user"], ["evaluate", "user"], ["ns_get", "user", "keys"], ["ns_has", "root", "x"],
                  ["ns_has", "root", "default"], ["ns_has", "root", "nsA"], ["ns_get", "root", "onlyA"]],
        "note": "x is ambiguous between two export * and is left out; default is never star-exported",
    },
    {
        "id": "ns_before_evaluation",
        "modules": {"m": "export let a = 1; export function f() {} export var v = 3; export class C {}\n"
                         "export default 7;"},
        "steps": [["link", "m"], ["namespace", "m"], ["evaluate", "m"], ["namespace", "m"]],
        "note": "after link: let/const/class/default in their TDZ (ReferenceError), var undefined, functions ready",
    },
    {
        "id": "ns_read_only",
        "modules": {"m": "export let a = 1;"},
        "steps": [["link", "m"], ["evaluate", "m"], ["ns_set", "m", "a", 2], ["ns_set", "m", "zzz", 2],
                  ["ns_get", "m", "a"]],
        "note": "namespace objects cannot be written (TypeError in strict code)",
    },
    {
        "id": "ns_of_errored_module",
        "modules": {"m": "export let a = 1; export const f = () => 2;\nthrow new Error('boom-half');\nexport let b = 2;"},
        "steps": [["link", "m"], ["evaluate", "m"], ["status", "m"], ["namespace", "m"], ["ns_call", "m", "f"]],
        "note": "the namespace of an errored module: bindings initialised before the throw, the rest in their TDZ",
    },
    {
        "id": "ns_self_import",
        "modules": {"self": "import * as me from 'self';\n"
                            "log.push(Reflect.ownKeys(me).filter((k) => typeof k === 'string').join());\n"
                            "export const a = 1; log.push(me.a); export function f() { return me === undefined; }"},
        "steps": [["link", "self"], ["evaluate", "self"], ["ns_call", "self", "f"], ["status", "self"]],
        "note": "a module importing itself: a cycle of one",
    },
    {
        "id": "ns_default_export_names",
        "modules": {
            "fn": "export default function () { return 1; }",
            "cls": "export default class {}",
            "arrow": "export default () => 3;",
            "expr": "export default (1 + 2);",
            "root": "import f from 'fn'; import C from 'cls'; import a from 'arrow'; import e from 'expr';\n"
                    "export const names = [f.name, C.name, a.name, typeof C, e];",
        },
        "steps": [["link", "root"], ["evaluate", "root"], ["ns_get", "root", "names"]],
        "note": "anonymous default exports are named 'default'",
    },
    {
        "id": "main_context_module",
        "context": "main",
        "modules": {"root": "import { v } from 'dep'; log.push('root'); export const w = v * 3;",
                    "dep": "log.push('dep'); export const v = 2;"},
        "steps": [["link", "root"], ["evaluate", "root"], ["namespace", "root"], ["status", "dep"]],
        "note": "modules without a context run in the main context",
    },
    # ---------------------------------------------------------------- import.meta
    {
        "id": "import_meta_initializer",
        "modules": {
            "m": {"source": "export const first = import.meta;\nexport const same = first === import.meta;\n"
                            "export const proto = Object.getPrototypeOf(import.meta);\n"
                            "export const keys = Object.keys(import.meta);",
                  "initializeImportMeta": {"set": {"url": "vm:m", "prop": 42, "nested": {"a": [1]}}}},
            "untouched": {"source": "export const x = 1;", "initializeImportMeta": {"set": {"never": True}}},
        },
        "steps": [["link", "m"], ["link", "untouched"], ["evaluate", "m"], ["evaluate", "untouched"],
                  ["namespace", "m"]],
        "note": "called once, lazily, on first access to import.meta, with the module itself",
        "source": "test-vm-module-import-meta",
    },
    {
        "id": "import_meta_default",
        "modules": {"m": "export const t = typeof import.meta; export const keys = Object.keys(import.meta);\n"
                         "export const proto = Object.getPrototypeOf(import.meta);"},
        "steps": [["link", "m"], ["evaluate", "m"], ["namespace", "m"]],
    },
    {
        "id": "import_meta_invalid_initializer",
        "modules": {
            "a": {"source": "", "initializeImportMeta": {"$raw": 5}},
            "b": {"source": "", "initializeImportMeta": {"$raw": "string"}},
            "c": {"source": "", "initializeImportMeta": {"$raw": {}}},
        },
        "steps": [],
        "source": "test-vm-module-import-meta: testInvalid",
    },
    {
        "id": "import_meta_initializer_timing",
        "xfail": "engine limit: QuickJS-ng has no host hook for the first read of import.meta, so isolate calls initialize_import_meta when the module is linked (isolate/modules.py, SourceTextModule._on_linked), not lazily during evaluation as V8/Node do",
        "modules": {"m": {"source": "hlog('evaluating'); const meta = import.meta; hlog('read ' + meta.k);",
                          "initializeImportMeta": {"set": {"k": "v"}}}},
        "steps": [["link", "m"], ["eval", "hlog('linked')"], ["evaluate", "m"]],
        "note": "the initializer runs at the first evaluation of import.meta, not at link",
    },
    {
        "id": "import_meta_initializer_throws",
        "xfail": "engine limit: QuickJS-ng has no host hook for the first read of import.meta, so isolate calls initialize_import_meta when the module is linked (isolate/modules.py, SourceTextModule._on_linked), not lazily during evaluation as V8/Node do",
        "modules": {"m": {"source": "log.push('before'); export const x = import.meta.x; log.push('after');",
                          "initializeImportMeta": {"throw": "boom-meta"}}},
        "steps": [["link", "m"], ["evaluate", "m"], ["status", "m"], ["error", "m"]],
        "note": "an initializer that throws makes the access to import.meta throw",
    },
    # ------------------------------------------------------------ dynamic import
    {
        "id": "dynamic_import_missing_in_module",
        "modules": {"m": "globalThis.p = import('foo'); p.catch(() => {}); log.push('evaluated');"},
        "steps": [["link", "m"], ["evaluate", "m"], ["settle", "p"]],
        "source": "test-vm-module-dynamic-import: testNoCallback",
    },
    {
        "id": "dynamic_import_missing_in_script",
        "modules": {},
        "steps": [["script", {"code": "import('foo')"}],
                  ["compile_function", {"code": "return import('foo')"}]],
    },
    {
        "id": "dynamic_import_module_callback",
        "modules": {
            "foo": "export const a = 1; export default 'foo-default';",
            "m": {"source": "globalThis.p = import('foo').then((ns) => [ns.a, ns.default, Object.keys(ns),\n"
                            "  Object.prototype.toString.call(ns)]);\np.catch(() => {});",
                  "importModuleDynamically": {"map": True}},
        },
        "steps": [["link", "foo"], ["evaluate", "foo"], ["link", "m"], ["evaluate", "m"], ["settle", "p"]],
        "source": "test-vm-module-dynamic-import: test",
    },
    {
        "id": "dynamic_import_script_callback",
        "modules": {"foo": "export const a = 'A';"},
        "steps": [["link", "foo"], ["evaluate", "foo"],
                  ["script", {"code": "import('foo').then((ns) => ns.a + '2')",
                              "importModuleDynamically": {"map": True}}],
                  ["script", {"code": "Promise.all([import('foo'), import('foo')]).then(([x, y]) => x === y)",
                              "importModuleDynamically": {"map": True}}]],
        "note": "the callback gets (specifier, the script, {}); one namespace object per module",
        "source": "test-vm-module-dynamic-import: test",
    },
    {
        "id": "dynamic_import_script_callback_attributes",
        "modules": {"foo": "export const a = 'A';"},
        "steps": [["link", "foo"], ["evaluate", "foo"],
                  ["script", {"code": "import('foo', { with: { key: 'value' } }).then((ns) => ns.a)",
                              "importModuleDynamically": {"map": True}}]],
        "note": "the callback gets the import attributes",
        "source": "test-vm-module-dynamic-import: test",
    },
    {
        "id": "dynamic_import_compile_function_callback",
        "modules": {"foo": "export const a = 3;"},
        "steps": [["link", "foo"], ["evaluate", "foo"],
                  ["compile_function", {"code": "return import('x').then((ns) => ns.a * 2)",
                                        "importModuleDynamically": {"map": {"x": "foo"}}}]],
        "source": "test-vm-module-basic: compileFunction importModuleDynamically",
    },
    {
        "id": "dynamic_import_run_in_context",
        "modules": {"foo": "export const a = 'from run_in_context';"},
        "steps": [["link", "foo"], ["evaluate", "foo"],
                  ["run_in_context", {"code": "import('foo').then((ns) => ns.a)",
                                      "importModuleDynamically": {"map": True}}],
                  ["run_in_context", {"code": "import('foo')"}]],
        "note": "runInContext's own importModuleDynamically option (and without it)",
    },
    {
        "id": "dynamic_import_promise_of_the_calling_realm",
        "modules": {
            "mod1": "export const a = 1;",
            "mod2": {"source": "const promise = import('mod1');\n"
                               "log.push(Object.getPrototypeOf(promise) === Promise.prototype);\n"
                               "log.push((await promise).a);",
                     "importModuleDynamically": {"map": True}},
        },
        "steps": [["link", "mod1"], ["evaluate", "mod1"],
                  ["script", {"code": "const promise = import('mod1');\n"
                                      "Object.getPrototypeOf(promise) === Promise.prototype\n"
                                      "  ? promise.then((ns) => ['same realm', ns.a]) : 'other realm';",
                              "importModuleDynamically": {"map": True}}],
                  ["link", "mod2"], ["evaluate", "mod2"], ["status", "mod1"]],
        "note": "import() returns a promise of the context it was called in, not of the callback's "
                "(mod1 is evaluated first: Node v20 does not evaluate a module import() is given)",
        "source": "test-vm-module-dynamic-import-promise",
    },
    {
        "id": "dynamic_import_async_callback",
        "modules": {"foo": "export const a = 'async';"},
        "steps": [["link", "foo"], ["evaluate", "foo"],
                  ["script", {"code": "import('foo').then((ns) => ns.a)",
                              "importModuleDynamically": {"map": True, "async": True}}]],
        "note": "the callback returns a promise (a coroutine in Python)",
    },
    {
        "id": "dynamic_import_awaited_in_tla",
        "modules": {
            "foo": "export const a = 20;",
            "m": {"source": "log.push('start'); const ns = await import('foo'); log.push('got ' + ns.a);\n"
                            "export const b = ns.a + 1;",
                  "importModuleDynamically": {"map": True}},
        },
        "steps": [["link", "foo"], ["evaluate", "foo"], ["link", "m"], ["evaluate", "m"], ["namespace", "m"]],
        "note": "evaluation waits for the import() callback",
    },
    {
        "id": "dynamic_import_callback_returns_namespace",
        "modules": {"foo": "export const a = 'via namespace';"},
        "steps": [["link", "foo"], ["evaluate", "foo"],
                  ["script", {"code": "import('foo').then((ns) => ns.a)",
                              "importModuleDynamically": {"map": True, "namespace": True}}]],
    },
    {
        "id": "dynamic_import_callback_bad_return",
        "modules": {"m": {"source": "globalThis.p = import('foo'); p.catch(() => {});",
                          "importModuleDynamically": {"return": 5}}},
        "steps": [["link", "m"], ["evaluate", "m"], ["settle", "p"],
                  ["script", {"code": "import('bar')", "importModuleDynamically": {"return": None}}]],
        "source": "test-vm-module-dynamic-import: testInvalid",
    },
    {
        "id": "dynamic_import_callback_throws",
        "modules": {},
        "steps": [["script", {"code": "import('x').then(() => 'resolved', (e) => [e.name, e.message])",
                              "importModuleDynamically": {"throw": "boom-dyn"}}]],
    },
    {
        "id": "dynamic_import_unlinked_module",
        "modules": {"un": "export const z = 1;"},
        "steps": [["script", {"code": "import('un')", "importModuleDynamically": {"map": True}}],
                  ["status", "un"]],
        "note": "the namespace of an unlinked module is not available: ERR_VM_MODULE_STATUS",
    },
    {
        "id": "dynamic_import_synthetic_module",
        "modules": {
            "s": {"synthetic": ["default", "n"], "evaluate": [["set", "default", "syn"], ["set", "n", 5]]},
            "m": {"source": "globalThis.p = import('s').then((ns) => [ns.default, ns.n, Object.keys(ns)]);\n"
                            "p.catch(() => {});",
                  "importModuleDynamically": {"map": True}},
        },
        "steps": [["link", "s"], ["evaluate", "s"], ["link", "m"], ["evaluate", "m"], ["settle", "p"]],
    },
    {
        "id": "dynamic_import_callback_errored_module",
        "modules": {"bad": "throw new Error('boom-dyn-dep');"},
        "steps": [["link", "bad"], ["evaluate", "bad"],
                  ["script", {"code": "import('bad')", "importModuleDynamically": {"map": True}}]],
        "note": "importing an errored module rejects with its error",
    },
    {
        "id": "dynamic_import_invalid_option",
        "modules": {"m": {"source": "", "importModuleDynamically": {"$raw": "hucairz"}}},
        "steps": [["script", {"code": "1", "importModuleDynamically": {"$raw": False}}]],
        "source": "test-vm-module-errors / test-vm-module-dynamic-import: invalid importModuleDynamically",
    },
    {
        "id": "dynamic_import_default_loader_file",
        "modules": {},
        "steps": [["script", {"code": "import('./dep.mjs').then((ns) => [ns.answer, ns.default, "
                                      "Object.keys(ns), Object.prototype.toString.call(ns)])",
                              "filename": "$fixture:main.js", "importModuleDynamically": "default_loader"}]],
        "note": "USE_MAIN_CONTEXT_DEFAULT_LOADER resolves './dep.mjs' next to the script's filename",
    },
    {
        "id": "dynamic_import_default_loader_json",
        "modules": {},
        "steps": [["script", {"code": "import('./data.json', { with: { type: 'json' } }).then((ns) => ns.default)",
                              "filename": "$fixture:main.js", "importModuleDynamically": "default_loader"}],
                  ["compile_function", {"code": "return import('./data.json', { with: { type: 'json' } })"
                                                ".then((ns) => Object.keys(ns))",
                                        "filename": "$fixture:main.js",
                                        "importModuleDynamically": "default_loader"}]],
    },
    # --------------------------------------------------------------- synthetic
    {
        "id": "synthetic_set_export_before_link",
        "modules": {"s": {"synthetic": ["x"]}},
        "steps": [["set_export", "s", "x", 1], ["status", "s"], ["link", "s"], ["namespace", "s"],
                  ["set_export", "s", "x", 2], ["namespace", "s"], ["status", "s"]],
        "note": "ERR_VM_MODULE_STATUS before linking; after link the export is set even before evaluation",
        "source": "test-vm-module-synthetic",
    },
    {
        "id": "synthetic_exports_visible_to_importers",
        "modules": {
            "m": "import { x } from 'synthetic'; export const getX = () => x; export const atLoad = x;",
            "synthetic": {"synthetic": ["x", "y"], "evaluate": [["set", "x", 1]]},
        },
        "steps": [["link", "m"], ["evaluate", "m"], ["ns_call", "m", "getX"], ["set_export", "synthetic", "x", 42],
                  ["ns_call", "m", "getX"], ["namespace", "m"], ["namespace", "synthetic"], ["status", "synthetic"]],
        "source": "test-vm-module-synthetic",
    },
    {
        "id": "synthetic_evaluate_order",
        "modules": {
            "root": "import 'a'; import 's'; import 'b'; hlog('root');",
            "a": "hlog('a');",
            "s": {"synthetic": ["v"], "evaluate": [["hlog", "s"], ["set", "v", "sv"]]},
            "b": "import { v } from 's'; hlog('b:' + v);",
        },
        "steps": [["link", "root"], ["evaluate", "root"], ["evaluate", "root"], ["status", "s"]],
        "note": "the callback runs once, in import order, between a and b",
    },
    {
        "id": "synthetic_callback_throws",
        "modules": {
            "s": {"synthetic": ["x"], "evaluate": [["set", "x", 1], ["throw", "boom-synth"]]},
            "root": "import { x } from 's'; log.push('root');",
        },
        "steps": [["link", "root"], ["evaluate", "root"], ["status", "s"], ["status", "root"], ["error", "s"]],
    },
    {
        "id": "synthetic_set_export_errors",
        "modules": {"s": {"synthetic": ["x"]}},
        "steps": [["link", "s"], ["set_export", "s", "nope", 1], ["set_export", "s", {"$raw": 1}, 1],
                  ["set_export", "s", "x", "fine"], ["ns_get", "s", "x"]],
        "note": "unknown export: ReferenceError (engine message); non-string name: ERR_INVALID_ARG_TYPE",
        "source": "test-vm-module-synthetic",
    },
    {
        "id": "synthetic_set_export_unknown_name_message",
        "modules": {"s": {"synthetic": ["x"]}},
        "steps": [["link", "s"], ["set_export", "s", "nope", 1], ["evaluate", "s"], ["set_export", "s", "y", 2],
                  ["status", "s"]],
        "compare": "message",
        "note": "Node's own words, not the engine's: ReferenceError \"Export 'nope' is not defined in module\"",
        "source": "test-vm-module-synthetic",
    },
    {
        "id": "synthetic_callback_sets_undeclared_export",
        "modules": {"s": {"synthetic": ["x"], "evaluate": [["set", "x", 1], ["set", "y", 2]]}},
        "steps": [["link", "s"], ["evaluate", "s"], ["status", "s"], ["ns_get", "s", "x"]],
        "note": "setExport of a name not declared, from the evaluate callback: ReferenceError (engine message)",
    },
    {
        "id": "synthetic_evaluate_twice",
        "modules": {"s": {"synthetic": ["n"], "evaluate": [["hlog", "callback"], ["set", "n", 1]]}},
        "steps": [["namespace", "s"], ["link", "s"], ["evaluate_twice", "s"], ["status", "s"], ["namespace", "s"]],
        "note": "the callback runs once; namespace before link: ERR_VM_MODULE_STATUS",
    },
    {
        "id": "synthetic_bad_arguments",
        "modules": {
            "not_list": {"synthetic": {"$raw": 5}},
            "duplicate": {"synthetic": ["x", "x"]},
            "no_callback": {"synthetic": ["x"], "callback": {"$raw": 5}},
            "fine": {"synthetic": []},
        },
        "steps": [["status", "fine"], ["link", "fine"], ["evaluate", "fine"], ["status", "fine"]],
        "source": "test-vm-module-basic: SyntheticModule arguments",
    },
    # --------------------------------------------------------------- bad inputs
    {
        "id": "bad_source_and_options",
        "modules": {
            "num": {"source": {"$raw": 5}},
            "ident": {"source": "", "identifier": {"$raw": 0}},
            "plain_ctx": {"source": "", "context": {"$raw": {}}},
            "str_ctx": {"source": "", "context": {"$raw": "hucairz"}},
            "cached": {"source": "", "cachedData": {"$raw": "foo"}},
        },
        "steps": [],
        "source": "test-vm-module-errors: checkArgType, checkInvalidCachedData",
    },
    {
        "id": "bad_evaluate_options",
        "modules": {"unlinked": "", "m": ""},
        "steps": [["evaluate", "unlinked", {"timeout": 0}], ["link", "m"], ["evaluate", "m", {"timeout": 0}],
                  ["evaluate", "m", {"timeout": "x"}], ["evaluate", "m", {"breakOnSigint": "a"}],
                  ["status", "m"], ["evaluate", "m", {"timeout": 1000, "breakOnSigint": True}], ["status", "m"]],
        "source": "test-vm-module-errors: checkInvalidOptionForEvaluate",
    },
    {
        "id": "evaluate_timeout",
        "modules": {"m": "log.push('spin'); while (true) {}"},
        "steps": [["link", "m"], ["evaluate", "m", {"timeout": 50}], ["status", "m"], ["eval", "log"]],
        "note": "Node's own message: Script execution timed out after 50ms",
        "source": "test-vm-module-basic: evaluate timeout",
    },
    {
        "id": "evaluate_timeout_in_dependency",
        "modules": {"root": "import 'spin'; log.push('root');", "spin": "log.push('spin'); for (;;) {}"},
        "steps": [["link", "root"], ["evaluate", "root", {"timeout": 50}], ["status", "root"], ["status", "spin"],
                  ["eval", "log.length"]],
        "note": "the timeout covers the dependencies' evaluation too",
    },
    # -------------------------------------------------------------- cached data
    {
        "id": "cached_data_round_trip",
        "modules": {
            "first": "export const a = 1; log.push('first');",
            "second": {"source": "export const a = 1; log.push('first');", "cachedData": {"$slot": "d"},
                       "lazy": True},
            "other": {"source": "export const bb = 2222222; log.push('other');", "cachedData": {"$slot": "d"},
                      "lazy": True},
        },
        "steps": [["cached_data", "first", "d"], ["new", "second"], ["link", "second"], ["evaluate", "second"],
                  ["namespace", "second"], ["new", "other"], ["link", "first"], ["evaluate", "first"],
                  ["cached_data", "first", "d2"]],
        "note": "cached data of another source is rejected; none can be made after evaluation",
    },
]


def load_cases() -> list[dict]:
    ids = [c["id"] for c in CASES]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise ValueError(f"duplicate case ids: {sorted(dupes)}")
    return CASES


def cases_json() -> str:
    return json.dumps({"cases": load_cases()}, ensure_ascii=True)


if __name__ == "__main__":
    sys.stdout.write(cases_json() + "\n")
