"""The bridge's parts are read late, and reading them late changes nothing (issue 14).

Most contexts never format an error stack and are only set up, run and read, so the
stack tools and the other ops (get, set, construct, compile_function, ...) are parts
of the bridge (workers/bridge_stack.js, workers/bridge_ops.js, workers/bridgesource.py)
that a QuickJS context reads only when its first error crosses or a request first
names such an op. By then the script may have replaced every built-in
and filled its memory: the part must take only the intrinsics the bridge captured at
installation, must give the same stacks as before, and running out of memory while
reading it must give a typed error and leave the context usable.
"""

from __future__ import annotations

import re
import time

import pytest

import isolate
from isolate.workers.bridgesource import BRIDGE_PARTS, bridge_with_parts, part_source
from isolate.workers import engine as engine_module
from isolate.workers.engine import EngineContext, EngineError
from isolate.workers.tagged import from_tagged
from isolate.workers.worker import Deadlines, ScriptTimeout

pytestmark = pytest.mark.timeout(60)

MiB = 1024 * 1024

THROW = "function f() { throw new Error('boom') }\nf()"
STACK = "Error: boom\n    at f (t.js:1:25)\n    at t.js:2:1"  # QuickJS columns (Node says 1:22)

# Every built-in the stack part (or the bridge around it) could be tempted to use,
# replaced by a function that counts its calls and throws.
POLLUTE = r"""
var CALLS = 0;
const DEF = Object.defineProperty;
const bad = () => function () { CALLS++; throw new TypeError('polluted'); };
for (const [owner, keys] of [
    [String.prototype, ['indexOf', 'lastIndexOf', 'slice', 'substring', 'charCodeAt', 'split', 'replace',
                        'startsWith', 'trim', 'concat']],
    [Array.prototype, ['push', 'join', 'map', 'slice', 'splice', 'indexOf']],
    [Object, ['defineProperty', 'getPrototypeOf', 'keys', 'create']],
    [Reflect, ['apply', 'defineProperty', 'getPrototypeOf']],
    [Function.prototype, ['call', 'apply', 'bind']]]) {
  for (const key of keys) DEF(owner, key, { value: bad(), writable: true, configurable: true });
}
DEF(Error.prototype, 'stack', { get: bad(), set: bad(), configurable: true });
1
"""


class Counted:
    """An in-process EngineContext that counts the parts its bridge reads."""

    def __init__(self, on_abort=None):
        self.ctx = EngineContext(lambda *a: None, on_abort=on_abort)
        self.parts: list = []
        load = self.ctx._load_part

        def counted(args):
            loaded = load(args)
            self.parts.append((args, loaded))
            return loaded

        self.ctx._load_part = counted

    def reply(self, code):
        # As the worker runs a script: compiled through the C API, run, then the bridge's finish.
        bytecode, failure = self.ctx.compile_script(code, "t.js")
        return failure if bytecode is None else self.ctx.run_compiled(bytecode, False)

    def run(self, code):
        reply = self.reply(code)
        assert reply["ok"], reply
        return from_tagged(reply["v"], reply.get("t", True))

    def thrown(self, code):
        reply = self.reply(code)
        assert not reply["ok"], reply
        return from_tagged(reply["e"], reply.get("t", True))


def seen(error):
    """An error as comparable fields (ErrorValue compares by identity)."""
    return (error.name, error.message, error.stack, error.props)


BOOM = ("Error", "boom", STACK, {})


def assert_boom_or_out_of_memory(error) -> None:
    if error.name == "Error":
        assert seen(error) == BOOM
        return
    assert (error.name, error.message) == ("InternalError", "out of memory"), seen(error)
    lines = error.stack.split("\n")  # the head, then the frames where it ran out, if any
    assert lines[0] == "InternalError: out of memory" and all(line.startswith("    at ") for line in lines[1:]), \
        error.stack


def test_every_part_is_a_function_expression_of_the_intrinsics():
    assert BRIDGE_PARTS == ("stack", "ops")
    for name in BRIDGE_PARTS:
        text = re.sub(r"//[^\n]*|/\*.*?\*/", "", part_source(name), flags=re.S).strip()
        assert text.startswith("(function ") and text.endswith("})"), name
    with pytest.raises(ValueError):
        part_source("../bridge")
    # The source for engines without bytecode (V8) hands every part to the installation.
    assert bridge_with_parts().rstrip().endswith("});") and "stack: (" in bridge_with_parts()


def test_a_context_that_formats_no_stack_reads_no_part():
    engine = Counted()
    assert engine.ctx.op("set_globals", [{"x": 41}])["ok"]
    assert engine.run("[1, 'a', {b: 2n}].length + x") == 44
    assert engine.run("try { null.x } catch (e) { e.stack.length > 0 }") is True
    assert engine.parts == []


def test_the_ops_part_is_read_once_at_the_first_request_for_one_after_pollution():
    engine = Counted()
    engine.run(POLLUTE + "; var obj = { a: [1, 2] }; class K { constructor(v) { this.v = v } }; 1")
    assert engine.parts == []
    assert engine.ctx.op("get", 0, "obj") == {"ok": True, "v": {"a": [1, 2]}, "t": False}
    assert engine.parts == [(["ops"], True)]
    assert engine.ctx.op("set", 0, "y", [5, False])["ok"] and engine.run("y") == 5
    assert engine.ctx.op("keys", 0)["ok"] and engine.ctx.op("has", 0, "y") == {"ok": True, "v": True, "t": False}
    reply = engine.ctx.op("get", 0, "missing")
    assert not reply["ok"] and from_tagged(reply["e"], reply["t"]).name == "ReferenceError"
    assert engine.parts == [(["ops"], True), (["stack"], True)]  # read once each
    assert engine.run("CALLS") == 0  # nothing the script replaced was called


def test_the_part_is_read_once_at_the_first_stack_after_pollution():
    engine = Counted()
    engine.run(POLLUTE)
    assert engine.parts == []  # the pollution is in place before the part is read
    assert seen(engine.thrown(THROW)) == BOOM
    assert engine.parts == [(["stack"], True)]
    error = engine.thrown("null.x")
    assert error.name == "TypeError" and error.stack.endswith("\n    at t.js:1:1")
    assert engine.parts == [(["stack"], True)]  # read once per context
    assert engine.run("CALLS") == 0  # nothing the script replaced was called


def test_the_same_stacks_as_a_clean_context():
    clean, polluted = Counted(), Counted()
    polluted.run(POLLUTE)
    for code in (THROW, "null.x", "function g() { g() }\ng()", "eval('(')",
                 "class E extends RangeError {}\nthrow Object.assign(new E('m'), {code: 'X'})"):
        assert seen(polluted.thrown(code)) == seen(clean.thrown(code)), code
    assert polluted.run("CALLS") == 0


def test_reading_the_part_out_of_memory_is_a_typed_error_and_the_context_recovers():
    engine = Counted()
    engine.ctx.set_memory_limit(32 * MiB)
    # Fill the limit without formatting a stack (the error is caught in the script).
    engine.reply("globalThis.keep = []; try { for (;;) keep.push('x'.repeat(1000) + keep.length) } catch (e) {}; 0")
    for _ in range(3):
        # Either the part was read (the engine makes memory and tries again) or
        # the script's own Error (or the script's compilation) ran out of memory:
        # never anything else.
        assert_boom_or_out_of_memory(engine.thrown(THROW))
    assert all(loaded for _, loaded in engine.parts) and len(engine.parts) <= 1
    assert engine.run("keep = null; 1") == 1
    assert seen(engine.thrown(THROW)) == BOOM


def test_reading_the_ops_part_out_of_memory_is_a_typed_error_and_the_context_recovers():
    engine = Counted()
    engine.ctx.set_memory_limit(32 * MiB)
    engine.reply("globalThis.small = 7; globalThis.keep = [];"
                 "try { for (;;) keep.push('x'.repeat(1000) + keep.length) } catch (e) {}; 0")
    for _ in range(3):
        reply = engine.ctx.op("get", 0, "small")
        if reply != {"ok": True, "v": 7, "t": False}:
            assert_boom_or_out_of_memory(from_tagged(reply["e"], reply["t"]))
    assert engine.run("keep = null; 1") == 1
    assert engine.ctx.op("get", 0, "small") == {"ok": True, "v": 7, "t": False}
    assert [args for args, _ in engine.parts if _] == [["ops"]]


@pytest.mark.parametrize("breakage", ["truncated", "not a function"])
def test_a_part_that_cannot_be_read_refuses_every_context_with_the_reason(monkeypatch, breakage):
    """The bytecode probe reads each part as a context would: a broken part fails
    loudly when the process starts, not at some script's first error."""
    good = engine_module._get_bridge_bytecode()
    assert good.available
    parts = dict(good.parts)
    if breakage == "truncated":
        parts["stack"] = parts["stack"][: len(parts["stack"]) // 2]
    else:
        parts["stack"] = good._compile(engine_module.quickjs(), b"1 + 1")
    monkeypatch.setattr(engine_module, "_bridge_bytecode", None)
    monkeypatch.setattr(engine_module, "_compiled_bridge", good.bytecode)
    monkeypatch.setattr(engine_module, "_compiled_parts", parts)
    with pytest.raises(EngineError, match="the bridge's stack part"):
        EngineContext(lambda *a: None)
    assert engine_module.bridge_install_status()[0] is False


@pytest.mark.timeout(30, method="thread")  # the test owns SIGALRM
def test_a_deadline_that_lands_while_a_part_is_read_stops_the_call(alarm):
    """The part is asked for through the engine's hook: a stop that lands there must
    end the call as a timeout (the bridge waits for it where no catch can see it),
    and the context must read the part afresh at its next error."""
    deadlines = Deadlines()
    engine = Counted(on_abort=lambda exc: deadlines.redeliver_soon())
    load, landed = engine.ctx._load_part, []

    def slow_load(args):
        landed.append(args)
        load(args)
        give_up = time.monotonic() + 5  # bounded: the deadline (50 ms) ends this
        while time.monotonic() < give_up:
            pass
        return True

    engine.ctx._load_part = slow_load
    started = time.monotonic()
    with pytest.raises(ScriptTimeout):
        with deadlines.deadline(50):
            engine.reply("var caught = 'no';\n" + THROW)
    assert time.monotonic() - started < 4 and landed == [["stack"]]
    engine.ctx._load_part = load
    assert seen(engine.thrown(THROW)) == BOOM  # the part is read again, whole
    assert engine.run("caught") == "no"


def test_out_of_memory_is_said_whatever_the_fill_leaves_free():
    """Filled with strings of each size in a range, a context is left with a different
    sliver of memory each time: somewhere QuickJS has room for an error object but not
    for its "out of memory" text, and throws an InternalError with no message (seen in
    CI, while compiling the next script). Every outcome must be the script's error or
    "out of memory", and the context must recover."""
    for size in range(900, 1100, 3):
        engine = Counted()
        engine.ctx.set_memory_limit(32 * MiB)
        engine.reply(f"globalThis.keep = []; try {{ for (;;) keep.push('x'.repeat({size}) + keep.length) }}"
                     " catch (e) {}; 0")
        for _ in range(2):
            assert_boom_or_out_of_memory(engine.thrown(THROW))
        assert engine.run("keep = null; 1") == 1
        assert seen(engine.thrown(THROW)) == BOOM
        engine.ctx.close()


def test_in_the_pool_a_polluted_fresh_context_at_its_limit_still_gets_its_error():
    with isolate.Pool(size=1, spare_workers=0) as pool:
        code = POLLUTE + ";\nvar keep = [], hit = false;\n" \
            "try { for (;;) keep.push('x'.repeat(1000) + keep.length) } catch (e) { hit = true }\n" \
            "keep = null;\nfunction f() { throw new Error('boom ' + hit) }\nf()"
        for _ in range(3):
            with pytest.raises(isolate.JSError) as info:
                pool.run_in_new_context(code, filename="t.js", memory_limit=32 * MiB, timeout=10_000)
            assert info.value.name == "Error" and info.value.message == "boom true"
            assert "\n    at f (t.js:" in info.value.stack
            # Still at the limit when the error crosses: the error or out of memory, typed.
            with pytest.raises(isolate.JSError) as info:
                pool.run_in_new_context(code.replace("keep = null;", ""), filename="t.js",
                                        memory_limit=32 * MiB, timeout=10_000)
            assert (info.value.name, info.value.message) in (("Error", "boom true"), ("InternalError", "out of memory"))
        assert pool.run_in_new_context("1 + 1") == 2
