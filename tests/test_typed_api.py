"""The typed API: a type checker knows every option, reprs say what a thing is, handles compare
by the JavaScript value they stand for."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import isolate

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.timeout(120)


def _mypy(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    pytest.importorskip("mypy", reason="mypy is in the dev extra: pip install -e '.[dev]'")
    return subprocess.run([sys.executable, "-m", "mypy", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=110)


def test_mypy_passes_over_the_package():
    """The configuration is pyproject.toml's [tool.mypy] (files = isolate)."""
    result = _mypy()
    assert result.returncode == 0, result.stdout + result.stderr


USER_CODE = """
import isolate

async def main(pool: isolate.Pool, ctx: isolate.Context) -> None:
    isolate.run_in_new_context("1", {}, timeout="5")                 # E1: a str timeout
    isolate.run_in_context("1", ctx, tiemout=5)                       # E2: a misspelt option
    isolate.create_context({}, name=5)                                # E3: a name that is not a str
    isolate.Script("1", line_offset="2")                              # E4
    pool.submit("1", None, memory_limit=[64])                         # E5
    pool.run_batch([], retries="x")                                   # E6
    isolate.compile_function("return 1", ["a"], parsing_context=5)    # E7
    isolate.measure_memory("full")                                    # E8
    isolate.SourceTextModule("export default 1", identifer="m.js")    # E9: misspelt
    isolate.SyntheticModule(["x"], lambda m: None, context=5)         # E10
    # and what is right passes:
    isolate.run_in_new_context("1", {}, timeout=5, filename="a.js", context_name="n", memory_limit="64MB")
    isolate.run_in_context("1", ctx, {"lineOffset": 1}, display_errors=False, queue_timeout=float("inf"))
    value: int = await pool.arun_in_new_context("1", timeout=5)
    async for record in pool.arun_batch([{"id": 1, "code": "1"}], timeout=100):
        record["status"]
    async for item in pool.amap("n", [{"n": 1}], max_in_flight=2, filename="m.js"):
        pass
    report = await isolate.measure_memory("detailed", execution="eager")
    report["total"]
    isolate.SourceTextModule("export default 1", identifier="m.js", context=ctx, line_offset=2)
"""


def test_a_type_checker_knows_every_option(tmp_path):
    user = tmp_path / "user_code.py"
    user.write_text(textwrap.dedent(USER_CODE))
    # The package from this checkout, checked silently: only the user's code is judged here.
    config = tmp_path / "mypy.ini"
    config.write_text(f"[mypy]\nmypy_path = {ROOT}\nfollow_imports = silent\nno_site_packages = True\n"
                      "[mypy-isolate.protocol.*,isolate.workers.*,psutil.*,msgpack.*]\n"
                      "ignore_missing_imports = True\n")
    result = _mypy("--config-file", str(config), "--cache-dir", str(tmp_path / "cache"), str(user), cwd=tmp_path)
    output = result.stdout
    errors = {}
    for line in output.splitlines():
        if ": error:" in line:
            lineno = int(line.split(":")[1])
            errors.setdefault(lineno, []).append(line)
    lines = user.read_text().splitlines()
    flagged = {lines[n - 1].split("# ")[-1].split(":")[0] for n in errors if "# E" in lines[n - 1]}
    assert flagged == {f"E{i}" for i in range(1, 11)}, output
    unexpected = [errors[n] for n in errors if "# E" not in lines[n - 1]]
    assert not unexpected, unexpected


# -- reprs -------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pool():
    with isolate.Pool(size=2) as p:
        yield p


def test_pool_repr_names_size_workers_and_state():
    pool = isolate.Pool(size=2)
    try:
        pids = pool.worker_pids()
        assert repr(pool) == f"<Pool size=2 workers={pids} open>"
    finally:
        pool.close()
    assert repr(pool) == "<Pool size=2 workers=[] closed>"


def test_function_repr_names_it_its_parameters_and_context(pool):
    ctx = pool.create_context({})
    number = ctx.name.rsplit(" ", 1)[1]
    pool.run_in_context("function add(a, b) { return a + b }; var arrow = x => x * 2;"
                        "var obj = { method(first, { second } = {}, ...rest) {} };"
                        "var anon = [function () {}][0]", ctx)
    assert repr(ctx["add"]) == f"<JSFunction add(a, b) in context {number}>"
    assert repr(ctx["arrow"]) == f"<JSFunction arrow(x) in context {number}>"
    assert repr(pool.run_in_context("obj.method", ctx)) == \
        f"<JSFunction method(first, {{ second }} = {{}}, ...rest) in context {number}>"
    assert repr(ctx["anon"]) == f"<JSFunction (anonymous)() in context {number}>"
    named = pool.create_context({}, name="templates")
    assert repr(pool.run_in_context("(function render(page) {})", named)) == \
        "<JSFunction render(page) in context 'templates'>"
    assert repr(pool.run_in_context("Promise.resolve(1)", ctx)) == f"<JSPromise Promise in context {number}>"
    assert repr(pool.run_in_context("new (class Point {})()", ctx)) == f"<JSObject Point in context {number}>"


def test_function_repr_of_a_busy_context_does_not_wait(pool):
    import threading

    started = threading.Event()
    ctx = pool.create_context({"started": lambda: started.set()})
    fn = pool.run_in_context("(function later(a) {})", ctx)
    running = pool.arun_in_context("started(); while (true) {}", ctx, timeout=3000)
    assert started.wait(30)
    text = repr(fn)    # the worker is busy: the parameters are left out, the repr does not wait 3 s
    assert text.startswith("<JSFunction later(") and " in context " in text
    assert not running.done()
    with pytest.raises(isolate.ScriptTimeoutError) as info:
        running.result(30)
    if info.value.stage == "interrupt":    # the context survived (a loaded machine may need the kill)
        assert repr(fn).startswith("<JSFunction later(a) in context")


# -- equality by the JavaScript value ------------------------------------------------------------

def test_handles_of_the_same_value_are_equal_and_hash_alike(pool):
    ctx = pool.create_context({})
    pool.run_in_context("function f() {}; function g() {}; var o = {}; var p = Promise.resolve(1);"
                        "var box = { f: f, deep: [[[[o]]]] }", ctx)
    f1, f2, g = ctx["f"], ctx["f"], ctx["g"]
    assert f1 is not f2
    assert f1 == f2 and hash(f1) == hash(f2)
    assert f1 != g
    assert pool.run_in_context("box.f", ctx) == f1
    assert len({f1, f2, g, pool.run_in_context("f", ctx)}) == 2
    assert pool.run_in_context("p", ctx) == pool.run_in_context("p", ctx)
    assert pool.run_in_context("new Set([1])", ctx) != pool.run_in_context("new WeakSet()", ctx)
    assert ctx["f"] != 5 and ctx["f"] != "f"
    # The same source in another context is another value.
    other = pool.create_context({})
    pool.run_in_context("function f() {}", other)
    assert other["f"] != ctx["f"]


def test_handle_equality_does_not_keep_values_alive(pool):
    """Identity is looked up in a WeakMap: comparing handles keeps no value alive once
    its proxies are gone."""
    import gc

    ctx = pool.create_context({})
    pool.run_in_context("class Big { constructor() { this.data = new Array(20000).fill(1.5) } }", ctx)
    before = ctx.memory_usage()["used"]
    for _ in range(100):
        a = pool.run_in_context("globalThis.last = new Big(); last", ctx)
        assert isinstance(a, isolate.JSObject) and a == ctx["last"] and hash(a) == hash(ctx["last"])
    del a
    pool.run_in_context("globalThis.last = null", ctx)
    gc.collect()
    pool.run_in_context("1", ctx)    # the releases go out with the next request
    grown = ctx.memory_usage()["used"] - before
    assert grown < 4 * 1024 * 1024, f"{grown} bytes still held after 100 objects of ~160 KB"


def test_a_script_that_replaced_weakmap_cannot_make_distinct_values_equal(pool):
    ctx = pool.create_context({})
    pool.run_in_context("""
        WeakMap.prototype.get = function () { return 1 };     // every value 'is' value 1
        WeakMap.prototype.set = function () { return this };
        function f() {}; function g() {}
    """, ctx)
    f, g = ctx["f"], ctx["g"]
    assert f != g and not (f == g)
    assert f == ctx["f"]
    assert len({f, g, ctx["f"]}) == 2


def test_handles_of_a_lost_context_compare_without_raising():
    import os
    import signal

    with isolate.Pool(size=1) as pool:
        ctx = pool.create_context({})
        pool.run_in_context("function f() {}", ctx)
        known_a, known_b = ctx["f"], ctx["f"]
        assert known_a == known_b
        late_a, late_b = ctx["f"], ctx["f"]
        os.kill(ctx.worker_pid, signal.SIGKILL)
        with pytest.raises((isolate.WorkerCrashedError, isolate.ContextLostError)):
            pool.run_in_context("1", ctx)
        assert late_a != late_b             # unknown now: equal only to itself
        assert late_a == late_a and hash(late_a) == hash(late_a)
        assert hash(known_a) == hash(known_b)
        assert "(" in repr(late_a) and "in context" in repr(late_a)
