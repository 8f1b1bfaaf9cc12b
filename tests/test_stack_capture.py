"""A script that captures stack frames cannot reach the bridge (issue 13).

QuickJS-ng implements V8's Error.prepareStackTrace: a function set there gets a
CallSite for every frame on the runtime's stack, and CallSite.getFunction() returns
the frame's function, strict or not. The bridge (workers/bridge.js) is on that stack
whenever a script's code runs inside a crossing: a getter or Proxy trap the encoder
reads, a toString of an error's name, a promise's species lookup, a class name's
constructor lookup, a JS function the host calls, a nested host call (with the
hidden realm's call_python below), an error the bridge decodes or makes. Each test
here sets a recording Error.prepareStackTrace (and Error.stackTraceLimit = Infinity),
provokes errors on one of those paths, and checks every recorded frame: none is a
frame of the bridge (by the bridge's own function names), every function is of the
script's realm (call_python is not), and the script's own frames are there (the
check is not vacuous). Function.prototype.caller walks give nothing either.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import isolate
from isolate.protocol.values import ErrorValue

pytestmark = pytest.mark.timeout(120)

import isolate.workers.engine

# The bridge and its parts (workers/bridgesource.py).
_BRIDGE = "\n".join(path.read_text() for path in sorted(
    Path(isolate.workers.engine.__file__).parent.glob("bridge*.js")))
# Every name a function of the bridge can carry: declarations, methods, named function expressions.
BRIDGE_NAMES = (set(re.findall(r"\bfunction\s+([A-Za-z_$][\w$]*)", _BRIDGE))
                | set(re.findall(r"^\s+([A-Za-z_$][\w$]*)\([^)]*\)\s*\{\s*$", _BRIDGE, re.M))
                | {"toJSON", "call_python", "enter"})
# Names the scripts below give their own functions too (accessors, Proxy traps): their
# frames are told apart by file and line, as every frame is.
SHARED_NAMES = {"get", "set", "has", "ownKeys", "getPrototypeOf", "getOwnPropertyDescriptor", "toString"}

SETUP = r"""
var SITES = [];
Error.stackTraceLimit = Infinity;
Error.prepareStackTrace = function record(error, sites) {
  for (let i = 0; i < sites.length; i++) SITES.push(sites[i]);
  return 'recorded';
};
function grab() { new Error('grab'); return 1; }
function audit() {
  const out = [];
  for (const s of SITES) {
    const f = s.getFunction();
    out.push({ name: s.getFunctionName(), file: s.getFileName(), line: s.getLineNumber(), native: s.isNative(),
               fn: typeof f, sameRealm: typeof f === 'function' && Object.getPrototypeOf(f) === Function.prototype,
               source: typeof f === 'function' && !s.isNative() ? Function.prototype.toString.call(f) : '' });
  }
  SITES = [];
  return out;
}
"""

USER_FILES = {"paths.js", "setup.js"}


def host_echo(*args):
    return len(args)


def host_fail():
    raise ValueError("from python")


@pytest.fixture(scope="module")
def pool():
    with isolate.Pool(size=1, spare_workers=0) as p:
        yield p


@pytest.fixture
def ctx(pool):
    c = pool.create_context({"h": host_echo, "fail": host_fail, "back": lambda fn: fn()})
    pool.run_in_context(SETUP, c, filename="setup.js")
    return c


def run(pool, ctx, code):
    return pool.run_in_context(code, ctx, filename="paths.js", timeout=5000)


def check_sites(pool, ctx, expect_user: str):
    sites = run(pool, ctx, "audit()")
    names = [s["name"] for s in sites]
    assert expect_user in names, names  # the script's own frames are recorded: the path ran
    for s in sites:
        assert s["sameRealm"], s  # not call_python, nothing of the hidden realm
        if s["native"]:
            continue
        assert s["name"] not in BRIDGE_NAMES - SHARED_NAMES, s
        assert s["file"] in USER_FILES and s["line"] >= 1, s
        assert "[native code]" not in s["source"] or s["name"] == "<eval>", s
    return sites


def test_bridge_names_are_known():
    # The audit's list is the bridge's: a rename there must not empty it.
    assert {"encodeWalk", "encodeItem", "decodeItem", "hostFunction", "className", "errorHead",
            "handOver", "enter", "finish", "call", "screened", "cleanStack", "stackTools"} <= BRIDGE_NAMES


# Each path: (code run in the context, or a Python step; the user frame name it must record).
def _result_getter(pool, ctx):
    run(pool, ctx, "({ get x() { return grab(); } })")


def _result_proxy(pool, ctx):
    run(pool, ctx, """new Proxy({ a: 1, b: [2] }, {
        ownKeys(t) { grab(); return Reflect.ownKeys(t); },
        get(t, k) { grab(); return t[k]; },
        getPrototypeOf(t) { grab(); return Object.prototype; },
        getOwnPropertyDescriptor(t, k) { grab(); return Reflect.getOwnPropertyDescriptor(t, k); },
        has(t, k) { grab(); return k in t; } })""")


def _engine_error_in_getter(pool, ctx):
    with pytest.raises(isolate.JSError):
        run(pool, ctx, "({ get x() { return null.x; } })")


def _host_call_argument(pool, ctx):
    run(pool, ctx, "h({ get x() { return grab(); } }, new Proxy({}, { ownKeys() { grab(); return []; } }))")


def _nested_host_call(pool, ctx):
    # The host calls back into JS from inside a host call: call_python is on the stack.
    assert run(pool, ctx, "back(function inner() { return grab(); })") == 1


def _promise_species(pool, ctx):
    run(pool, ctx, """const p = Promise.resolve(1);
        Object.defineProperty(p, 'constructor', { get() { grab(); return Promise; } }); p""")


def _class_name(pool, ctx):
    run(pool, ctx, """class K {}
        Object.defineProperty(K.prototype, 'constructor', { get() { grab(); return K; } });
        class K2 { static get name() { grab(); return 'K2'; } }
        [new K(), new K2()]""")


def _error_name_and_message(pool, ctx):
    code = """const e = new Error('m');
        Object.defineProperty(e, 'name', { get() { grab(); return { toString() { grab(); return 'N'; } }; } });
        Object.defineProperty(e, 'message', { get() { grab(); return 'msg'; } });
        Object.defineProperty(e, 'stack', { get() { grab(); return 'st'; } });
        """
    run(pool, ctx, code + "[e]")
    with pytest.raises(isolate.JSError):
        run(pool, ctx, code + "throw e")


def _function_called_by_the_host(pool, ctx):
    fn = run(pool, ctx, "(function called() { return grab(); })")
    assert fn() == 1


def _host_failure_decoded(pool, ctx):
    # The bridge decodes the host's error (an Error constructor runs) and makes its stack.
    assert "from python" in run(pool, ctx, "(function failing() { try { fail(); } catch (e) { return e.message; } })()")


def _global_set_from_python(pool, ctx):
    ctx["incoming"] = {"e": ErrorValue("TypeError", "made in python")}
    run(pool, ctx, "(function reads() { grab(); return incoming; })()")


def _capture_stack_trace_in_getter(pool, ctx):
    run(pool, ctx, "({ get x() { const o = {}; Error.captureStackTrace(o); return o.stack; } })")


PATHS = {
    "result getter": (_result_getter, "get x"),
    "result proxy traps": (_result_proxy, "ownKeys"),
    "engine error in a getter": (_engine_error_in_getter, "get x"),
    "host call argument": (_host_call_argument, "get x"),
    "nested host call": (_nested_host_call, "inner"),
    "promise species": (_promise_species, "get"),
    "class name lookup": (_class_name, "get"),
    "error name, message, toString": (_error_name_and_message, "toString"),
    "function called by the host": (_function_called_by_the_host, "called"),
    "host failure decoded": (_host_failure_decoded, "failing"),
    "global set from python": (_global_set_from_python, "reads"),
    "captureStackTrace in a getter": (_capture_stack_trace_in_getter, "get x"),
}


@pytest.mark.parametrize("path", list(PATHS))
def test_recorded_frames_hold_nothing_of_the_bridge(pool, ctx, path):
    step, user_frame = PATHS[path]
    step(pool, ctx)
    check_sites(pool, ctx, user_frame)
    # And the context still answers as before.
    assert run(pool, ctx, "[1, { a: [2n] }]") == [1, {"a": [isolate.BigInt(2)]}]


def test_captured_functions_cannot_forge_bridge_requests(pool, ctx):
    # What a script would do with a captured function: call it with a request.
    run(pool, ctx, "({ get x() { return grab(); } })")
    run(pool, ctx, "back(function inner() { return grab(); })")
    tried = run(pool, ctx, """
        const tried = [], sites = SITES;
        SITES = [];
        for (const s of sites) {
          const f = s.getFunction();
          if (typeof f !== 'function' || s.isNative() || s.getFunctionName() === '<eval>') continue;
          try { f('["stats"]', 1); } catch (e) { /* a script's own function: whatever it does */ }
          tried.push(s.getFunctionName());
        }
        SITES = [];
        tried""")
    assert not set(tried) & BRIDGE_NAMES
    assert run(pool, ctx, "[1, 'a']") == [1, "a"]


def test_caller_walks_give_nothing(pool, ctx):
    got = run(pool, ctx, """({ get x() {
        let a, b;
        try { a = typeof arguments.callee.caller; } catch (e) { a = 'threw'; }
        const self = Object.getOwnPropertyDescriptor(this, 'x').get;
        try { b = typeof self.caller; } catch (e) { b = 'threw'; }
        return [a, b];
      } })""")
    assert "function" not in got["x"], got


def test_prepare_stack_trace_still_works_for_the_script(pool, ctx):
    got = run(pool, ctx, """
        Error.prepareStackTrace = (e, sites) => sites.map(s => s.getFunctionName());
        function a() { return b(); }
        function b() { return new Error().stack; }
        const names = a();
        const kept = Error.prepareStackTrace;
        TypeError.prepareStackTrace = (e, sites) => 'via subclass';
        const viaSubclass = new RangeError().stack;
        Error.prepareStackTrace = 7;
        const seven = Error.prepareStackTrace;
        const plain = typeof new Error().stack;
        Error.prepareStackTrace = undefined;
        [names.slice(0, 2), typeof kept, viaSubclass, seven, plain, typeof Error.prepareStackTrace]""")
    assert got == [["b", "a"], "function", "via subclass", 7, "string", "undefined"]


def test_the_engine_setter_is_out_of_reach(pool, ctx):
    # The accessor on Error is the bridge's; nothing else reaches the engine's own.
    got = run(pool, ctx, """
        const d = Object.getOwnPropertyDescriptor(Error, 'prepareStackTrace');
        d.set.call(undefined, (e, sites) => sites);
        const viaCall = new Error().stack;
        const names = [];
        for (const s of viaCall) names.push(s.getFunctionName());
        Object.defineProperty(Error, 'prepareStackTrace', { value: (e, s) => 'data property', configurable: true });
        [typeof d.get, typeof d.set, Array.isArray(viaCall), names]""")
    assert got[:3] == ["function", "function", True]
    assert not set(got[3]) & BRIDGE_NAMES
    # A data property in its place is not what QuickJS calls: stacks stay the engine's (screened) ones.
    assert run(pool, ctx, "typeof new Error().stack") in ("string", "object")
    assert run(pool, ctx, "[1]") == [1]
