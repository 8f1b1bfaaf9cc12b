"""Errors you can debug: a host callable's exception is the JSError's cause, the JS stack
reads through host calls, str(JSError) names a location, a worker's own bug brings its
traceback (issue 15)."""

import traceback

import pytest

import isolate
from isolate import errors

TEMPLATE_JS = """\
function render(key) {
  return lookup(key);
}
function inner() { throw new TypeError('boom'); }
function outer() { return back(inner); }
function deep() { return back(viaHost); }
function viaHost() { return lookup('missing'); }
"""


def lookup(key):
    return {"known": 1}[key]


def back(callback):
    return callback()


@pytest.fixture
def ctx(pool):
    ctx = pool.create_context({"lookup": lookup, "back": back})
    pool.run_in_context(TEMPLATE_JS, ctx, filename="tpl.js")
    return ctx


def _frames(stack):
    # (after displayErrors' "file:line", source line and caret, when the stack has them)
    return [line.strip() for line in stack.split("\n\n", 1)[-1].splitlines()[1:]]


@pytest.mark.parametrize("timeout", [None, 5000], ids=["untimed", "timed"])
def test_host_exception_is_the_cause_with_its_traceback(pool, ctx, timeout):
    # A timed call runs host callables on a thread of their own: the cause is kept all the same.
    with pytest.raises(isolate.JSError) as info:
        pool.run_in_context("render('missing')", ctx, filename="main.js", timeout=timeout)
    error = info.value
    assert isinstance(error.__cause__, KeyError) and error.__cause__.args == ("missing",)
    assert "lookup" in [frame.name for frame in traceback.extract_tb(error.__cause__.__traceback__)]
    # The JS stack keeps the JS frames below the host frame.
    assert _frames(error.stack) == ["at lookup (<host>)", "at render (tpl.js:2:17)", "at main.js:1:1"]
    printed = "".join(traceback.format_exception(error))
    assert "KeyError: 'missing'" in printed and "The above exception was the direct cause" in printed


def test_js_sees_the_message_and_type_name_only(pool):
    class Secretive(Exception):
        def __repr__(self):
            return "Secretive(token=s3cr3t)"

    def leak():
        token = "s3cr3t"  # a local of the failing frame: in the Python traceback, never in JS
        raise Secretive(f"no access ({len(token)} chars)")

    ctx = pool.create_context({"leak": leak})
    seen = pool.run_in_context(
        "try { leak() } catch (e) { [e.name, e.message, e.pythonType, e.stack, Object.keys(e)] }", ctx,
        filename="probe.js")
    name, message, python_type, stack, keys = seen
    assert (name, message, python_type) == ("Error", "no access (6 chars)", "Secretive")
    assert stack == "Error: no access (6 chars)\n    at leak (<host>)\n    at probe.js:1:6"
    assert keys == ["pythonType"]
    for text in (stack, message):
        assert "s3cr3t" not in text and "Traceback" not in text and "File " not in text


def test_stack_reads_through_a_host_call_both_ways(pool, ctx):
    # JS -> host -> JS throws: the frames above the host frame, the host frame, the frames below.
    with pytest.raises(isolate.JSTypeError) as info:
        pool.run_in_context("outer()", ctx, filename="main.js")
    error = info.value
    assert _frames(error.stack) == ["at inner (tpl.js:4:30)", "at back (<host>)", "at outer (tpl.js:5:32)",
                                    "at main.js:1:1"]
    # The cause is the JSError `back` raised in Python, with its Python traceback.
    assert isinstance(error.__cause__, isolate.JSTypeError) and error.__cause__ is not error
    assert "back" in [frame.name for frame in traceback.extract_tb(error.__cause__.__traceback__)]


def test_causes_chain_through_nested_host_calls(pool, ctx):
    # JS -> back (host) -> viaHost (JS) -> lookup (host) raises KeyError.
    with pytest.raises(isolate.JSError) as info:
        pool.run_in_context("deep()", ctx, filename="main.js")
    error = info.value
    assert _frames(error.stack) == ["at lookup (<host>)", "at viaHost (tpl.js:7:29)", "at back (<host>)",
                                    "at deep (tpl.js:6:31)", "at main.js:1:1"]
    middle = error.__cause__
    assert isinstance(middle, isolate.JSError) and isinstance(middle.__cause__, KeyError)


def test_no_cause_when_js_threw_something_else(pool, ctx):
    with pytest.raises(isolate.JSError) as info:
        pool.run_in_context("try { render('missing') } catch (e) { throw new Error('handled: ' + e.message) }",
                            ctx, filename="main.js")
    assert info.value.__cause__ is None
    assert info.value.message == "handled: 'missing'"
    # ... and a caught host failure leaves nothing behind for the next call's error.
    with pytest.raises(isolate.JSError) as info:
        pool.run_in_context("throw new Error(\"'missing'\")", ctx)
    assert info.value.__cause__ is None


def test_a_rethrown_host_error_keeps_its_cause(pool, ctx):
    with pytest.raises(isolate.JSError) as info:
        pool.run_in_context("try { render('missing') } catch (e) { e.extra = 1; throw e }", ctx, filename="m.js")
    assert isinstance(info.value.__cause__, KeyError) and info.value.extra == 1


def test_str_names_the_location(pool, ctx):
    with pytest.raises(isolate.JSError) as info:
        pool.run_in_context("render('missing')", ctx, filename="main.js")
    assert str(info.value) == "Error: 'missing'\n    at render (tpl.js:2:17)"
    with pytest.raises(isolate.JSTypeError) as info:
        isolate.run_in_new_context("let a = null;\n\n  a.x", filename="null.js")
    assert str(info.value).splitlines() == ["TypeError: cannot read property 'x' of null", "    at null.js:3:3"]
    assert info.value.location == "null.js:3:3"
    with pytest.raises(isolate.JSSyntaxError) as info:
        isolate.Script("let x = ;", filename="bad.js")
    assert str(info.value).splitlines() == ["SyntaxError: unexpected token in expression: ';'", "    at bad.js:1:1"]
    # Without a JS location (a non-Error thrown, an error made in Python): the first line only.
    with pytest.raises(isolate.JSError) as info:
        isolate.run_in_new_context("throw 5")
    assert str(info.value) == "Error: Uncaught 5" and info.value.location is None
    assert str(isolate.JSError("made here")) == "Error: made here"


def test_a_worker_bug_brings_its_traceback_as_the_cause(pool):
    # A request the host never sends (a script that is not a string) makes the worker
    # fail inside its own code: it answers INTERNAL with its traceback.
    ctx = pool.create_context()
    with pytest.raises(isolate.ProtocolViolationError) as info:
        ctx._worker.request("run", [ctx._id, 123, {}])
    cause = info.value.__cause__
    assert isinstance(cause, errors.RemoteTraceback)
    assert "Traceback (most recent call last)" in cause.tb and "workers/" in cause.tb
    printed = "".join(traceback.format_exception(info.value))
    assert printed.index('"""\nTraceback') < printed.index("The above exception was the direct cause")
    assert pool.run_in_context("1 + 1", ctx) == 2  # the worker goes on


def test_a_remote_traceback_is_bounded():
    huge = errors.RemoteTraceback("x" * 10_000_000)
    assert len(str(huge)) < errors.RemoteTraceback.MAX_CHARS + 100


def test_caught_host_failures_are_not_kept_without_bound(pool):
    from isolate import hostcalls

    def fails(i):
        raise KeyError(i)

    ctx = pool.create_context({"fails": fails})
    # JS catches every failure: no call ever asks for a cause. What is kept stays bounded.
    for _ in range(200):
        assert pool.run_in_context("var n = 0; for (let i = 0; i < 20; i++) { try { fails(i) } catch (e) { n++ } } n",
                                   ctx) == 20
    kept = hostcalls._failures._by_call
    assert len(kept) <= hostcalls._Failures.MAX_CALLS
    assert all(len(v) <= hostcalls._Failures.MAX_PER_CALL for v in kept.values())
    with pytest.raises(isolate.JSError) as info:
        pool.run_in_context("fails('last')", ctx)
    assert isinstance(info.value.__cause__, KeyError) and info.value.__cause__.args == ("last",)


def test_each_call_gets_its_own_cause(pool):
    # Concurrent calls failing the same way, with the same message: each caller gets the
    # exception its own host call raised, never another call's.
    import threading

    raised = {}

    def fails(tag):
        exc = ValueError("same message")
        raised[tag] = exc
        raise exc

    results = {}

    def run(tag):
        ctx = pool.create_context({"fails": fails})
        for i in range(20):
            try:
                pool.run_in_context(f"fails('{tag}-{i}')", ctx, timeout=5000)
            except isolate.JSRangeError as error:
                results[f"{tag}-{i}"] = error.__cause__

    threads = [threading.Thread(target=run, args=(t,)) for t in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 80
    assert all(results[key] is raised[key] for key in results)
