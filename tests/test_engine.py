"""The engine adapter in-process: ``workers.engine.EngineContext`` and the JS bridge.

No worker processes: each test makes QuickJS contexts in this process and
drives the bridge's operations with ``engine.op(...)``, translating values
with ``workers.tagged``. Timer tests install their own SIGALRM handler, so
they run under pytest-timeout's thread method (its signal method would share
SIGALRM with them) and restore the previous handler afterwards.
"""

from __future__ import annotations

import collections
import datetime as dt
import math
import os
import signal
import struct
import subprocess
import sys
import time

import pytest
from _values import same

from isolate.protocol import (
    PROTOCOL_VERSION, Notification, ProtocolError, Request, Response, WireError, encode_value,
    error_triple, finish_values, BigInt, ErrorValue, HandleRef, HostFunctionRef, JSDate, JSMap, JSRegExp, JSSet, JSSymbol,
    JSTypedArray, Unhashable, undefined,
)
from isolate.workers.engine import ENGINE_NAME, EngineContext, EngineError
from isolate.workers.tagged import TAG, from_tagged, to_tagged
from isolate.workers.worker import Deadlines, ScriptTimeout

pytestmark = pytest.mark.timeout(60)

UTC = dt.timezone.utc
HOOKS = ("process", "require", "call_python", "dukpy", "console", "performance")
HOOK_TYPES = "[" + ", ".join(f"typeof {h}" for h in HOOKS) + "]"


# -- helpers -------------------------------------------------------------------

class JSThrew(Exception):
    def __init__(self, thrown):
        super().__init__(repr(thrown))
        self.thrown = thrown


class Host:
    """The host-call callback: function id -> Python callable on decoded args."""

    def __init__(self):
        self.functions: dict = {}
        self.calls: list = []

    def __call__(self, function_id, tagged_args, tagged):
        args = from_tagged(tagged_args, tagged)
        self.calls.append((function_id, args))
        fn = self.functions[function_id]
        try:
            result = fn(*args)
        except Exception as exc:  # what the worker does with a host error reply
            error = exc.args[0] if exc.args and isinstance(exc.args[0], ErrorValue) else \
                ErrorValue(type(exc).__name__, str(exc), f"{type(exc).__name__}: {exc}")
            return {"ok": False, "e": to_tagged(error)[0]}
        return {"ok": True, "v": to_tagged(result)[0]}


class Engine:
    """An EngineContext plus helpers that unwrap the bridge's replies."""

    def __init__(self):
        self.host = Host()
        self.ctx = EngineContext(self.host)

    def op(self, *request):
        return self.ctx.op(*request)

    @staticmethod
    def value(reply):
        if reply["ok"]:
            return from_tagged(reply["v"], reply.get("t", True))
        raise JSThrew(from_tagged(reply["e"], reply.get("t", True)))

    def run_reply(self, code, filename="test.js", mirror=False, line_offset=0, column_offset=0,
                  display_errors=True):
        return self.op("run", code, filename, mirror, line_offset, column_offset, display_errors)

    def run(self, code, filename="test.js", **kw):
        return self.value(self.run_reply(code, filename, **kw))

    def thrown(self, code, filename="test.js", **kw):
        with pytest.raises(JSThrew) as info:
            self.run(code, filename, **kw)
        return info.value.thrown

    def call(self, handle, *args, construct=False):
        hid = handle.handle_id if isinstance(handle, HandleRef) else handle
        return self.value(self.op("construct" if construct else "call", hid, to_tagged(list(args)), False))

    def expose(self, name, fn, function_id=None):
        function_id = function_id or len(self.host.functions) + 1
        self.host.functions[function_id] = fn
        self.value(self.op("set", 0, name, to_tagged(HostFunctionRef(function_id, name))))
        return function_id

    def echo(self, value):
        """A value sent into JS and straight back."""
        if not hasattr(self, "_identity"):
            self._identity = self.run("(function identity(v) { return v })")
        return self.call(self._identity, value)


@pytest.fixture
def engine():
    return Engine()




# -- the engine and its hooks ------------------------------------------------------

class TestEngine:
    def test_engine_name(self):
        assert "QuickJS" in ENGINE_NAME

    def test_reply_shape(self, engine):
        assert engine.run_reply("1 + 1") == {"ok": True, "v": 2, "t": False}
        reply = engine.run_reply("undefined")
        assert reply["ok"] and reply["t"] is True and reply["v"] == {TAG: "u"}
        bad = engine.run_reply("throw 5")
        assert bad == {"ok": False, "e": 5, "t": False}

    def test_only_the_call_hook_is_exported(self, engine):
        assert engine.ctx._check_exported_function_exists(b"call")
        assert not engine.ctx._check_exported_function_exists(b"dukpy.load_module")

    def test_unknown_op(self, engine):
        with pytest.raises(JSThrew) as info:
            engine.value(engine.op("no_such_op", 1))
        assert info.value.thrown.name == "TypeError" and "unknown op" in info.value.thrown.message

    def test_contexts_are_independent(self):
        a, b = Engine(), Engine()
        a.run("var shared = 1")
        assert b.run("typeof shared") == "undefined"
        assert a.run("shared") == 1


# -- a clean global ----------------------------------------------------------------

class TestCleanGlobal:
    def test_fresh_context(self, engine):
        assert engine.run(HOOK_TYPES) == ["undefined"] * len(HOOKS)
        assert engine.run("Object.keys(globalThis)") == []
        assert engine.value(engine.op("keys", 0)) == []
        names = engine.run("Object.getOwnPropertyNames(globalThis)")
        assert not set(HOOKS) & set(names)

    def test_still_clean_after_many_ops(self, engine):
        engine.expose("hostFn", lambda *a: len(a))
        fn = engine.run("(function f(x) { return hostFn(x, x) })")
        for i in range(3):
            assert engine.call(fn, i) == 2
            engine.value(engine.op("set", 0, "tmp", to_tagged(i)))
            assert engine.value(engine.op("get", 0, "tmp")) == i
            assert engine.value(engine.op("has", 0, "tmp")) is True
            assert engine.value(engine.op("delete", 0, "tmp")) is True
            engine.value(engine.op("compile_function", "return 1", [], "c.js", to_tagged([])))
            assert engine.op("check_syntax", "1 +", "s.js", 0, 0, True)["ok"] is False
            p = engine.run("Promise.resolve(1)")
            engine.value(engine.op("promise_state", p.handle_id))
            engine.value(engine.op("release", [p.handle_id]))
            assert engine.run(HOOK_TYPES) == ["undefined"] * len(HOOKS)
        assert engine.value(engine.op("keys", 0)) == ["hostFn"]
        names = engine.run("Object.getOwnPropertyNames(globalThis)")
        assert not set(HOOKS) & set(names)

    def test_hooks_invisible_during_a_host_call(self, engine):
        seen = []
        engine.expose("peek", lambda: seen.append(engine.run(HOOK_TYPES)) or True)
        assert engine.run("peek() && [" + ", ".join(f"typeof {h}" for h in HOOKS) + "]") == ["undefined"] * len(HOOKS)
        assert seen == [["undefined"] * len(HOOKS)]

    def test_user_code_cannot_reach_call_python(self, engine):
        assert engine.run("typeof globalThis.call_python + typeof globalThis.dukpy") == "undefinedundefined"
        assert engine.run("var dukpy = 1, call_python = 2; typeof dukpy") == "number"
        # Names like any other: no eval of dukpy's rewrites them, the bridge leaves them be.
        assert engine.run("[dukpy, call_python]") == [1, 2]

    def test_user_defined_console_and_performance_survive(self, engine):
        engine.run("globalThis.performance = 1; var console = {log() {}}")
        assert engine.run("[typeof performance, typeof console]") == ["number", "object"]

    def test_non_configurable_hook_name_does_not_brick_the_context(self, engine):
        engine.run("Object.defineProperty(globalThis, 'dukpy', {value: 1, writable: true, configurable: false}); 0")
        assert engine.run("1 + 1") == 2


# -- bridge operations ---------------------------------------------------------------

class TestOps:
    def test_run_completion_values(self, engine):
        assert engine.run("var x = 20; x + 1") == 21
        assert engine.run("x") == 20  # var declarations become globals
        assert engine.run("") is undefined
        assert engine.run("'use strict'; let y = 2; y") == 2

    def test_run_mirror(self, engine):
        reply = engine.run_reply("var a = 1; globalThis.b = [a]; 0", mirror=True)
        assert reply["ok"] and from_tagged(reply["g"], reply["gt"]) == {"a": 1, "b": [1]}
        assert "g" not in engine.run_reply("1")
        failed = engine.run_reply("var c = 3; throw new Error('x')", mirror=True)
        assert not failed["ok"] and from_tagged(failed["g"], failed["gt"])["c"] == 3

    def test_run_drains_promise_jobs_before_replying(self, engine):
        assert engine.run("var log = []; Promise.resolve().then(() => log.push('job')); log") == ["job"]
        reply = engine.run_reply("var late = 0; Promise.resolve().then(() => { late = 1 }); 0", mirror=True)
        assert from_tagged(reply["g"], reply["gt"])["late"] == 1

    def test_call_and_construct(self, engine):
        add = engine.run("(function add(a, b) { return a + b })")
        assert isinstance(add, HandleRef) and (add.kind, add.class_name, add.name) == ("function", "Function", "add")
        assert engine.call(add, 2, 3) == 5
        assert engine.call(add, "a", "b") == "ab"
        point = engine.run("(class Point { constructor(x) { this.x = x } })")
        obj = engine.call(point, 4, construct=True)
        assert isinstance(obj, HandleRef) and (obj.kind, obj.class_name) == ("object", "Point")
        assert engine.value(engine.op("get", obj.handle_id, "x")) == 4
        with pytest.raises(JSThrew) as info:
            engine.call(point, 1)  # a class needs `new`
        assert info.value.thrown.name == "TypeError"

    def test_call_mirror(self, engine):
        fn = engine.run("(function () { globalThis.touched = true; return 1 })")
        reply = engine.op("call", fn.handle_id, to_tagged([]), True)
        assert from_tagged(reply["g"], reply["gt"])["touched"] is True

    def test_get_set_has_delete_keys_on_the_global(self, engine):
        v = engine.value
        assert v(engine.op("set", 0, "answer", to_tagged({"n": 42}))) is undefined
        assert v(engine.op("get", 0, "answer")) == {"n": 42}
        assert v(engine.op("has", 0, "answer")) is True
        assert v(engine.op("has", 0, "missing")) is False
        assert v(engine.op("has", 0, "toString")) is False  # own properties only
        assert v(engine.op("keys", 0)) == ["answer"]
        assert v(engine.op("delete", 0, "answer")) is True
        assert v(engine.op("keys", 0)) == []
        with pytest.raises(JSThrew) as info:
            v(engine.op("get", 0, "answer"))
        assert info.value.thrown.name == "ReferenceError"
        assert info.value.thrown.message == "answer is not defined"
        assert isinstance(v(engine.op("get", 0, "Array")), HandleRef)

    def test_ops_on_handles(self, engine):
        obj = engine.run("new (class Box { constructor() { this.a = 1 } })")
        v = engine.value
        assert v(engine.op("keys", obj.handle_id)) == ["a"]
        v(engine.op("set", obj.handle_id, "b", to_tagged([2])))
        assert v(engine.op("get", obj.handle_id, "b")) == [2]
        assert v(engine.op("has", obj.handle_id, "b")) is True
        assert v(engine.op("delete", obj.handle_id, "a")) is True
        assert v(engine.op("keys", obj.handle_id)) == ["b"]

    def test_set_and_delete_read_only(self, engine):
        with pytest.raises(JSThrew) as info:
            engine.value(engine.op("set", 0, "NaN", to_tagged(1)))
        assert info.value.thrown.name == "TypeError"
        with pytest.raises(JSThrew):
            engine.value(engine.op("delete", 0, "NaN"))

    def test_set_globals(self, engine):
        engine.value(engine.op("set_globals", to_tagged({"a": 1, "b": [undefined]})))
        assert engine.run("[a, b]") == [1, [undefined]]

    def test_promise_state(self, engine):
        v = engine.value
        pending = engine.run("new Promise(() => {})")
        assert (pending.kind, pending.class_name) == ("promise", "Promise")
        assert v(engine.op("promise_state", pending.handle_id)) == ["pending", undefined]
        done = engine.run("Promise.resolve({ok: 1})")
        assert v(engine.op("promise_state", done.handle_id)) == ["fulfilled", {"ok": 1}]
        failed = engine.run("Promise.reject(new RangeError('no'))")
        state, reason = v(engine.op("promise_state", failed.handle_id))
        assert state == "rejected" and reason.name == "RangeError" and reason.message == "no"
        later = engine.run("var resolveIt; new Promise(r => { resolveIt = r })")
        engine.run("resolveIt(7)")
        assert v(engine.op("promise_state", later.handle_id)) == ["fulfilled", 7]

    def test_returned_rejected_promise_is_not_unhandled(self, engine):
        assert isinstance(engine.run("Promise.reject(1)"), HandleRef)
        fn = engine.run("(async function () { throw new Error('async') })")
        p = engine.call(fn)
        assert engine.value(engine.op("promise_state", p.handle_id))[0] == "rejected"

    def test_unhandled_rejection_does_not_fail_the_run(self, engine):
        # As in node:vm, where it goes to the process's unhandledRejection instead.
        assert engine.run("var p = Promise.reject(1); 0") == 0
        assert engine.ctx.usable
        assert engine.run("typeof p") == "object"

    def test_compile_function(self, engine):
        fn = engine.value(engine.op("compile_function", "return a * b", ["a", "b"], "cf.js", to_tagged([])))
        assert isinstance(fn, HandleRef) and fn.kind == "function"
        assert engine.call(fn, 6, 7) == 42

    def test_compile_function_extensions(self, engine):
        exts = [{"x": 1, "y": 1}, {"y": 2}]  # the last one is innermost
        fn = engine.value(engine.op("compile_function", "return [x, y, z]", ["z"], "cf.js", to_tagged(exts)))
        assert engine.call(fn, 3) == [1, 2, 3]

    def test_compile_function_syntax_error(self, engine):
        with pytest.raises(JSThrew) as info:
            engine.value(engine.op("compile_function", "return (", [], "cf.js", to_tagged([])))
        assert info.value.thrown.name == "SyntaxError" and "cf.js" in info.value.thrown.stack

    def test_check_syntax(self, engine):
        assert engine.value(engine.op("check_syntax", "let a = 1; a + 2", "ok.js", 0, 0, True)) is True
        assert engine.run("typeof a") == "undefined"  # compiled, not run
        with pytest.raises(JSThrew) as info:
            engine.value(engine.op("check_syntax", "let = ;", "bad.js", 0, 0, True))
        assert info.value.thrown.name == "SyntaxError"
        # A body that closes the wrapper early is refused as Node refuses it.
        for breakout in ("}); throw 1; (function(){", "}); (function(){"):
            with pytest.raises(JSThrew) as info:
                engine.value(engine.op("check_syntax", breakout, "w.js", 0, 0, True))
            assert info.value.thrown.name == "SyntaxError"

    def test_release(self, engine):
        a = engine.run("(function a() {})")
        b = engine.run("new Map([[{}, 1]]).keys()")  # an iterator: kept by handle
        stats = engine.value(engine.op("stats"))
        assert stats["handles"] == 2
        assert engine.value(engine.op("release", [a.handle_id])) == 1
        with pytest.raises(JSThrew) as info:
            engine.call(a)
        assert info.value.thrown.name == "ReferenceError"
        assert f"handle {a.handle_id} was released" in info.value.thrown.message
        assert engine.value(engine.op("release", [b.handle_id, 999])) == 0

    def test_every_send_makes_a_new_handle(self, engine):
        first, second = engine.run("var f = function f() {}; [f, f]")
        assert first.handle_id != second.handle_id
        same_fn = engine.run("(function (a, b) { return a === b })")
        assert engine.call(same_fn, first, second) is True


# -- tagged JSON ------------------------------------------------------------------------

VALUES = [
    None, True, False, 0, -1, 2**53 - 1, 1.5, "", "text ✓ 😀", "\ud800", "a\udfffb",
    math.nan, math.inf, -math.inf, -0.0, 0.25,
    undefined, BigInt(0), BigInt(-(2**100)), BigInt(10**40),
    [], {}, [1, [2, [3]]], {"a": {"b": [None, "c"]}}, {TAG: "not a tag", "x": 1},
    b"", b"\x00\x01\xfe\xff" * 3,
    JSRegExp("^a+$", "gi"), JSRegExp("[\\d]", "u"),
    dt.datetime(2024, 5, 6, 7, 8, 9, 123000, tzinfo=UTC), dt.datetime(1, 1, 1, tzinfo=UTC),
    JSDate(math.nan), JSDate(8.64e15), JSDate(-8.64e15),
    JSMap(), JSMap({"k": 1, 2: "two", None: undefined, BigInt(3): [3]}),
    JSMap({Unhashable([1, 2]): "list key", Unhashable({"o": 1}): "object key"}),
    JSSet(), JSSet({1, "a", None}), JSSet({Unhashable([1])}),
    JSTypedArray("Uint8Array", b"\x01\x02\x03"), JSTypedArray("Float64Array", struct.pack("<2d", 1.5, -0.25)),
    JSTypedArray("BigInt64Array", struct.pack("<q", -(2**40))), JSTypedArray("Int16Array", b"\x01\x00\xff\xff"),
    JSTypedArray("DataView", b"\x07\x08"),
    ErrorValue("Error", "plain", "Error: plain\n    at x.js:1:1"),
    ErrorValue("RangeError", "ranged", "RangeError: ranged\n    at y.js:2:2", {"code": "E_RANGE", "n": [1]}),
    ErrorValue("MyError", "custom", "MyError: custom\n    at z.js:3:3", {"detail": {"k": undefined}}),
    JSSymbol("desc"), JSSymbol(None), JSSymbol("app.registered", True),
]


class TestTagged:
    @pytest.mark.parametrize("value", VALUES, ids=lambda v: repr(v)[:40])
    def test_pure_round_trip(self, value):
        out, tagged = to_tagged(value)
        assert same(from_tagged(out, tagged), value)

    def test_plain_json_is_not_tagged(self):
        assert to_tagged({"a": [1, "x", None, True]}) == [{"a": [1, "x", None, True]}, False]
        assert to_tagged([undefined])[1] is True
        obj = {"a": 1}
        assert from_tagged(obj, False) is obj

    def test_unsafe_integers_become_floats(self):
        assert to_tagged(2**60)[0] == float(2**60)

    def test_unknown_tag(self):
        with pytest.raises(ValueError):
            from_tagged({TAG: "?"}, True)

    @pytest.mark.parametrize("value", VALUES, ids=lambda v: repr(v)[:40])
    def test_round_trip_through_the_bridge(self, engine, value):
        assert same(engine.echo(value), value)

    def test_values_from_js(self, engine):
        got = engine.run("""[undefined, NaN, -0, Infinity, 2n ** 80n, new Date(0), /x/y, new Map([[1, 2]]),
            new Set(['s']), new Uint8Array([1, 2]), new ArrayBuffer(2), Symbol('s'), Symbol.for('r'),
            new Date(NaN), new DataView(new ArrayBuffer(4), 1, 2), Object.create(null)]""")
        assert same(got, [
            undefined, math.nan, -0.0, math.inf, BigInt(2**80), dt.datetime(1970, 1, 1, tzinfo=UTC),
            JSRegExp("x", "y"), JSMap({1: 2}), JSSet({"s"}), JSTypedArray("Uint8Array", b"\x01\x02"),
            b"\x00\x00", JSSymbol("s"), JSSymbol("r", True), JSDate(math.nan),
            JSTypedArray("DataView", b"\x00\x00"), {},
        ])

    def test_js_types_survive_in_js(self, engine):
        check = engine.run("""(function (u, big, d, re, m, s, buf, ta, err, sym, reg) { return [
            u === undefined, typeof big, d instanceof Date && d.getTime(), re instanceof RegExp && re.flags,
            m instanceof Map && m.get('k'), s instanceof Set && s.has(2), buf instanceof ArrayBuffer && buf.byteLength,
            ta instanceof Float32Array && ta[0], err instanceof TypeError && err.message,
            typeof sym, reg === Symbol.for('reg')] })""")
        got = engine.call(check, undefined, BigInt(5), dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC),
                          JSRegExp("a", "gm"), JSMap({"k": "v"}), JSSet({2}), b"abc",
                          JSTypedArray("Float32Array", struct.pack("<f", 0.5)),
                          ErrorValue("TypeError", "typed", ""), JSSymbol("s"), JSSymbol("reg", True))
        assert got == [True, "bigint", 1000, "gm", "v", True, 3, 0.5, "typed", "symbol", True]

    def test_cycles_into_js_and_back(self, engine):
        a = [1]
        a.append(a)
        got = engine.echo(a)
        assert got[0] == 1 and got[1] is got
        d = {"name": "d"}
        d["self"] = d
        d["list"] = [d, a, a]
        got = engine.echo(d)
        assert got["self"] is got and got["list"][0] is got
        assert got["list"][1] is got["list"][2] and got["list"][1][1] is got["list"][1]

    def test_cycles_seen_from_js(self, engine):
        a = []
        a.append(a)
        check = engine.run("(function (x, y) { return [x[0] === x, y.m.get(y) === y.m, y.e.self === y.e] })")
        m = JSMap()
        e = ErrorValue("Error", "e", "")
        e.props = {"self": e}
        y = {"m": m, "e": e}
        m[Unhashable(y)] = m
        assert engine.call(check, a, y) == [True, True, True]

    def test_cycles_made_in_js(self, engine):
        got = engine.run("var o = {n: 1}; o.self = o; o.list = [o, o]; o")
        assert got["self"] is got and got["list"][0] is got and got["list"][1] is got
        m = engine.run("var m = new Map(); m.set('me', m); m")
        assert m["me"] is m
        err = engine.run("var e = new Error('loop'); e.self = e; e")
        assert err.props["self"] is err

    def test_back_reference_to_a_map_key(self, engine):
        # The bridge numbers a Map entry's key before its value (as the wire codec does).
        got = engine.run("var k = [1], v = [2]; [new Map([[k, v]]), k, v]")
        key = next(iter(got[0]))
        assert got[1] is key.value and got[1] == [1]
        assert got[2] is got[0][key] and got[2] == [2]

    def test_handles_go_back_as_the_same_value(self, engine):
        obj = engine.run("var box = new (class Box {})(); box")
        is_box = engine.run("(function (x) { return x === box })")
        assert engine.call(is_box, obj) is True
        back = engine.echo(obj)
        assert isinstance(back, HandleRef) and back.class_name == "Box" and back.handle_id != obj.handle_id

    def test_host_function_ref_round_trip(self, engine):
        back = engine.echo(HostFunctionRef(77, "named"))
        assert isinstance(back, HostFunctionRef) and back.function_id == 77
        assert back.name == ""  # the bridge sends only the id
        name_of = engine.run("(function (f) { return f.name })")
        assert engine.call(name_of, HostFunctionRef(77, "named")) == "named"

    def test_surrogate_pair_written_as_two_code_points(self, engine):
        # Python can hold a UTF-16 surrogate pair as two code points; JS sees one character.
        assert engine.echo("\ud83d\ude00") == "\U0001F600"

    def test_js_strings_with_lone_surrogates(self, engine):
        assert engine.run("'a\\ud800b'") == "a\ud800b"
        assert engine.run("'\\udc00'.length") == 1

    def test_integers_and_floats_from_js(self, engine):
        got = engine.run("[1, 1.0, 0, 2 ** 53 - 1, 2 ** 60, 0.1]")
        assert got[:4] == [1, 1, 0, 2**53 - 1] and got[5] == 0.1
        assert all(type(n) is int for n in got[:4])  # JS has one number type: integral ones are ints
        # JSON writes 2**60 as 1152921504606847000; the wire codec turns it into the same double.
        assert encode_value(got[4]) == float(2**60)


# -- host functions -------------------------------------------------------------------------

class TestHostFunctions:
    def test_call_with_values(self, engine):
        engine.expose("py", lambda *args: {"got": list(args)})
        got = engine.run("py(1, 'two', undefined, 3n, new Map([[1, 2]]))")
        assert same(got, {"got": [1, "two", undefined, BigInt(3), JSMap({1: 2})]})
        assert engine.host.calls[-1][0] == 1

    def test_host_function_in_js(self, engine):
        engine.expose("named", lambda: None)
        assert engine.run("[typeof named, named.name]") == ["function", "named"]
        assert engine.run("named") == HostFunctionRef(1, "")
        assert engine.run("named()") is None

    def test_same_js_function_per_id(self, engine):
        engine.expose("h", lambda: 1, function_id=5)
        check = engine.run("(function (f) { return f === h })")
        assert engine.call(check, HostFunctionRef(5, "h")) is True

    def test_host_error_becomes_a_js_exception(self, engine):
        def fail(kind):
            raise ValueError(ErrorValue(kind, "host says no", f"{kind}: host says no", {"pythonType": "ValueError"}))

        engine.expose("fail", fail)
        got = engine.run("""try { fail('RangeError') } catch (e) {
            [e instanceof RangeError, e.name, e.message, e.pythonType] }""")
        assert got == [True, "RangeError", "host says no", "ValueError"]
        got = engine.run("try { fail('HostError') } catch (e) { [e instanceof Error, e.name] }")
        assert got == [True, "HostError"]
        thrown = engine.thrown("fail('TypeError')")
        assert isinstance(thrown, ErrorValue) and thrown.name == "TypeError" and thrown.props == {"pythonType": "ValueError"}

    def test_python_exception_in_the_callback(self):
        def callback(function_id, tagged_args, tagged):
            raise KeyError("unexpected")

        ctx = EngineContext(callback)
        ctx.op("set", 0, "cb", to_tagged(HostFunctionRef(1, "cb")))
        reply = ctx.op("run", "try { cb(); 'no' } catch (e) { [e.name, e.message] }", "t.js", False, 0, 0, True)
        name, message = reply["v"]
        assert name == "InternalError" and "unexpected" in message

    def test_malformed_host_reply(self):
        ctx = EngineContext(lambda *a: None)
        ctx.op("set", 0, "cb", to_tagged(HostFunctionRef(1, "cb")))
        reply = ctx.op("run", "try { cb() } catch (e) { e.message }", "t.js", False, 0, 0, True)
        assert "malformed reply" in reply["v"]

    def test_host_calls_back_into_js(self, engine):
        engine.expose("outer", lambda n: engine.run(f"inner({n}) * 10", "nested.js"))
        engine.run("function inner(n) { return n + 1 }")
        assert engine.run("outer(4) + 1") == 51

    def test_nested_state_is_shared(self, engine):
        engine.expose("bump", lambda: engine.run("counter += 1"))
        assert engine.run("var counter = 0; bump(); bump(); counter") == 2

    def test_deep_recursion_through_the_host(self, engine):
        def down(n):
            return engine.call(engine._down, n - 1) if n > 0 else "bottom"

        engine.expose("down", down)
        engine._down = engine.run("(function (n) { return down(n) })")
        assert engine.call(engine._down, 10) == "bottom"


# -- stack traces ----------------------------------------------------------------------------

class TestStacks:
    def test_filename_and_position(self, engine):
        err = engine.thrown("var x = 1;\n\n  null.f;", "script.js")
        assert err.name == "TypeError"
        assert err.stack.splitlines()[0] == f"TypeError: {err.message}"
        assert "at script.js:3:3" in err.stack
        assert "<input>" not in err.stack and "<dukpy>" not in err.stack and "native" not in err.stack

    def test_function_frames(self, engine):
        err = engine.thrown("function boom() {\n  throw new Error('deep')\n}\nboom()", "frames.js")
        lines = err.stack.splitlines()
        assert lines[0] == "Error: deep"
        assert lines[1].strip().startswith("at boom (frames.js:2:")
        assert lines[2].strip().startswith("at frames.js:4:")

    def test_line_and_column_offsets(self, engine):
        err = engine.thrown("null.x", "off.js", line_offset=5, column_offset=7)
        assert "at off.js:6:8" in err.stack
        err = engine.thrown("\n\nnull.x", "off.js", line_offset=5, column_offset=7)
        assert "at off.js:8:1" in err.stack  # the column offset applies to the first line only

    def test_default_filename(self, engine):
        err = engine.thrown("null.x", "evalmachine.<anonymous>")
        assert "at evalmachine.<anonymous>:1:1" in err.stack

    def test_syntax_error_display(self, engine):
        err = engine.thrown("let a = 1;\nlet let = 2;", "syn.js", line_offset=10)
        assert err.name == "SyntaxError"
        head = err.stack.split("\n")
        assert head[0] == "syn.js:12" and head[1] == "let let = 2;" and head[2].strip() == "^"
        assert head[3] == "" and head[4].startswith("SyntaxError: ")
        plain = engine.thrown("let let = 2;", "syn.js", display_errors=False)
        assert plain.stack.startswith("SyntaxError: ") and "at syn.js:1:" in plain.stack

    def test_check_syntax_positions(self, engine):
        with pytest.raises(JSThrew) as info:
            engine.value(engine.op("check_syntax", "1\n a b", "chk.js", 10, 0, True))
        assert info.value.thrown.stack.startswith("chk.js:12\n a b\n")
        with pytest.raises(JSThrew) as info:
            engine.value(engine.op("check_syntax", "a b", "chk.js", 0, 4, False))
        assert "at chk.js:1:5" in info.value.thrown.stack

    def test_error_from_a_call(self, engine):
        fn = engine.run("(function f() { throw new Error('in f') })", "fn.js")
        with pytest.raises(JSThrew) as info:
            engine.call(fn)
        assert "at f (fn.js:1:" in info.value.thrown.stack

    def test_thrown_non_errors(self, engine):
        assert engine.thrown("throw {code: 1}") == {"code": 1}
        assert engine.thrown("throw undefined") is undefined
        assert engine.thrown("throw 'text'") == "text"

    def test_error_props(self, engine):
        err = engine.thrown("var e = new RangeError('r'); e.code = 'E_R'; e.info = {a: [1]}; throw e")
        assert err.props == {"code": "E_R", "info": {"a": [1]}}
        custom = engine.thrown("class MyErr extends Error { constructor(m) { super(m); this.name = 'MyErr' } }; throw new MyErr('mine')")
        assert custom.name == "MyErr" and custom.stack.startswith("MyErr: mine")

    def test_nested_run_keeps_the_outer_filename(self, engine):
        engine.expose("cb", lambda: engine.run("1", "inner.js", line_offset=10))
        err = engine.thrown("cb();\nnull.x", "outer.js")
        assert "at outer.js:2:1" in err.stack

    def test_function_keeps_its_own_filename(self, engine):
        fn = engine.run("\n(function f() { throw new Error('in f') })", "a.js")
        engine.run("1", "b.js", line_offset=100)
        with pytest.raises(JSThrew) as info:
            engine.call(fn)
        assert "at f (a.js:2:" in info.value.thrown.stack

    def test_compile_function_positions(self, engine):
        fn = engine.value(engine.op("compile_function", "throw new Error('cf')", [], "cf.js", to_tagged([])))
        with pytest.raises(JSThrew) as info:
            engine.call(fn)
        assert "cf.js:1:" in info.value.thrown.stack


# -- timers -----------------------------------------------------------------------------------

@pytest.mark.timeout(30, method="thread")
@pytest.mark.usefixtures("alarm")
class TestInterrupts:
    def test_deadline_interrupts_an_infinite_loop(self, engine):
        deadlines = Deadlines()
        started = time.monotonic()
        with pytest.raises(ScriptTimeout) as info:
            with deadlines.deadline(50) as token:
                engine.run("while (true) {}")
        assert info.value.token is token
        assert time.monotonic() - started < 10
        assert engine.ctx.usable
        assert engine.run("1 + 1") == 2
        assert engine.run(HOOK_TYPES) == ["undefined"] * len(HOOKS)

    def test_timer_left_armed_after_a_deadline_disarms_itself_when_it_fires(self, engine):
        # A deadline's end leaves the timer armed (back-to-back calls then make no
        # setitimer call); when it fires with nothing expired it raises nothing
        # and disarms.
        deadlines = Deadlines()
        with deadlines.deadline(50):
            assert engine.run("1 + 1") == 2
        assert 0 < signal.getitimer(signal.ITIMER_REAL)[0] <= 0.05
        with deadlines.deadline(10_000):  # later than the armed timer: nothing to arm
            assert engine.run("2 + 2") == 4
        assert 0 < signal.getitimer(signal.ITIMER_REAL)[0] <= 0.05
        old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
        try:
            assert signal.sigtimedwait({signal.SIGALRM}, 5) is not None
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old)
        deadlines._on_alarm(signal.SIGALRM, None)  # what its handler does when it fires
        assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)

    def test_an_earlier_deadline_arms_the_timer_again(self, engine):
        deadlines = Deadlines()
        with deadlines.deadline(10_000):
            pass
        with pytest.raises(ScriptTimeout):
            with deadlines.deadline(50):
                engine.run("for (;;) {}")
        assert engine.run("'alive'") == "alive"

    def test_nested_deadlines_report_the_one_that_expired(self, engine):
        deadlines = Deadlines()
        with pytest.raises(ScriptTimeout) as info:
            with deadlines.deadline(50) as outer:
                with deadlines.deadline(20_000):
                    engine.run("for (;;) {}")
        assert info.value.token is outer
        assert engine.run("'alive'") == "alive"

    def test_interrupts_a_call(self, engine):
        spin = engine.run("(function spin() { for (;;) {} })")
        deadlines = Deadlines()
        with pytest.raises(ScriptTimeout):
            with deadlines.deadline(50):
                engine.call(spin)
        assert engine.call(engine.run("(function () { return 3 })")) == 3

    def test_interrupts_promise_jobs(self, engine):
        deadlines = Deadlines()
        with pytest.raises(ScriptTimeout):
            with deadlines.deadline(50):
                engine.run("Promise.resolve().then(() => { for (;;) {} }); 1")
        try:
            assert engine.run("2 + 2") == 4
        except EngineError as exc:  # dukpy may refuse the context after an aborted job drain
            assert exc.unusable and not engine.ctx.usable

    def test_plain_sigalrm_handler(self, engine):
        class Stop(BaseException):
            pass

        def handler(signum, frame):
            raise Stop()

        signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(Stop):
            engine.run("var n = 0; while (true) { n++ }")
        signal.setitimer(signal.ITIMER_REAL, 0)
        assert engine.run("1 + 1") == 2
        assert engine.run("n > 0") is True

    def test_deadline_during_a_host_call_is_not_catchable(self, alarm):
        """The worker's contract: on_abort re-delivers the timeout through the timer."""
        deadlines = Deadlines()

        def busy():
            limit = time.monotonic() + 5  # bounded: the alarm normally ends this at once
            while time.monotonic() < limit:
                pass
            return "finished"

        ctx = EngineContext(lambda fid, args, tagged: {"ok": True, "v": busy()},
                            on_abort=lambda exc: deadlines.redeliver_soon())
        ctx.op("set", 0, "busy", to_tagged(HostFunctionRef(1, "busy")))
        with pytest.raises(ScriptTimeout):
            with deadlines.deadline(50):
                ctx.op("run", "try { busy() } catch (e) { 'caught: ' + e } while (true) {}",
                       "t.js", False, 0, 0, True)
        assert ctx.op("run", "1 + 1", "t.js", False, 0, 0, True)["v"] == 2

    def test_a_stop_after_the_host_answered_waits_for_the_engine(self, alarm):
        """A timeout that lands once the host has answered (here: while the reply is
        encoded) is not raised into dukpy, where it would become a catchable error (and
        its re-delivery, handled in dukpy's formatting of that error, an "Unknown Error"
        a script could catch: seen in CI as a breakOnSigint call ending in a JS error)."""
        from isolate.workers.engine import in_abort_tail

        deadlines = Deadlines()
        seen = {}

        class SlowReply(dict):
            # json.dumps asks a dict subclass for its items: this runs in the encoding
            # of the reply, after the host answered, and outlasts the deadline there.
            def items(self):
                seen["tail_defers"] = in_abort_tail(sys._getframe())
                past_deadline = time.monotonic() + 0.2  # the deadline is 50 ms
                while time.monotonic() < past_deadline:
                    pass  # the alarm fires in here and is deferred, not raised
                seen["tail_finished"] = True
                return super().items()

        def host(fid, args, tagged):
            seen["wait_defers"] = in_abort_tail(sys._getframe())
            return SlowReply(ok=True, v="answer")

        ctx = EngineContext(host, on_abort=lambda exc: deadlines.redeliver_soon())
        ctx.op("set", 0, "answer", to_tagged(HostFunctionRef(1, "answer")))
        with pytest.raises(ScriptTimeout):
            with deadlines.deadline(50):
                ctx.op("run", "try { answer() } catch (e) { globalThis.caught = String(e) } while (true) {}",
                       "t.js", False, 0, 0, True)
        assert seen == {"wait_defers": False, "tail_defers": True, "tail_finished": True}
        assert ctx.op("run", "typeof caught", "t.js", False, 0, 0, True)["v"] == "undefined"

    def test_a_closed_engine_leaves_no_hook_count_behind(self):
        from isolate.workers import engine as engine_module

        before = len(engine_module._hook_calls_by_ctx)
        for _ in range(50):
            ctx = EngineContext(lambda fid, args, tagged: {"ok": True, "v": 1})
            assert engine_module._hook_calls(ctx._native[2]) == 0
            ctx.close()
        assert len(engine_module._hook_calls_by_ctx) == before

    @pytest.mark.timeout(60)
    def test_a_stop_in_dukpys_checks_around_a_host_call_waits_for_the_engine(self, alarm):
        """dukpy's ``call_python`` checks for signals itself, before it calls the host and
        after the host answered, where no Python frame of ours is on the stack. A stop
        raised there became a catchable "interrupted" (or "Failed to resolve Python
        function") error with Python's error indicator left set, and the next alarm's
        handler then failed with a SystemError (seen in CI). A script that does nothing
        but call the host spends most of its time in those checks: before the fix,
        ~80% of these runs failed."""
        outcomes = collections.Counter()
        for _ in range(200):
            deadlines = Deadlines()
            ctx = EngineContext(lambda fid, args, tagged: {"ok": True, "v": 1},
                                on_abort=lambda exc: deadlines.redeliver_soon())
            ctx.op("set", 0, "answer", to_tagged(HostFunctionRef(1, "answer")))
            try:
                with deadlines.deadline(2):
                    ctx.op("run", "for (;;) { try { answer() } catch (e) { globalThis.caught = String(e) } }",
                           "t.js", False, 0, 0, True)
            except ScriptTimeout:
                outcomes["timeout"] += 1
            except BaseException as exc:  # noqa: BLE001 (counted and asserted below)
                outcomes[repr(exc)[:120]] += 1
            signal.setitimer(signal.ITIMER_REAL, 0)
            caught = ctx.op("run", "typeof caught == 'undefined' ? '' : caught", "t.js", False, 0, 0, True)["v"]
            if caught:
                outcomes["caught: " + caught] += 1
            assert ctx.op("run", "1 + 1", "t.js", False, 0, 0, True)["v"] == 2
        assert outcomes == {"timeout": 200}, dict(outcomes)


    @pytest.mark.timeout(120)
    def test_a_redelivery_that_lands_while_an_abort_is_handled_is_not_lost(self):
        """A stop raised in a host call is caught there and handed back as an abort; the
        bridge then waits for the stop's re-delivery (50 us later). If that alarm came
        while the catching ``except`` still ran, the handler saw a stop unwinding and
        returned without arming the timer again: nothing stopped the script, ever (a
        CI run hung on the test above). Here the abort handler itself takes 2 ms. In a
        child process with a deadline: the old behaviour hangs there, not the suite."""
        result = subprocess.run([sys.executable, "-c", _REDELIVERY_SCENARIO], capture_output=True,
                                text=True, timeout=60)
        assert result.returncode == 0 and result.stdout.split() == ["stopped"] * 5, result.stderr[-2000:]


_REDELIVERY_SCENARIO = """
import time
from isolate.workers.engine import EngineContext
from isolate.workers.tagged import to_tagged
from isolate.workers.worker import Deadlines, ScriptTimeout
from isolate.protocol import HostFunctionRef

deadlines = Deadlines()

def slow_abort(exc):
    deadlines.redeliver_soon()
    until = time.monotonic() + 0.002
    while time.monotonic() < until:
        pass  # still inside the except that caught the stop

def slow_host(fid, args, tagged):
    until = time.monotonic() + 0.005
    while time.monotonic() < until:
        pass  # the deadline passes in here: the stop lands in the host call
    return {"ok": True, "v": 1}

for _ in range(5):
    ctx = EngineContext(slow_host, on_abort=slow_abort)
    ctx.op("set", 0, "answer", to_tagged(HostFunctionRef(1, "answer")))
    try:
        with deadlines.deadline(2):
            ctx.op("run", "for (;;) { answer() }", "t.js", False, 0, 0, True)
    except ScriptTimeout:
        print("stopped", flush=True)
    assert ctx.op("run", "1 + 1", "t.js", False, 0, 0, True)["v"] == 2
"""


# -- syntax checks: nothing of the body runs ----------------------------------------------------

CLOSERS = [
    "}); globalThis.ran = 1; (function () {",
    "}; globalThis.ran = 1; function again() {",
    "}\nfunction __isolate_body() {",          # declares the checked name again
    "}; let undefined; function again() {",    # instantiation fails
    "}); for (;;) {} (function () {",
    "})",
]


class TestSyntaxCheck:
    @pytest.mark.parametrize("params", [None, [], ["a", "b"]])
    def test_bare_check(self, params):
        from isolate.workers.engine import function_body_compiles

        assert function_body_compiles("return 1", params) is True
        assert function_body_compiles("'use strict'; var x = arguments; return new.target", params) is True
        assert function_body_compiles("a b", params) is False
        for body in CLOSERS:
            assert function_body_compiles(body, params) is False, body

    @pytest.mark.parametrize("params", [None, ["a"]])
    def test_bridge_check_runs_nothing(self, engine, params):
        for body in CLOSERS:
            with pytest.raises(JSThrew) as info:
                engine.value(engine.op("check_syntax", body, "w.js", 0, 0, True, params))
            assert info.value.thrown.name == "SyntaxError", body
        assert engine.value(engine.op("check_syntax", "return a", "ok.js", 0, 0, True, params)) is True
        # Nothing ran. (A closing body's own declarations were instantiated, which is why
        # the worker runs this op only in a fresh context of its own.)
        assert engine.run("[typeof ran, typeof __isolate_body]") == ["undefined"] * 2

    def test_closing_bodies_read_as_node_reads_them(self, engine):
        # Where the body compiles as an expression's wrapper, Node's parser meets the '}' first.
        with pytest.raises(JSThrew) as info:
            engine.value(engine.op("check_syntax", "}); (function(){", "w.js", 0, 0, True, None))
        assert info.value.thrown.message == "Unexpected token '}'"


class TestHardenedEntry:
    """The bridge's own steps do not go through builtins a script can replace."""

    def test_ops_survive_hooked_builtins(self, engine):
        fn = engine.run("(function f(x) { return x + 1 })")
        engine.run("""
            Array.prototype.slice = function () { throw new Error('slice hooked') };
            Object.defineProperty(Map.prototype, 'size', { get() { throw new Error('size hooked') } });
            Object.defineProperty(Object.prototype, 'get', { get() { throw new Error('descriptor hooked') },
                                                             configurable: true });
            0
        """)
        assert engine.call(fn, 1) == 2
        assert engine.value(engine.op("stats")) == {"handles": 1, "hostFunctions": 0}
        assert engine.value(engine.op("release", [fn.handle_id])) == 0
        assert engine.run("1 + 1") == 2

    def test_a_call_python_on_the_global_is_not_the_hosts(self, engine):
        engine.expose("h", lambda: "from the host")
        engine.run("globalThis.call_python = function () { return { ok: true, v: 'forged' } }; 0")
        assert engine.run("h()") == "from the host"


# -- the worker's dispatch, in-process ---------------------------------------------------------

@pytest.fixture
def worker():
    """A Worker in this process, on two pipes; the test plays the host on the other ends.

    Replies the host will need are written into the pipe *before* the worker
    asks for them, so nothing blocks and no thread is needed.
    """
    from isolate.protocol import MessageStream
    from isolate.workers.worker import Worker

    saved = {s: signal.getsignal(s) for s in (signal.SIGALRM, signal.SIGUSR1)}
    to_worker_r, to_worker_w = os.pipe()
    to_host_r, to_host_w = os.pipe()
    w = Worker(MessageStream(to_worker_r, to_host_w))
    w.host = MessageStream(to_host_r, to_worker_w)
    yield w
    signal.setitimer(signal.ITIMER_REAL, 0)
    for s, handler in saved.items():
        signal.signal(s, handler)
    for fd in (to_worker_r, to_worker_w, to_host_r, to_host_w):
        os.close(fd)


def deliver(worker, message, *then):
    """Send ``message`` (and ``then``, queued behind it) to the worker; it serves ``message``."""
    for m in (message, *then):
        worker.host.write(m)
    worker._dispatch(worker.stream.read())


def answer(worker, message):
    """Serve one host message in the worker; return the worker's response (decoded)."""
    deliver(worker, message)
    reply = worker.host.read()
    # No acknowledgement comes first, timed or not: the worker sends no notifications.
    assert isinstance(reply, Response) and reply.msgid == message.msgid
    if reply.error is not None:
        code, text, data = reply.error
        return ("error", code, text, finish_values(data, reply.needs_finish))
    return finish_values(reply.result, reply.needs_finish)


@pytest.mark.timeout(30, method="thread")
class TestWorkerInProcess:
    def test_handshake(self, worker):
        worker.host.write(Request(0, "hello", [PROTOCOL_VERSION]))
        worker._handshake()
        reply = worker.host.read()
        assert reply.msgid == 0 and reply.error is None
        assert set(reply.result) == {"protocol", "pid", "engine", "python"}
        assert reply.result["protocol"] == PROTOCOL_VERSION and reply.result["pid"] == os.getpid()

    def test_handshake_mismatch(self, worker):
        worker.host.write(Request(0, "hello", [PROTOCOL_VERSION + 1]))
        with pytest.raises(ProtocolError):
            worker._handshake()
        reply = worker.host.read()
        assert reply.error[0] == "PROTOCOL_VERSION" and reply.error[2] is None

    def test_methods(self, worker):
        ctx = answer(worker, Request(1, "create_context", [0, {"name": "t", "globals": encode_value({"g": [1]})}]))
        assert ctx == 1
        assert answer(worker, Request(2, "run", [0, ctx, "g.push(2); g", {}])) == [[1, 2], None]
        assert answer(worker, Request(3, "run", [0, ctx, "var v = 1; v", {"mirror": True}])) == [1, {"g": [1, 2], "v": 1}]
        fn = answer(worker, Request(4, "run", [0, ctx, "(function twice(x) { return 2 * x })", {}]))[0]
        assert isinstance(fn, HandleRef) and fn.name == "twice"
        assert answer(worker, Request(5, "call", [0, ctx, fn.handle_id, [21], {}])) == [42, None]
        assert answer(worker, Request(6, "set", [0, ctx, 0, "k", encode_value(undefined)])) is undefined
        assert answer(worker, Request(7, "has", [0, ctx, 0, "k"])) is True
        assert answer(worker, Request(8, "keys", [0, ctx, 0])) == ["g", "v", "k"]
        assert answer(worker, Request(9, "get", [0, ctx, 0, "v"])) == 1
        assert answer(worker, Request(10, "delete", [0, ctx, 0, "k"])) is True
        cf = answer(worker, Request(11, "compile_function", [0, ctx, "return a + 1", ["a"], {}]))
        assert isinstance(cf, HandleRef) and cf.kind == "function"
        p = answer(worker, Request(12, "run", [0, ctx, "Promise.resolve(5)", {}]))[0]
        assert answer(worker, Request(13, "promise_state", [0, ctx, p.handle_id])) == ["fulfilled", 5]
        assert answer(worker, Request(14, "check_syntax", [0, 999, "a + b", {}])) is True  # ctx not used
        stats = answer(worker, Request(15, "stats", [0]))
        assert stats["pid"] == os.getpid() and stats["contexts"] == 1
        assert set(stats) == {"pid", "contexts", "scripts", "compiles", "env_keys", "fds"}
        deliver(worker, Notification("release", [ctx, [fn.handle_id]]))
        err = answer(worker, Request(16, "call", [0, ctx, fn.handle_id, [1], {}]))
        assert err[:2] == ("error", "JS_EXCEPTION") and err[3][0].name == "ReferenceError"
        deliver(worker, Notification("release_context", [ctx]))
        assert answer(worker, Request(17, "run", [0, ctx, "1", {}]))[:2] == ("error", "UNKNOWN_CONTEXT")

    def test_errors(self, worker):
        ctx = answer(worker, Request(1, "create_context", [0, {}]))
        err = answer(worker, Request(2, "run", [0, ctx, "var a = 1; throw new TypeError('t')", {"mirror": True}]))
        assert err[:3] == ("error", "JS_EXCEPTION", "t")
        thrown, globals_ = err[3]
        assert thrown.name == "TypeError" and globals_ == {"a": 1}
        err = answer(worker, Request(3, "run", [0, ctx, "throw 7", {}]))
        assert err == ("error", "JS_EXCEPTION", "Uncaught exception", [7, None])
        err = answer(worker, Request(4, "check_syntax", [0, ctx, "a b", {"filename": "x.js"}]))
        assert err[1] == "JS_EXCEPTION" and err[3][0].name == "SyntaxError"
        assert answer(worker, Request(5, "nope", [0]))[:2] == ("error", "UNKNOWN_METHOD")
        assert answer(worker, Request(6, "run", [0, ctx]))[:2] == ("error", "INVALID_PARAMS")
        assert answer(worker, Request(7, "run", [0, 42, "1", {}])) == \
            ("error", "UNKNOWN_CONTEXT", "no context 42 on this worker", None)
        internal = answer(worker, Request(8, "run", [0, ctx, "1", "not a map"]))
        assert internal[1] == "INTERNAL" and "Traceback" in internal[3]
        assert answer(worker, Request(9, "run", [0, ctx, "'still fine'", {}])) == ["still fine", None]

    def test_timeout(self, worker):
        ctx = answer(worker, Request(1, "create_context", [0, {}]))
        err = answer(worker, Request(2, "run", [0, ctx, "while (true) {}", {"timeout": 50}]))
        assert err == ("error", "SCRIPT_TIMEOUT", "Script execution timed out after 50ms", 50)
        assert answer(worker, Request(3, "run", [0, ctx, "1 + 1", {}])) == [2, None]

    def test_call_host_with_a_nested_request(self, worker):
        ctx = answer(worker, Request(1, "create_context", [0, {"globals": encode_value({"greet": HostFunctionRef(7, "greet")})}]))
        # The worker's first call_host will have msgid 1: queue the host's side in advance.
        deliver(worker, Request(2, "run", [0, ctx, "var n = greet('hi', [1]) + 1; n", {}]),
                Request(3, "run", [1, ctx, "n = 41", {}]),   # nested: parent = 1
                Request(4, "stats", [0]),                      # not nested: queued
                Response(1, None, 10))                         # greet() returns 10
        call = worker.host.read()
        assert call == Request(1, "call_host", [2, ctx, 7, ["hi", [1]]])
        assert worker.host.read() == Response(3, None, [41, None])
        assert worker.host.read() == Response(2, None, [11, None])
        assert [m.msgid for m in worker._backlog] == [4]

    def test_host_error_reply(self, worker):
        ctx = answer(worker, Request(1, "create_context", [0, {"globals": encode_value({"h": HostFunctionRef(3, "h")})}]))
        error = ErrorValue("ValueError", "boom", "ValueError: boom", {"pythonType": "ValueError"})
        code = "var r = []; try { h() } catch (e) { r.push(e.name, e.pythonType) }; try { h() } catch (e) { r.push(e.name, e.message) }; r"
        deliver(worker, Request(2, "run", [0, ctx, code, {}]),
                Response(1, error_triple(WireError.HOST_EXCEPTION, "boom", encode_value(error)), None),
                Response(2, ["ANY_CODE", "plain", None], None))
        assert worker.host.read().method == "call_host"
        assert worker.host.read().method == "call_host"
        assert worker.host.read() == Response(2, None, [["ValueError", "ValueError", "Error", "plain"], None])

    def test_bad_notification_is_ignored(self, worker):
        worker._dispatch(Notification("release", [1]))


# A completion value that is a primitive is read from the JSValue itself, without
# the bridge's `finish` step; it must be exactly what that step gives back.
PRIMITIVE_RESULTS = ["1 + 1", "1.5", "2**40", "2**31", "1e21", "1e20", "1e-7", "0.1 + 0.2", "-5",
                     "-2147483648", "2**53 + 2", "-0", "NaN", "Infinity", "-Infinity", "true", "false",
                     "null", "undefined", "'abc'", "'\\ud800x'", "'\\u{1F600}'", "''", "1n", "Symbol('s')",
                     "({a: 1})", "[1, 2]"]
TAGGED_BY_THE_BRIDGE = {"-0", "NaN", "Infinity", "-Infinity", "1n", "Symbol('s')", "({a: 1})", "[1, 2]"}


@pytest.mark.parametrize("code", PRIMITIVE_RESULTS)
def test_a_primitive_completion_value_read_directly_is_what_finish_gives(code):
    ctx = EngineContext(lambda *a: None)
    bytecode, failure = ctx.compile_script(code, "primitive.js")
    assert failure is None
    through_finish = ctx.run_compiled(bytecode, False)  # the first run has no `finish` before it
    entries = ctx._calls  # the bridge's entries so far
    direct = ctx.run_compiled(bytecode, False)
    if code not in TAGGED_BY_THE_BRIDGE:
        assert ctx._calls == entries, "a primitive went through the bridge"
    assert same(from_tagged(direct["v"], direct.get("t", True)),
                from_tagged(through_finish["v"], through_finish.get("t", True)))
    assert direct["ok"] and through_finish["ok"]


def test_the_direct_read_leaves_promise_jobs_and_mirrors_to_finish():
    ctx = EngineContext(lambda *a: None)
    ctx.run_compiled(ctx.compile_script("0", "a.js")[0], False)
    bytecode = ctx.compile_script("Promise.resolve().then(() => { globalThis.ran = 1 }); 2", "b.js")[0]
    assert ctx.run_compiled(bytecode, False)["v"] == 2
    assert ctx.run_compiled(ctx.compile_script("globalThis.ran", "c.js")[0], False)["v"] == 1
    reply = ctx.run_compiled(ctx.compile_script("var m = 3; 4", "d.js")[0], True)
    assert reply["v"] == 4 and "g" in reply
