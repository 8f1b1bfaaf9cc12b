"""ES modules on real workers: SourceTextModule, SyntheticModule, linking, evaluation, import().

The spec's examples and the issue's "done when" items, then the guarantees (timeouts during
module evaluation, top-level await included, a kill), wrong contexts and bad inputs with
Node's codes. The differential suite against node:vm is tests/modules/.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
import time

import pytest

import isolate
from isolate import constants

pytestmark = pytest.mark.timeout(60)


def nolinker(*args):
    raise AssertionError(f"the linker was called: {args}")


def linked(module):
    module.link(nolinker).result()
    return module


# -- the "done when" -------------------------------------------------------------

def test_spec_three_step_example_prints_42(pool):
    printed = []
    contextified_object = pool.create_context({"secret": 42, "print": printed.append})
    bar = isolate.SourceTextModule("""
      import s from 'foo';
      s;
      print(s);
    """, context=contextified_object)

    def linker(specifier, referencing_module, extra):
        if specifier == "foo":
            return isolate.SourceTextModule("export default secret;", context=referencing_module.context)
        raise Exception(f"Unable to resolve dependency: {specifier}")

    assert bar.link(linker).result() is None
    assert bar.evaluate().result() is None
    assert printed == [42]


def test_a_graph_of_fifty_modules_with_a_cycle_links_and_evaluates(pool):
    ctx = pool.create_context({"log": []})
    modules = {}
    for i in range(50):
        modules[f"m{i}"] = isolate.SourceTextModule(
            f"import {{ chain as next }} from 'm{(i + 1) % 50}';\n"
            f"log.push({i});\n"
            f"export function chain(k) {{ return k === 0 ? {i} : {i} + next(k - 1); }}\n",
            identifier=f"m{i}.mjs", context=ctx)
    root = isolate.SourceTextModule("import { chain } from 'm0'; export const total = chain(49);", context=ctx)
    calls = []

    def linker(specifier, referencing, extra):
        calls.append(specifier)
        return modules[specifier]

    start = time.monotonic()
    root.link(linker).result()
    assert root.status == "linked" and modules["m49"].status == "linked"
    root.evaluate().result()
    elapsed = time.monotonic() - start
    assert root.namespace["total"] == sum(range(50))
    assert ctx["log"] == list(range(49, -1, -1))  # post-order: the last of the cycle first
    assert sorted(calls) == sorted(["m0"] + [f"m{i}" for i in range(50)])  # each request once
    assert {m.status for m in modules.values()} == {"evaluated"}
    assert elapsed < 10, elapsed


def test_top_level_await(pool):
    m = isolate.SourceTextModule("export const v = await Promise.resolve(20) + await 22;", pool=pool)
    linked(m).evaluate().result()
    assert m.namespace["v"] == 42 and m.status == "evaluated"


def test_status_walks_and_errored_keeps_its_error(pool):
    m = isolate.SourceTextModule("export const x = 1;", pool=pool)
    assert m.status == "unlinked"
    linked(m)
    assert m.status == "linked"
    m.evaluate().result()
    assert m.status == "evaluated"

    bad = isolate.SourceTextModule("throw new TypeError('boom');", identifier="bad.mjs", pool=pool)
    linked(bad)
    with pytest.raises(isolate.JSTypeError) as first:
        bad.evaluate().result()
    assert bad.status == "errored" and bad.error is first.value
    assert first.value.message == "boom" and "bad.mjs:1" in first.value.stack
    with pytest.raises(isolate.JSTypeError) as second:  # evaluate() rethrows the same error
        bad.evaluate().result()
    assert second.value is first.value

    thrown = linked(isolate.SourceTextModule("throw 5;", pool=pool))
    with pytest.raises(isolate.JSError):
        thrown.evaluate().result()
    assert thrown.error == 5


def test_json_import_next_to_filename_and_escape_refused(pool, tmp_path):
    (tmp_path / "data.json").write_text('{"hello": "world", "n": [1, 2]}')
    (tmp_path / "lib.mjs").write_text("export const answer = 42;")
    outside = tmp_path.parent / f"{tmp_path.name}-outside.json"
    outside.write_text("{}")
    options = {"filename": str(tmp_path / "main.js"),
               "import_module_dynamically": constants.USE_MAIN_CONTEXT_DEFAULT_LOADER}
    ns = pool.run_in_this_context("import('./data.json', { with: { type: 'json' } })", **options).result()
    assert ns["default"] == {"hello": "world", "n": [1, 2]}
    assert pool.run_in_this_context("import('./lib.mjs').then((m) => m.answer)", **options).result() == 42
    for escaping in (f"../{outside.name}", str(outside), outside.as_uri(), "/etc/passwd"):
        with pytest.raises(isolate.JSError) as refused:
            pool.run_in_this_context(f"import({json.dumps(escaping)}, {{ with: {{ type: 'json' }} }})",
                                     **options).result()
        assert refused.value.props["code"] == "ERR_ACCESS_DENIED", escaping
    os.symlink(outside, tmp_path / "link.json")  # a symlink out of the root is outside too
    with pytest.raises(isolate.JSError) as refused:
        pool.run_in_this_context("import('./link.json', { with: { type: 'json' } })", **options).result()
    assert refused.value.props["code"] == "ERR_ACCESS_DENIED"
    with pytest.raises(isolate.JSError) as missing:  # JSON needs its attribute, as in Node
        pool.run_in_this_context("import('./data.json')", **options).result()
    assert missing.value.props["code"] == "ERR_IMPORT_ATTRIBUTE_MISSING"


def test_default_loader_root_set_on_the_pool(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "one.mjs").write_text("import { two } from '../b/two.mjs'; export const one = two - 1;")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "two.mjs").write_text("export const two = 2;")
    with isolate.Pool(size=1, default_loader_root=tmp_path) as pool:
        assert pool.default_loader_root == os.path.realpath(tmp_path)
        # The script's own directory is a/: ../b is inside the pool's root.
        value = pool.run_in_this_context(
            "import('./one.mjs').then((m) => m.one)", filename=str(tmp_path / "a" / "main.js"),
            import_module_dynamically=constants.USE_MAIN_CONTEXT_DEFAULT_LOADER).result()
        assert value == 1
        # A relative filename resolves from the root.
        assert pool.run_in_this_context(
            "import('./b/two.mjs').then((m) => m.two)",
            import_module_dynamically=constants.USE_MAIN_CONTEXT_DEFAULT_LOADER).result() == 2
    with pytest.raises(isolate.InvalidArgValueError):
        isolate.Pool(size=1, default_loader_root=tmp_path / "missing")
    with pytest.raises(isolate.InvalidArgTypeError):
        isolate.Pool(size=1, default_loader_root=5)


def test_default_loader_needs_a_root(pool):
    with pytest.raises(isolate.JSError, match="no absolute filename"):
        pool.run_in_this_context("import('./x.mjs')",
                                 import_module_dynamically=constants.USE_MAIN_CONTEXT_DEFAULT_LOADER).result()


# -- linking ---------------------------------------------------------------------------------

def test_linker_gets_specifier_module_and_attributes(pool):
    ctx = pool.create_context()
    root = isolate.SourceTextModule(
        "import a from './a.json' with { type: 'json' };\n"
        "import { b } from 'b';\nexport const both = [a, b];", context=ctx)
    assert root.dependency_specifiers == ("./a.json", "b")
    seen = []

    def linker(specifier, referencing, extra):
        seen.append((specifier, referencing is root, extra["attributes"], extra["assert"]))
        if specifier == "b":
            return isolate.SourceTextModule("export const b = 'bee';", context=ctx)
        return isolate.SyntheticModule(["default"], lambda m: m.set_export("default", {"a": 1}), context=ctx)

    root.link(linker).result()
    root.evaluate().result()
    assert root.namespace["both"] == [{"a": 1}, "bee"]
    assert seen == [("./a.json", True, {"type": "json"}, {"type": "json"}), ("b", True, {}, {})]


def test_link_errors_have_node_codes(pool):
    ctx, other = pool.create_context(), pool.create_context()
    m = isolate.SourceTextModule("import 'dep';", context=ctx)
    with pytest.raises(isolate.IsolateError) as err:
        m.link(lambda *a: 5).result()
    assert err.value.code == "ERR_VM_MODULE_NOT_MODULE" and m.status == "errored"

    m = isolate.SourceTextModule("import 'dep';", context=ctx)
    with pytest.raises(isolate.IsolateError) as err:
        m.link(lambda *a: isolate.SourceTextModule("", context=other)).result()
    assert err.value.code == "ERR_VM_MODULE_DIFFERENT_CONTEXT"

    broken = linked(isolate.SourceTextModule("throw new Error('x')", context=ctx))
    with pytest.raises(isolate.JSError):
        broken.evaluate().result()
    m = isolate.SourceTextModule("import 'dep';", context=ctx)
    with pytest.raises(isolate.IsolateError) as err:
        m.link(lambda *a: broken).result()
    assert err.value.code == "ERR_VM_MODULE_LINK_FAILURE" and err.value.cause is broken.error

    done = linked(isolate.SourceTextModule("", context=ctx))
    with pytest.raises(isolate.IsolateError) as err:
        done.link(nolinker).result()
    assert err.value.code == "ERR_VM_MODULE_ALREADY_LINKED"

    m = isolate.SourceTextModule("import 'dep';", context=ctx)  # a linker that raises: as in Node
    with pytest.raises(LookupError):
        m.link(lambda *a: (_ for _ in ()).throw(LookupError("nope"))).result()
    assert m.status == "linking"


def test_a_missing_export_fails_at_link_time_and_relinking_works(pool):
    ctx = pool.create_context()
    m = isolate.SourceTextModule("import { missing } from 'dep'; export const v = missing;", context=ctx)
    with pytest.raises(isolate.JSSyntaxError, match="missing"):
        m.link(lambda *a: isolate.SourceTextModule("export const other = 1;", context=ctx)).result()
    assert m.status == "unlinked"
    m.link(lambda *a: isolate.SourceTextModule("export const missing = 7;", context=ctx)).result()
    m.evaluate().result()
    assert m.namespace["v"] == 7


def test_async_linker_without_and_with_an_event_loop(pool):
    ctx = pool.create_context()

    async def linker(specifier, referencing, extra):
        await asyncio.sleep(0.01)
        return isolate.SourceTextModule("export const v = 21;", context=ctx)

    m = isolate.SourceTextModule("import { v } from 'dep'; export const w = v * 2;", context=ctx)
    future = m.link(linker)
    future.result(10)
    m.evaluate().result()
    assert m.namespace["w"] == 42

    async def main():
        n = isolate.SourceTextModule("import { v } from 'dep'; export const w = v + 1; await null;", context=ctx)
        pending = n.link(linker)
        assert n.status == "linking"  # link() returned at once: the loop runs the linker
        await pending
        await n.evaluate()
        return n.namespace["w"]

    assert asyncio.run(main()) == 22


def test_namespace_is_live_read_only_and_guarded(pool):
    ctx = pool.create_context()
    counter = isolate.SourceTextModule("export let count = 0; export function inc() { return ++count; }",
                                       context=ctx)
    with pytest.raises(isolate.IsolateError) as err:
        counter.namespace
    assert err.value.code == "ERR_VM_MODULE_STATUS"
    linked(counter)
    ns = counter.namespace
    assert list(ns) == ["count", "inc"] and "count" in ns and "nope" not in ns
    with pytest.raises(isolate.JSReferenceError):  # let binding before evaluation: TDZ
        ns["count"]
    counter.evaluate().result()
    assert ns["inc"]() == 1 and ns.count == 1 and counter.namespace is ns
    with pytest.raises(isolate.JSTypeError):
        ns["count"] = 5
    with pytest.raises(KeyError):
        ns["nope"]


# -- synthetic modules and import.meta --------------------------------------------------------

def test_synthetic_module_exports_and_set_export_rules(pool):
    ctx = pool.create_context()
    calls = []
    s = isolate.SyntheticModule(["x", "default"], lambda m: (calls.append(m), m.set_export("x", 1)), context=ctx)
    with pytest.raises(isolate.IsolateError) as err:
        s.set_export("x", 0)
    assert err.value.code == "ERR_VM_MODULE_STATUS"
    user = isolate.SourceTextModule("import { x } from 's'; export const getX = () => x;", context=ctx)
    user.link(lambda *a: s).result()
    s.set_export("default", "d")  # linked: allowed before evaluation
    user.evaluate().result()
    assert calls == [s] and user.namespace["getX"]() == 1 and s.namespace["default"] == "d"
    s.set_export("x", {"live": True})
    assert user.namespace["getX"]() == {"live": True}
    with pytest.raises(isolate.JSReferenceError):
        s.set_export("y", 1)
    with pytest.raises(isolate.InvalidArgTypeError):
        s.set_export(5, 1)


def test_synthetic_callback_failure_makes_the_module_errored(pool):
    s = isolate.SyntheticModule(["x"], lambda: (_ for _ in ()).throw(ValueError("bad data")), pool=pool)
    linked(s)
    with pytest.raises(isolate.JSError, match="bad data"):
        s.evaluate().result()
    assert s.status == "errored"


def test_initialize_import_meta(pool):
    ctx = pool.create_context({"out": []})
    seen = []

    def init(meta, module):
        seen.append(module)
        meta["url"] = "file:///app/main.mjs"
        meta["answer"] = 42

    m = isolate.SourceTextModule("out.push(import.meta.url, import.meta.answer);", context=ctx,
                                 initialize_import_meta=init)
    linked(m).evaluate().result()
    assert seen == [m] and ctx["out"] == ["file:///app/main.mjs", 42]


# -- dynamic import() ---------------------------------------------------------------------------

def test_import_without_a_callback_rejects_with_node_code(pool):
    with pytest.raises(isolate.JSTypeError) as err:
        pool.run_in_this_context("import('x')").result()
    assert err.value.props["code"] == "ERR_VM_DYNAMIC_IMPORT_CALLBACK_MISSING"


def test_import_callback_on_every_compilation_api(pool):
    ctx = pool.create_context()
    calls = []

    def callback(specifier, referrer, attributes):
        calls.append((specifier, referrer, attributes))
        m = isolate.SyntheticModule(["name"], lambda m: m.set_export("name", specifier), context=ctx)
        return m.link(nolinker).result() or m

    script = isolate.Script("import('s')", import_module_dynamically=callback, pool=pool)
    assert script.run_in_context(ctx).result()["name"] == "s"
    assert calls[-1][1] is script
    assert pool.run_in_context("import('r', { with: { type: 'json' } })", ctx,
                               import_module_dynamically=callback).result()["name"] == "r"
    assert calls[-1][2] == {"type": "json"} and isinstance(calls[-1][1], isolate.Script)
    fn = pool.compile_function("return import('f')", [], parsing_context=ctx, filename="f.js",
                               import_module_dynamically=callback)
    assert fn().result()["name"] == "f" and calls[-1][1] is fn
    module = isolate.SourceTextModule("export const p = import('m');", context=ctx,
                                      import_module_dynamically=callback)
    linked(module).evaluate().result()
    assert module.namespace["p"].result()["name"] == "m" and calls[-1][1] is module
    fresh = pool.create_context(import_module_dynamically=callback)
    value = pool.run_in_context("(0, eval)(\"import('c')\")", fresh)  # code with no referrer
    with pytest.raises(isolate.JSError, match="same context"):  # callback made the module in ctx
        value.result()
    assert pool.run_in_new_context("import('n').then(() => 1, (e) => e.code)",
                                   import_module_dynamically=callback).result() \
        == "ERR_VM_MODULE_DIFFERENT_CONTEXT"


def test_import_callback_errors_reject_the_import(pool):
    ctx = pool.create_context()

    def raises(*a):
        raise LookupError("no such plugin")

    with pytest.raises(isolate.JSError, match="no such plugin"):
        pool.run_in_context("import('x')", ctx, import_module_dynamically=raises).result()
    with pytest.raises(isolate.JSError) as err:
        pool.run_in_context("import('x')", ctx, import_module_dynamically=lambda *a: 5).result()
    assert err.value.props["code"] == "ERR_VM_MODULE_NOT_MODULE"
    unlinked = isolate.SourceTextModule("", context=ctx)
    with pytest.raises(isolate.JSError) as err:
        pool.run_in_context("import('x')", ctx, import_module_dynamically=lambda *a: unlinked).result()
    assert err.value.props["code"] == "ERR_VM_MODULE_STATUS"


def test_a_timeout_while_the_import_callback_runs_is_not_observed_by_js(pool):
    ctx = pool.create_context()

    released = threading.Event()

    def slow(*a):  # a host callback still busy when the deadline passes: done only once released
        released.wait(10)
        return linked(isolate.SourceTextModule("", context=ctx))

    start = time.monotonic()
    try:
        with pytest.raises(isolate.ScriptTimeoutError) as err:
            pool.run_in_context("globalThis.seen = 0; import('x').then(() => { seen = 1 }, () => { seen = 2 });",
                                ctx, timeout=100, import_module_dynamically=slow)
    finally:
        released.set()
    assert err.value.stage == "interrupt" and time.monotonic() - start < 1.0


# -- the guarantees -------------------------------------------------------------------------------

def test_timeout_during_module_evaluation(pool):
    ctx = pool.create_context({"log": []})
    spin = linked(isolate.SourceTextModule("log.push('spin'); while (true) {}", context=ctx))
    start = time.monotonic()
    with pytest.raises(isolate.ScriptTimeoutError) as err:
        spin.evaluate(timeout=50).result()
    assert err.value.stage == "interrupt" and time.monotonic() - start < 0.5
    assert spin.status == "errored" and ctx["log"] == ["spin"]
    tla = linked(isolate.SourceTextModule("await null; log.push('tla'); while (true) {}", context=ctx))
    start = time.monotonic()
    with pytest.raises(isolate.ScriptTimeoutError) as err:
        tla.evaluate({"timeout": 50}).result()  # Node's options dict works too
    assert err.value.stage == "interrupt" and time.monotonic() - start < 0.5
    assert pool.run_in_context("log.length", ctx) == 2  # the context goes on


def test_module_stuck_in_native_code_is_killed_and_the_pool_recovers(fresh_pool):
    ctx = fresh_pool.create_context()
    stuck = linked(isolate.SourceTextModule("new Array(1e9).join('')", context=ctx))
    start = time.monotonic()
    with pytest.raises(isolate.ScriptTimeoutError) as err:
        stuck.evaluate(timeout=100).result()
    assert err.value.stage == "kill" and time.monotonic() - start < 1.5
    with pytest.raises(isolate.ContextLostError):
        stuck.status
    assert fresh_pool.run_in_new_context("1 + 1") == 2
    assert linked(isolate.SourceTextModule("export const ok = 1;", pool=fresh_pool)).evaluate().result() is None


def test_pending_top_level_await_settles_when_later_code_releases_it(pool):
    ctx = pool.create_context()
    m = linked(isolate.SourceTextModule(
        "export const v = await new Promise((resolve) => { globalThis.release = resolve; });", context=ctx))
    future = m.evaluate()
    assert not future.done() and m.status == "evaluated"  # as Node reports a module awaiting
    pool.run_in_context("release(9)", ctx)
    assert future.result(5) is None and m.namespace["v"] == 9


def test_modules_of_other_contexts_and_workers_are_refused(pool):
    a, b = pool.create_context(), pool.create_context()
    assert a.worker_pid != b.worker_pid
    dep = isolate.SourceTextModule("export const x = 1;", context=b)
    m = isolate.SourceTextModule("import { x } from 'dep';", context=a)
    with pytest.raises(isolate.IsolateError) as err:
        m.link(lambda *args: dep).result()
    assert err.value.code == "ERR_VM_MODULE_DIFFERENT_CONTEXT"
    with pytest.raises(isolate.IsolateError) as err:
        pool.run_in_context("import('dep')", a, import_module_dynamically=lambda *args: linked(dep)).result()


def test_released_modules_leave_the_worker(pool):
    ctx = pool.create_context()
    m = isolate.SourceTextModule("export const x = 1;", context=ctx)
    module_id = m._id
    assert ctx._request("module_status", [module_id]) == ["unlinked"]
    del m
    gc.collect()
    with pytest.raises(isolate.ProtocolViolationError, match=f"no module {module_id}"):
        ctx._request("module_status", [module_id])


def test_cached_data_round_trip_and_rejection(pool):
    source = "export const a = 1 + 1;"
    first = isolate.SourceTextModule(source, pool=pool)
    data = first.create_cached_data()
    again = isolate.SourceTextModule(source, cached_data=data, pool=pool)
    linked(again).evaluate().result()
    assert again.namespace["a"] == 2
    for bad in (b"garbage", data[:-1] + bytes([data[-1] ^ 1])):
        with pytest.raises(isolate.IsolateError) as err:
            isolate.SourceTextModule(source, cached_data=bad, pool=pool)
        assert err.value.code == "ERR_VM_MODULE_CACHED_DATA_REJECTED"
    with pytest.raises(isolate.IsolateError) as err:
        isolate.SourceTextModule("export const b = 2;", cached_data=data, pool=pool)
    assert err.value.code == "ERR_VM_MODULE_CACHED_DATA_REJECTED"
    linked(first).evaluate().result()
    with pytest.raises(isolate.IsolateError) as err:
        first.create_cached_data()
    assert err.value.code == "ERR_VM_MODULE_CANNOT_CREATE_CACHED_DATA"


# -- bad inputs ---------------------------------------------------------------------------------

@pytest.mark.parametrize("make, error, code", [
    (lambda: isolate.SourceTextModule(5), isolate.InvalidArgTypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.SourceTextModule("", identifier=0), isolate.InvalidArgTypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.SourceTextModule("", context={}), isolate.InvalidArgTypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.SourceTextModule("", line_offset=0.5), isolate.OutOfRangeError, "ERR_OUT_OF_RANGE"),
    (lambda: isolate.SourceTextModule("", line_offset="1"), isolate.InvalidArgTypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.SourceTextModule("", initialize_import_meta=1), isolate.InvalidArgTypeError,
     "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.SourceTextModule("", import_module_dynamically="x"), isolate.InvalidArgTypeError,
     "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.SourceTextModule("", cached_data="x"), isolate.InvalidArgTypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.SourceTextModule("", 5), isolate.InvalidArgTypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.SourceTextModule("", nope=1), isolate.InvalidArgValueError, "ERR_INVALID_ARG_VALUE"),
    (lambda: isolate.SourceTextModule("", pool=5), isolate.InvalidArgTypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.SyntheticModule("x", lambda: None), isolate.InvalidArgTypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.SyntheticModule(["x", "x"], lambda: None), isolate.InvalidArgValueError,
     "ERR_INVALID_ARG_VALUE"),
    (lambda: isolate.SyntheticModule(["x"], 5), isolate.InvalidArgTypeError, "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.Script("1", import_module_dynamically=5), isolate.InvalidArgTypeError,
     "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.create_context(import_module_dynamically=5), isolate.InvalidArgTypeError,
     "ERR_INVALID_ARG_TYPE"),
    (lambda: isolate.Module(), TypeError, None),
])
def test_bad_constructor_inputs(make, error, code):
    with pytest.raises(error) as err:
        make()
    if code is not None:
        assert err.value.code == code


def test_bad_link_and_evaluate_inputs(pool):
    m = isolate.SourceTextModule("", pool=pool)
    with pytest.raises(isolate.InvalidArgTypeError):
        m.link(5)
    with pytest.raises(isolate.IsolateError) as err:  # status errors settle the future, as Node rejects
        m.evaluate().result()
    assert err.value.code == "ERR_VM_MODULE_STATUS"
    linked(m)
    with pytest.raises(isolate.OutOfRangeError):
        m.evaluate(timeout=0)
    with pytest.raises(isolate.InvalidArgTypeError):
        m.evaluate(timeout="x")
    with pytest.raises(isolate.InvalidArgTypeError):
        m.evaluate(break_on_sigint="a")
    with pytest.raises(isolate.InvalidArgTypeError):
        m.evaluate(5)
    with pytest.raises(isolate.IsolateError) as err:
        m.error
    assert err.value.code == "ERR_VM_MODULE_STATUS"
    assert m.evaluate(timeout=1000).result() is None and m.status == "evaluated"


def test_syntax_error_at_construction(pool):
    with pytest.raises(isolate.JSSyntaxError) as err:
        isolate.SourceTextModule("let a = 1;\nexport let = ;", identifier="broken.mjs", line_offset=2, pool=pool)
    assert "broken.mjs:4" in err.value.stack


def test_identifiers_count_per_context(pool):
    ctx = pool.create_context()
    first = isolate.SourceTextModule("", context=ctx)
    second = isolate.SyntheticModule([], lambda: None, context=ctx)
    assert (first.identifier, second.identifier) == ("vm:module(0)", "vm:module(1)")
    assert isolate.SourceTextModule("", identifier="x.mjs", context=ctx).identifier == "x.mjs"
    assert first.context is ctx and isolate.SourceTextModule("", pool=pool).context is None


def test_break_on_sigint_stops_module_evaluation(pool):
    import signal
    import threading

    ctx = pool.create_context()
    ready = threading.Event()
    ctx["ready"] = ready.set
    m = linked(isolate.SourceTextModule("ready(); while (true) {}", context=ctx))
    threading.Thread(target=lambda: (ready.wait(10), os.kill(os.getpid(), signal.SIGINT)), daemon=True).start()
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(isolate.ScriptInterruptedError) as err:
        m.evaluate(break_on_sigint=True).result()
    assert err.value.code == "ERR_SCRIPT_EXECUTION_INTERRUPTED"
    assert signal.getsignal(signal.SIGINT) is before and m.status == "errored"
