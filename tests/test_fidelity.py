"""Issue 5: file names and offsets everywhere, compile once, cached data, code
generation, DONT_CONTEXTIFY, compile_function's options. Real workers throughout."""

from __future__ import annotations

import time

import pytest

import isolate
from isolate import constants

pytestmark = pytest.mark.timeout(90)


def stats(worker):
    return worker.request("stats", [])


# -- stack traces and offsets ----------------------------------------------------------

def test_syntax_error_names_file_and_offset_line(pool):
    with pytest.raises(isolate.JSSyntaxError) as info:
        isolate.Script("var x = ;", filename="a.js", line_offset=10, pool=pool)
    assert "a.js:11" in info.value.stack
    # display_errors: the source line and a caret come first, as in Node.
    assert info.value.stack.startswith("a.js:11\nvar x = ;\n")
    assert "^" in info.value.stack.splitlines()[2]


def test_runtime_error_line_in_python_stack_and_inside_js(pool):
    code = "var one = 1;\nvar two = 2;\nthrow new Error('line three');\n"
    script = isolate.Script(code, filename="a.js", line_offset=10, pool=pool)
    with pytest.raises(isolate.JSError) as info:
        script.run_in_context(pool.create_context())
    # displayErrors (Node's default) puts "a.js:13", the line and a caret above the stack.
    assert info.value.stack.startswith("a.js:13\nthrow new Error('line three');\n^\n\n")
    assert info.value.stack.split("\n\n", 1)[1].splitlines()[1].strip().startswith("at a.js:13:")

    seen = isolate.Script("var one = 1;\nvar two = 2;\nnew Error('three').stack\n",
                          filename="a.js", line_offset=10, pool=pool)
    assert "a.js:13:" in seen.run_in_context(pool.create_context())


def test_functions_keep_their_own_file_when_called_later(pool):
    ctx = pool.create_context()
    isolate.run_in_context("function boom() {\n  throw new Error('x');\n}", ctx, filename="lib.js")
    isolate.run_in_context("1", ctx, filename="other.js")
    with pytest.raises(isolate.JSError) as info:
        ctx["boom"]()
    assert "at boom (lib.js:2:" in info.value.stack
    inside = isolate.run_in_context("try { boom() } catch (e) { e.stack }", ctx, filename="caller.js")
    assert "lib.js:2:" in inside and "caller.js:1:" in inside


def test_column_offset_applies_to_the_first_line_only(pool):
    ctx = pool.create_context()
    def column(stack):
        return int(stack.strip().rsplit(":", 1)[1].rstrip(")"))

    base = column(isolate.run_in_context("new Error().stack", ctx, filename="c.js"))
    assert column(isolate.run_in_context("new Error().stack", ctx, filename="c.js", column_offset=20)) == base + 20
    second = isolate.run_in_context("\nnew Error().stack", ctx, filename="c.js", column_offset=20)
    assert "c.js:2:" in second
    assert column(second) == column(isolate.run_in_context("\nnew Error().stack", ctx, filename="c.js"))


def test_negative_line_offset_is_applied_on_the_source_path(pool):
    with pytest.raises(isolate.JSError) as info:
        isolate.run_in_context("\n\n\nthrow new Error('x')", pool.create_context(), filename="n.js",
                               line_offset=-2)
    assert "n.js:2:" in info.value.stack


def test_compile_function_reports_body_lines_and_node_source_text(pool):
    fn = isolate.compile_function("return a + b", ["a", "b"], filename="f.js", parsing_context=pool.main_context)
    assert fn(1, 2) == 3
    failing = isolate.compile_function("\nthrow new Error('x')", [], filename="h.js", line_offset=3,
                                       parsing_context=pool.main_context)
    with pytest.raises(isolate.JSError) as info:
        failing()
    assert info.value.stack.splitlines()[1].strip().startswith("at h.js:5:")
    text = isolate.compile_function("return a", ["a"], parsing_context=pool.main_context)
    to_string = isolate.run_in_context("(f) => f.toString()", pool.main_context)
    assert to_string(text) == "function (a) {\nreturn a\n}"


def test_compile_function_context_extensions_are_in_scope(pool):
    fn = isolate.compile_function("return [x, y, typeof z]", [], context_extensions=[{"x": 1}, {"y": 2}],
                                  parsing_context=pool.main_context)
    assert fn() == [1, 2, "undefined"]


# -- global code semantics -------------------------------------------------------------

def test_top_level_let_const_class_persist_but_are_not_globals(pool):
    ctx = pool.create_context()
    isolate.run_in_context("let a = 1; const b = 2; class C {}; var d = 4", ctx)
    assert isolate.run_in_context("[a, b, typeof C, d]", ctx) == [1, 2, "function", 4]
    assert isolate.run_in_context("[globalThis.a, globalThis.b, globalThis.C, globalThis.d]", ctx) == \
        [isolate.undefined, isolate.undefined, isolate.undefined, 4]
    with pytest.raises(isolate.JSSyntaxError):
        isolate.run_in_context("let a = 5", ctx)  # redeclaration, as in Node


def test_top_level_return_is_a_syntax_error(pool):
    with pytest.raises(isolate.JSSyntaxError):
        isolate.Script("return 5", pool=pool)


# -- compile once ------------------------------------------------------------------------

def test_a_script_compiles_once_per_worker(fresh_pool):
    script = isolate.Script("var n = (typeof n === 'number' ? n : 0) + 1; n", filename="once.js",
                            pool=fresh_pool)
    workers = list(fresh_pool._workers)
    before = sum(stats(w)["compiles"] for w in workers)
    for _ in range(20):
        assert script.run_in_context(fresh_pool.create_context()) == 1
    # At most once more on each worker that had not compiled it yet (construction compiled it on one).
    assert sum(stats(w)["compiles"] for w in workers) <= before + len(workers) - 1


def test_a_run_after_the_first_sends_no_code(pool):
    script = isolate.Script("21 * 2", pool=pool)
    ctx = pool.create_context()
    assert script.run_in_context(ctx) == 42
    assert script._source.key in ctx._worker.scripts
    assert script.run_in_context(ctx) == 42


def test_an_evicted_script_is_sent_again(pool):
    ctx = pool.create_context()
    script = isolate.Script("'again'", pool=pool)
    assert script.run_in_context(ctx) == "again"
    # The host believes the worker has it; the worker does not (a restart of its cache).
    ctx._worker.scripts.add("0" * 40)
    from isolate.scripts import ScriptSource

    stale = ScriptSource("'stale'", "evalmachine.<anonymous>", 0, 0)
    stale.key = "f" * 40
    ctx._worker.scripts.add(stale.key)
    assert ctx._run(stale, isolate.api.compile_options({}), isolate.api.run_options({})) == "stale"


# -- cached data -------------------------------------------------------------------------

BIG = ("var table = [" + ",".join(str(i) for i in range(120_000)) + "];\n"
       + "".join(f"function g{i}(x) {{ return x * {i} + table.length; }}\n" for i in range(8000))
       + "table.length")


def test_cached_data_round_trip_and_is_faster_for_a_large_script(pool):
    assert len(BIG) > 1_000_000
    produced = isolate.Script(BIG, produce_cached_data=True, pool=pool)
    assert produced.cached_data_produced is True and isinstance(produced.cached_data, bytes)
    data = produced.create_cached_data()

    def best(make, n=3):
        times = []
        for i in range(n):
            start = time.perf_counter()
            script = make(i)
            times.append(time.perf_counter() - start)
        return min(times), script

    # Each plain construction differs (a trailing comment), so the compile-once cache cannot serve it.
    plain_time, _ = best(lambda i: isolate.Script(BIG + f"\n// {i}", pool=pool))
    cached_time, cached = best(lambda i: isolate.Script(BIG, cached_data=data, pool=pool))
    assert cached.cached_data_rejected is False
    assert cached.run_in_context(pool.create_context()) == 120_000
    assert cached_time < plain_time, (cached_time, plain_time)


def test_tampered_or_foreign_cached_data_is_rejected_and_never_loaded(pool):
    good = isolate.Script("6 * 7", produce_cached_data=True, pool=pool).cached_data
    tampered = bytearray(good)
    tampered[-5] ^= 0x40
    for data in (bytes(tampered), good[:-1], b"", b"garbage" * 10,
                 isolate.Script("6 * 8", produce_cached_data=True, pool=pool).cached_data):
        script = isolate.Script("6 * 7", cached_data=data, pool=pool)
        assert script.cached_data_rejected is True
        assert script.run_in_context(pool.create_context()) == 42  # compiled from its code
    # Bytecode for other options (here: another file name) does not fit either.
    other = isolate.Script("6 * 7", filename="x.js", cached_data=good, pool=pool)
    assert other.cached_data_rejected is True


def test_cached_data_is_verified_with_this_users_key(pool, monkeypatch):
    from isolate import scripts

    good = isolate.Script("1 + 1", produce_cached_data=True, pool=pool).cached_data
    monkeypatch.setattr(scripts, "_signing_key", b"\x01" * 32)  # another host user's key
    assert isolate.Script("1 + 1", cached_data=good, pool=pool).cached_data_rejected is True


def test_compile_function_cached_data(pool):
    made = isolate.compile_function("return a * 2", ["a"], produce_cached_data=True,
                                    parsing_context=pool.main_context)
    assert made.cached_data_produced is True and made(4) == 8
    again = isolate.compile_function("return a * 2", ["a"], cached_data=made.cached_data,
                                     parsing_context=pool.main_context)
    assert again.cached_data_rejected is False and again(5) == 10
    other = isolate.compile_function("return a * 3", ["a"], cached_data=made.cached_data,
                                     parsing_context=pool.main_context)
    assert other.cached_data_rejected is True and other(5) == 15


def test_cached_data_must_be_bytes(pool):
    with pytest.raises(TypeError) as info:
        isolate.Script("1", cached_data="abc", pool=pool)
    assert info.value.code == "ERR_INVALID_ARG_TYPE" and "cached_data" in str(info.value)


# -- contexts ------------------------------------------------------------------------------

@pytest.mark.parametrize("code", [
    "eval('1')", "new Function('return 1')", "Function('return 1')", "(function(){}).constructor('1')",
    "Object.getPrototypeOf(async function(){}).constructor('1')", "(function*(){}).constructor('1')",
])
def test_code_generation_strings_false_throws_eval_error(pool, code):
    ctx = pool.create_context(code_generation={"strings": False})
    with pytest.raises(isolate.JSEvalError) as info:
        isolate.run_in_context(code, ctx)
    assert info.value.name == "EvalError"
    assert info.value.message == "Code generation from strings disallowed for this context"


def test_code_generation_strings_false_keeps_functions_intact(pool):
    ctx = pool.create_context(code_generation={"strings": False})
    assert isolate.run_in_context(
        "[typeof eval, Function.name, (function(){}) instanceof Function,"
        " (function(){}).constructor === Function, Object.keys(globalThis).length]", ctx) == \
        ["function", "Function", True, True, 0]
    assert isolate.run_in_context("var q = 5; q * 2", ctx) == 10
    assert isolate.run_in_new_context("try { eval('2') } catch (e) { e.name }",
                                      context_code_generation={"strings": False}) == "EvalError"
    assert isolate.run_in_context("eval('1 + 1')", pool.create_context(code_generation={"strings": True})) == 2


def test_dont_contextify_gives_an_ordinary_global(pool):
    ctx = pool.create_context(constants.DONT_CONTEXTIFY)
    assert isolate.is_context(ctx)
    assert isolate.run_in_context("globalThis.x = 1; [globalThis === this, typeof x]", ctx) == [True, "number"]
    assert ctx["x"] == 1
    assert pool.run_in_new_context("var y = 2; y", constants.DONT_CONTEXTIFY) == 2


def test_context_names_and_origins_are_kept(pool):
    named = pool.create_context(name="my context", origin="https://example.com")
    assert (named.name, named.origin) == ("my context", "https://example.com")
    first, second = pool.create_context(), pool.create_context()
    a, b = (int(c.name.rsplit(" ", 1)[1]) for c in (first, second))
    assert first.name.startswith("VM Context ") and b == a + 1


def test_source_map_url(pool):
    script = isolate.Script("1\n//# sourceMappingURL=app.js.map\n", pool=pool)
    assert script.source_map_url == "app.js.map"
    assert isolate.Script("1", pool=pool).source_map_url is None


def test_a_frozen_global_keeps_working(pool):
    ctx = pool.create_context({"seed": 1})
    assert isolate.run_in_context("Object.freeze(globalThis); globalThis.x = 1; [Object.isFrozen(globalThis), typeof x]",
                                  ctx) == [True, "undefined"]
    assert isolate.run_in_context("seed + 1", ctx) == 2
    assert ctx["seed"] == 1 and "x" not in ctx
    with pytest.raises(isolate.JSTypeError):
        isolate.run_in_context("var late = 1", ctx)  # CanDeclareGlobalVar is false on a frozen global
    fn = isolate.run_in_context("(a) => a * 2", ctx)
    assert fn(21) == 42


# -- issue 16: values, errors and contexts as Node has them ------------------------------

MERGEABLE_MAP = ("new Map([[true, 'boolean'], [1n, 'bigint'], [1, 'number'], [0, 'zero'], [false, 'false'], "
                 "[0n, 'zero bigint'], [1.5, 'float']])")
JS_ENTRIES = "[...m].map(([k, v]) => typeof k + ':' + String(k) + '=' + v).join()"


def test_map_and_set_keys_of_different_types_are_all_kept_and_round_trip(pool):
    m = pool.run_in_new_context(MERGEABLE_MAP)
    assert len(m) == 7
    assert list(m) == [isolate.TypedKey(True), isolate.TypedKey(isolate.BigInt(1)), 1, 0,
                       isolate.TypedKey(False), isolate.TypedKey(isolate.BigInt(0)), 1.5]
    assert m[1] == "number" and m[isolate.TypedKey(True)] == "boolean"
    expected = pool.run_in_new_context(f"var m = {MERGEABLE_MAP}; {JS_ENTRIES}")
    # Back into JS: every key with its own type, in the Map's order.
    assert pool.run_in_new_context(JS_ENTRIES, {"m": m}) == expected
    s = pool.run_in_new_context("new Set([1, true, 1n, 0, false, 0n])")
    assert len(s) == 6
    assert sorted(pool.run_in_new_context("[...s].map((k) => typeof k + ':' + String(k))", {"s": s})) == sorted(
        ["number:1", "boolean:true", "bigint:1", "number:0", "boolean:false", "bigint:0"])


def test_a_map_without_mergeable_keys_is_unchanged(pool):
    m = pool.run_in_new_context("new Map([[2, 'a'], ['1', 'b'], [true, 'c'], [3n, 'd']])")
    assert list(m) == [2, "1", True, isolate.BigInt(3)]  # nothing to keep apart: no wrapping
    assert isolate.TypedKey(True) != isolate.TypedKey(1) and isolate.TypedKey(True) == isolate.TypedKey(True)
    assert isolate.JSMap({isolate.TypedKey(True): 1, 1: 2}) == isolate.JSMap({1: 2, isolate.TypedKey(True): 1})


def test_isolate_error_from_a_host_callable_comes_out_as_itself(pool):
    def inner():
        pool.run_in_new_context("while (true) {}", {}, timeout=10)

    sandbox = {"inner": inner}
    with pytest.raises(isolate.ScriptTimeoutError) as info:
        pool.run_in_new_context("before = 1; inner(); after = 2", sandbox, timeout=10_000)
    assert info.value.code == "ERR_SCRIPT_EXECUTION_TIMEOUT" and info.value.timeout == 10
    assert isinstance(info.value.__cause__, isolate.JSError)              # the crossing, with its JS stack
    assert isinstance(info.value.__cause__.__cause__, isolate.ScriptTimeoutError)  # the original
    assert sandbox["before"] == 1 and "after" not in sandbox

    def bad():
        isolate.Script("1", pool=pool).run_in_new_context(timeout=-1)

    with pytest.raises(isolate.OutOfRangeError) as info:
        pool.run_in_new_context("bad()", {"bad": bad})
    assert info.value.code == "ERR_OUT_OF_RANGE"


def test_a_js_error_that_only_looks_like_an_isolate_error_stays_a_js_error(pool):
    forged = ("var e = new Error('Script execution timed out after 10ms'); e.code = 'ERR_SCRIPT_EXECUTION_TIMEOUT'; "
              "e.pythonType = 'ScriptTimeoutError'; throw e")
    with pytest.raises(isolate.JSError) as info:
        pool.run_in_new_context(forged, {"f": lambda: None})
    assert info.value.props["code"] == "ERR_SCRIPT_EXECUTION_TIMEOUT" and info.value.code == "ERR_JS_EXCEPTION"


def test_run_in_new_context_reuses_an_object_that_already_is_a_context(pool):
    sandbox = {"a": 1}
    ctx = pool.create_context(sandbox)
    assert pool.run_in_new_context("var m = new Map([[1, 2]]); b = a + 1; m instanceof Map", sandbox) is True
    assert sandbox["b"] == 2 and ctx["b"] == 2
    assert pool.run_in_new_context("b + 1", ctx) == 3  # a Context too, as Node's createContext returns it
    assert isolate.Script("b * 10", pool=pool).run_in_new_context(sandbox) == 20


def test_sandbox_is_refreshed_after_a_timeout_in_run_in_new_context(pool):
    sandbox = {"a": 1}
    with pytest.raises(isolate.ScriptTimeoutError):
        pool.run_in_new_context("var before = a + 1; function loop() {} while (true) {}", sandbox, timeout=20)
    assert sandbox["before"] == 2 and isinstance(sandbox["loop"], isolate.JSFunction)
    # A promise job still queued when the script was stopped does not run to refresh the dict.
    sandbox = {}
    with pytest.raises(isolate.ScriptTimeoutError):
        pool.run_in_new_context("Promise.resolve().then(() => { ran = true }); var x = 1; while (true) {}",
                                sandbox, timeout=20, microtask_mode="afterEvaluate")
    assert sandbox == {"x": 1}


# Node v20.20.2's results, recorded: `vm.measureMemory()` (summary) and `{mode: 'detailed'}`.
NODE_MEASURE_MEMORY_KEYS = {"summary": {"total"}, "detailed": {"total", "current", "other"}}
NODE_MEASURE_ESTIMATE_KEYS = {"jsMemoryEstimate", "jsMemoryRange"}


@pytest.mark.parametrize("mode", ["summary", "detailed"])
def test_measure_memory_has_nodes_fields_plus_workers(pool, mode):
    pool.create_context()
    result = pool.measure_memory(mode=mode).result()
    # Node's keys, each with Node's shape; "workers" is isolate's one addition (README).
    assert set(result) == NODE_MEASURE_MEMORY_KEYS[mode] | {"workers"}
    estimates = [result["total"]] + ([result["current"], *result["other"]] if mode == "detailed" else [])
    for estimate in estimates:
        assert set(estimate) == NODE_MEASURE_ESTIMATE_KEYS
        lo, hi = estimate["jsMemoryRange"]
        assert isinstance(estimate["jsMemoryEstimate"], int) and 0 <= lo <= hi


def test_measure_memory_shape_matches_live_node():
    import json
    import shutil
    import subprocess

    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not on PATH: the recorded shape was checked")
    # (the interval keeps Node's event loop alive until the measurement settles)
    script = ("const vm = require('vm'); const alive = setInterval(() => {}, 50); "
              "Promise.all([vm.measureMemory(), vm.measureMemory({mode: 'detailed'})])"
              ".then(([s, d]) => { clearInterval(alive); console.log(JSON.stringify({summary: Object.keys(s), "
              "detailed: Object.keys(d), estimate: Object.keys(s.total)})); })")
    out = subprocess.run([node, "-e", script], capture_output=True, text=True, timeout=60, check=True).stdout
    live = json.loads(out)
    assert {k: set(v) for k, v in live.items()} == {**NODE_MEASURE_MEMORY_KEYS, "estimate": NODE_MEASURE_ESTIMATE_KEYS}


def test_an_unknown_option_fails_loudly_where_node_ignores_it(pool):
    # Node v20 (recorded): vm.runInNewContext('1', {}, {tiemout: 5}) === 1, new vm.Script('1', {bogus: 1}) works.
    for run in (lambda: pool.run_in_new_context("1", {}, {"tiemout": 5}),
                lambda: pool.run_in_new_context("1", {}, tiemout=5),
                lambda: isolate.Script("1", {"bogus": 1}, pool=pool),
                lambda: pool.create_context({}, {"nam": "x"}),
                lambda: pool.compile_function("return 1", [], {"bogus": 1})):
        with pytest.raises(isolate.InvalidArgValueError) as info:
            run()
        assert info.value.code == "ERR_INVALID_ARG_VALUE" and "not a known option" in str(info.value)


def _import_nothing(specifier, referrer, attributes=None):
    return None


# Every option Node v20's vm functions take (doc/api/vm.md), in Node's spelling: each is accepted.
NODE_RUN_OPTIONS = {"filename": "a.js", "lineOffset": 1, "columnOffset": 1, "displayErrors": True, "timeout": 1000,
                    "breakOnSigint": False, "importModuleDynamically": _import_nothing}
NODE_NEW_CONTEXT_OPTIONS = {"contextName": "n", "contextOrigin": "https://example.org",
                            "contextCodeGeneration": {"strings": True, "wasm": True}, "microtaskMode": "afterEvaluate"}
NODE_SCRIPT_RUN_OPTIONS = {"displayErrors": True, "timeout": 1000, "breakOnSigint": False}


def test_every_option_node_takes_is_accepted(pool):
    ctx = pool.create_context()
    script = isolate.Script("1", pool=pool)
    cases = [
        (lambda o: pool.run_in_context("1", ctx, o), NODE_RUN_OPTIONS),
        (lambda o: pool.run_in_this_context("1", o), NODE_RUN_OPTIONS),
        (lambda o: pool.run_in_new_context("1", {}, o), {**NODE_RUN_OPTIONS, **NODE_NEW_CONTEXT_OPTIONS}),
        (lambda o: isolate.Script("1", o, pool=pool), {"filename": "a.js", "lineOffset": 1, "columnOffset": 1,
                                                      "produceCachedData": True,
                                                      "importModuleDynamically": _import_nothing}),
        (lambda o: script.run_in_context(ctx, o), NODE_SCRIPT_RUN_OPTIONS),
        (lambda o: script.run_in_new_context({}, o), {**NODE_SCRIPT_RUN_OPTIONS, **NODE_NEW_CONTEXT_OPTIONS}),
        (lambda o: script.run_in_this_context(o), NODE_SCRIPT_RUN_OPTIONS),
        (lambda o: pool.create_context({}, o), {"name": "n", "origin": "https://example.org",
                                                "codeGeneration": {"strings": True}, "microtaskMode": "afterEvaluate",
                                                "importModuleDynamically": _import_nothing}),
        (lambda o: pool.compile_function("return 1", [], o), {"filename": "a.js", "lineOffset": 1, "columnOffset": 1,
                                                             "produceCachedData": True, "parsingContext": ctx,
                                                             "contextExtensions": [],
                                                             "importModuleDynamically": _import_nothing}),
    ]
    for run, options in cases:
        for key, value in options.items():
            run({key: value})
        run(options)
    assert pool.measure_memory(mode="detailed", execution="eager").result()["total"]


# Node v20.20.2, recorded: vm.runInContext('function g() { throw new Error("in g") }', ctx, 'def.js'), then
# vm.runInContext('g()', ctx, 'call.js') throws an error whose stack starts with these lines.
NODE_OTHER_SCRIPT_HEAD = 'def.js:1\nfunction g() { throw new Error("in g") }\n               ^\n\nError: in g\n'


def test_display_errors_shows_the_line_of_the_script_that_threw(pool):
    ctx = pool.create_context()
    pool.run_in_context('function g() { throw new Error("in g") }', ctx, "def.js")
    with pytest.raises(isolate.JSError) as info:
        pool.run_in_context("g()", ctx, "call.js")
    assert info.value.stack.startswith(NODE_OTHER_SCRIPT_HEAD)
    assert "at call.js:1:" in info.value.stack
    # display_errors=False: the stack as it is; a non-Error thrown: nothing to decorate.
    with pytest.raises(isolate.JSError) as info:
        pool.run_in_context("g()", ctx, filename="call.js", display_errors=False)
    assert info.value.stack.startswith("Error: in g\n")
    with pytest.raises(isolate.JSError) as info:
        pool.run_in_context("throw 5", ctx, "five.js")
    assert info.value.value == 5


def test_display_errors_decorates_each_error_once(pool):
    # Node heads this one "b.js:1\nthrow saved" (V8 knows where it was thrown); QuickJS's frames
    # say where it was made, and that line is shown (README, "Differences from Node").
    ctx = pool.create_context()
    pool.run_in_context("var saved; try { null.x } catch (e) { saved = e }", ctx, "a.js")
    with pytest.raises(isolate.JSTypeError) as info:
        pool.run_in_context("throw saved", ctx, "b.js")
    assert info.value.stack.count("^") == 1 and info.value.stack.startswith("a.js:1\n")
