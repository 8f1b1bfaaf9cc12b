"""Hostile values through real workers: depth, width, cycles, huge BigInts, accessors, forged frames.

Every codec on the way (the host's encoder and decoder, the worker's tagged
JSON, the bridge's encoder and decoder) is bounded by
``protocol.MAX_VALUE_DEPTH``: a value that deep crosses in both directions, a
deeper one fails that one call with ``UnencodableValueError``, and the pool
keeps serving. The mirror of a contextified dict runs no script code.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import pytest

import isolate
from isolate import protocol
from isolate import BigInt, JSAccessor, JSMap, JSSet, Unhashable, UnencodableValueError, undefined
from isolate.batch import jsonable

pytestmark = pytest.mark.timeout(120)

LIMIT = protocol.MAX_VALUE_DEPTH
KINDS = ["array", "object", "map", "set", "error"]

# JS: makeDeep(kind, n) builds a value n containers deep, each holding the next
# (under key "k", or as a Set's only item, or as an Error's enumerable `cause`);
# depthOf measures one without recursion.
JS_HELPERS = r"""
function makeDeep(kind, n) {
  let v = 1;
  for (let i = 0; i < n; i++) {
    if (kind === 'array') v = [v];
    else if (kind === 'object') v = { k: v };
    else if (kind === 'map') v = new Map([['k', v]]);
    else if (kind === 'set') v = new Set([v]);
    else { const e = new Error('e' + i); e.cause = v; v = e; }
  }
  return v;
}
function depthOf(v) {
  let d = 0;
  for (;;) {
    if (Array.isArray(v)) v = v[0];
    else if (v instanceof Map) v = v.get('k');
    else if (v instanceof Set) v = v.values().next().value;
    else if (v instanceof Error) v = v.cause;
    else if (v !== null && typeof v === 'object') v = v.k;
    else return [d, v];
    d++;
  }
}
"""


def make_deep(kind: str, n: int, leaf=1):
    v = leaf
    for i in range(n):
        if kind == "array":
            v = [v]
        elif kind == "object":
            v = {"k": v}
        elif kind == "map":
            v = JSMap({"k": v})
        elif kind == "set":
            v = JSSet({Unhashable(v) if isinstance(v, (list, dict, set)) else v})
        else:
            v = isolate.JSError(f"e{i}", name="Error", props={"cause": v})
    return v


def depth_of(v):
    """(containers, leaf) of a value make_deep/makeDeep built, without recursion."""
    d = 0
    while True:
        if isinstance(v, list):
            v = v[0]
        elif isinstance(v, JSSet):
            (v,) = v
            v = v.value if isinstance(v, Unhashable) else v
        elif isinstance(v, dict):
            v = v["k"]
        elif isinstance(v, isolate.JSError):
            v = v.props["cause"]
        else:
            return d, v
        d += 1


@pytest.fixture(scope="module")
def pool():
    with isolate.Pool(size=1) as p:
        yield p


@pytest.fixture
def ctx(pool):
    context = pool.create_context()
    pool.run_in_context(JS_HELPERS, context)
    return context


def serves(pool) -> bool:
    return pool.run_in_new_context("1+1") == 2


# -- depth ---------------------------------------------------------------------

@pytest.mark.parametrize("kind", KINDS)
def test_limit_deep_from_js(pool, ctx, kind):
    got = pool.run_in_context(f"makeDeep('{kind}', {LIMIT})", ctx)
    assert depth_of(got) == (LIMIT, 1)
    with pytest.raises(UnencodableValueError, match=r"more than 500 levels deep.*MAX_VALUE_DEPTH") as info:
        pool.run_in_context(f"makeDeep('{kind}', {LIMIT + 1})", ctx)
    assert info.value.code == "ERR_ISOLATE_UNENCODABLE"
    assert serves(pool)


@pytest.mark.parametrize("kind", KINDS)
def test_limit_deep_to_js(pool, ctx, kind):
    measure = pool.run_in_context("(v) => depthOf(v)", ctx)
    assert measure(make_deep(kind, LIMIT)) == [LIMIT, 1]
    ctx["deep"] = make_deep(kind, LIMIT)
    assert pool.run_in_context("depthOf(deep)", ctx) == [LIMIT, 1]
    with pytest.raises(UnencodableValueError, match="MAX_VALUE_DEPTH"):
        measure(make_deep(kind, LIMIT + 3))
    assert serves(pool)


@pytest.mark.parametrize("kind", ["array", "map", "error"])
def test_hundred_thousand_deep_from_js_fails_fast(pool, ctx, kind):
    pool.run_in_context(f"var huge = makeDeep('{kind}', 100000); 0", ctx)
    start = time.monotonic()
    with pytest.raises(UnencodableValueError, match="MAX_VALUE_DEPTH"):
        pool.run_in_context("huge", ctx)
    with pytest.raises(UnencodableValueError, match="MAX_VALUE_DEPTH"):
        pool.run_in_context("throw huge", ctx)
    assert time.monotonic() - start < 5
    assert pool.run_in_context("depthOf(huge)[0]", ctx) == 100000  # the context is unharmed
    assert serves(pool)


@pytest.mark.parametrize("kind", ["array", "object", "map", "set"])
def test_hundred_thousand_deep_to_js_is_refused_before_sending(pool, ctx, kind):
    fn = pool.run_in_context("(v) => { globalThis.reached = true; return 1 }", ctx)
    value = make_deep(kind, 100_000)
    limit = sys.getrecursionlimit()
    start = time.monotonic()
    with pytest.raises(UnencodableValueError, match="MAX_VALUE_DEPTH"):
        fn(value)
    with pytest.raises(UnencodableValueError):
        ctx["x"] = value
    with pytest.raises(UnencodableValueError):
        pool.run_in_new_context("1", {"x": value})
    assert time.monotonic() - start < 5
    assert sys.getrecursionlimit() == limit
    assert pool.run_in_context("typeof reached", ctx) == "undefined"  # nothing was sent
    assert serves(pool)


def test_thousand_deep_python_list_is_unencodable_not_recursion_error(pool, ctx):
    fn = pool.run_in_context("(v) => 1", ctx)
    with pytest.raises(UnencodableValueError):
        fn(make_deep("array", 1000))
    assert serves(pool)


def test_thrown_error_cause_chain(pool, ctx):
    with pytest.raises(isolate.JSError) as info:
        pool.run_in_context(f"throw makeDeep('error', {LIMIT})", ctx)
    assert info.value.message == f"e{LIMIT - 1}"
    assert depth_of(info.value) == (LIMIT, 1)
    with pytest.raises(UnencodableValueError):
        pool.run_in_context(f"throw makeDeep('error', {LIMIT + 1})", ctx)
    assert serves(pool)


def test_host_function_arguments(pool, ctx):
    seen = []

    def keep(v):
        seen.append(depth_of(v))
        return len(seen)

    ctx["keep"] = keep
    assert pool.run_in_context(f"keep(makeDeep('map', {LIMIT}))", ctx) == 1
    assert seen == [(LIMIT, 1)]
    # One level too deep: the JS call throws (a TypeError the script can catch), the host is not called.
    got = pool.run_in_context(
        f"try {{ keep(makeDeep('array', {LIMIT + 1})); 'called' }} catch (e) {{ [e.name, e.message] }}", ctx)
    assert got[0] == "TypeError" and "MAX_VALUE_DEPTH" in got[1]
    assert len(seen) == 1
    assert serves(pool)


def test_host_function_results(pool, ctx):
    ctx["give"] = lambda n: make_deep("object", n)
    assert pool.run_in_context(f"depthOf(give({LIMIT}))", ctx) == [LIMIT, 1]
    got = pool.run_in_context("try { give(100000); 'returned' } catch (e) { e.message }", ctx)
    assert "MAX_VALUE_DEPTH" in got
    assert serves(pool)


def test_nested_host_calls_carry_deep_values(pool, ctx):
    def back(n):
        return make_deep("array", LIMIT) if n == 0 else ctx["down"](n - 1)

    ctx["back"] = back
    pool.run_in_context("function down(n) { return back(n) }", ctx)
    got = ctx["down"](25)  # 25 levels of JS -> Python -> JS, then a value at the limit all the way up
    assert depth_of(got) == (LIMIT, 1)
    assert serves(pool)


def test_mirror_at_the_limit(pool):
    sandbox = {"seed": make_deep("array", LIMIT)}
    got = pool.run_in_new_context(f"globalThis.deep = seed; [{JS_HELPERS!r}, 0][1]; seed", sandbox)
    # The value and the mirror (a result pair holding a globals map) both carry 500 levels.
    assert depth_of(got) == (LIMIT, 1)
    assert depth_of(sandbox["deep"]) == (LIMIT, 1)


def test_mirror_hands_over_what_is_too_deep(pool):
    sandbox = {}
    pool.create_context(sandbox)
    assert pool.run_in_context(JS_HELPERS + f"var tooDeep = makeDeep('object', {LIMIT + 100}); 1", sandbox) == 1
    d, rest = depth_of(sandbox["tooDeep"])
    assert d == LIMIT and isinstance(rest, isolate.JSObject)
    assert pool.run_in_context("2", sandbox) == 2  # and the context keeps working
    assert serves(pool)


# -- width, cycles -------------------------------------------------------------

def test_wide_values_both_ways(pool, ctx):
    start = time.monotonic()
    got = pool.run_in_context("Array.from({length: 1000000}, (_, i) => i)", ctx)
    assert len(got) == 1_000_000 and got[-1] == 999_999
    wide = {f"k{i}": i for i in range(200_000)}
    echo = pool.run_in_context("(v) => v", ctx)
    assert echo(wide) == wide
    m = JSMap({i: [i] for i in range(100_000)})
    back = echo(m)
    assert isinstance(back, JSMap) and len(back) == 100_000 and back[99_999] == [99_999]
    assert time.monotonic() - start < 60
    assert serves(pool)


def test_cycles_through_maps_sets_and_errors_from_js(pool, ctx):
    got = pool.run_in_context("""
      const m = new Map(); m.set('self', m);
      const s = new Set(); const box = [s]; s.add(box);
      const e = new Error('loop'); e.self = e; e.map = m; e.cause = e;
      [m, s, e, box]""", ctx)
    m, s, e, box = got
    assert m["self"] is m
    (member,) = s
    assert member.value is box and box[0] is s
    assert e.props["self"] is e and e.props["cause"] is e and e.props["map"] is m


def test_cycles_through_maps_sets_and_errors_to_js(pool, ctx):
    m = JSMap()
    m["self"] = m
    s = JSSet()
    box = [s]
    s.add(Unhashable(box))
    e = isolate.JSError("loop", props={})
    e.props["self"] = e
    e.props["both"] = [m, s]
    check = pool.run_in_context("""(m, s, e, box) => [
      m.get('self') === m, [...s][0] === box, box[0] === s, e.self === e, e.both[0] === m, e.both[1] === s,
      e instanceof Error]""", ctx)
    assert check(m, s, e, box) == [True] * 7


# -- BigInt ----------------------------------------------------------------------

def test_bigint_20000_bits_both_ways(pool, ctx):
    n = 2**20000 + 12345
    got = pool.run_in_context("2n ** 20000n + 12345n", ctx)
    assert type(got) is BigInt and got == n
    assert pool.run_in_context("-(2n ** 20000n) - 12345n", ctx) == -n
    check = pool.run_in_context(
        "(a, b, c) => [a === 2n ** 20000n + 12345n, b === -(2n ** 20000n) - 12345n, c.get(-(2n ** 20000n)) === 1]", ctx)
    assert check(BigInt(n), BigInt(-n), JSMap({BigInt(-(2**20000)): 1})) == [True, True, True]
    echo = pool.run_in_context("(v) => v", ctx)
    assert echo([BigInt(-n), {"k": BigInt(n)}]) == [-n, {"k": n}]
    digits = jsonable(got)
    assert len(digits) == 6021 and digits.endswith(str(12345 + 9376)[-4:]) and jsonable(BigInt(-5)) == "-5"
    assert serves(pool)


# -- the mirror runs no script code ----------------------------------------------

def test_looping_getter_on_the_global_is_not_run(pool):
    sandbox = {"a": 1}
    context = pool.create_context(sandbox)
    start = time.monotonic()
    got = pool.run_in_context("""
      Object.defineProperty(globalThis, 'trap', { get() { for (;;); }, enumerable: true, configurable: true });
      Object.defineProperty(globalThis, 'sink', { set(v) { for (;;); }, enumerable: true, configurable: true });
      Object.defineProperty(globalThis, 'answer', { get() { return 42 }, enumerable: true, configurable: true });
      'done'""", sandbox, timeout=10_000)
    assert got == "done"
    assert pool.run_in_context("a + 1", sandbox, timeout=10_000) == 2  # and every later call
    assert time.monotonic() - start < 5
    assert sandbox == {"a": 1, "trap": JSAccessor(get=True, set=False), "sink": JSAccessor(get=False, set=True),
                       "answer": JSAccessor(get=True, set=False)}
    assert context["answer"] == 42  # reading it through the context runs the getter, as asked
    assert serves(pool)


def test_accessors_inside_mirrored_values_are_not_run(pool):
    sandbox = {}
    pool.create_context(sandbox)
    start = time.monotonic()
    pool.run_in_context("""
      var o = { get y() { for (;;); }, z: 1 };
      var list = [1, 2];
      Object.defineProperty(list, 1, { get() { for (;;); }, enumerable: true });
      var err = new TypeError('t'); Object.defineProperty(err, 'code', { get() { for (;;); }, enumerable: true });
      var p = new Proxy({ a: 1 }, { get() { for (;;); }, has() { for (;;); }, set() { for (;;); } });
      0""", sandbox, timeout=10_000)
    assert time.monotonic() - start < 5
    assert sandbox["o"] == {"y": JSAccessor(True, False), "z": 1}
    assert sandbox["list"] == [1, JSAccessor(True, False)]
    assert sandbox["err"].name == "TypeError" and sandbox["err"].props == {"code": JSAccessor(True, False)}
    assert sandbox["p"] == {"a": 1}  # a Proxy's get trap is not called (it is read as its target's data)
    assert serves(pool)


def test_accessor_marker_cannot_go_back(pool):
    sandbox = {}
    context = pool.create_context(sandbox)
    pool.run_in_context("Object.defineProperty(globalThis, 'g', { get() { return 1 }, enumerable: true }); 0", sandbox)
    marker = sandbox["g"]
    assert repr(marker) == "JSAccessor(get=True, set=False)"
    with pytest.raises(UnencodableValueError, match="marker from a context's mirror"):
        context["h"] = marker
    with pytest.raises(UnencodableValueError, match="marker from a context's mirror"):
        pool.run_in_new_context("1", dict(sandbox))
    assert pool.run_in_context("g + 1", sandbox) == 2
    assert serves(pool)


def test_replaced_intrinsics_are_never_called(pool):
    """A script that replaces what a careless codec would call: the bridge's codec calls none of it.

    Counted are calls made from the bridge's code (the engine itself fills some arrays of its
    own with [[Set]]). Not replaced: Array.prototype[Symbol.iterator] (the bridge's `finish` op
    destructures an array, so replacing it breaks every later call) and RegExp.prototype.flags
    (the Node-style stack cleanup uses String.prototype.replace, which reads it).
    """
    sandbox = {}
    context = pool.create_context(sandbox)
    pool.run_in_context(r"""
      var calls = {};
      const note = (what) => function () {
        if (new Error().stack.includes('<isolate-bridge>')) calls[what] = (calls[what] || 0) + 1;
      };
      Object.getPrototypeOf(new Map().entries()).next = note('MapIterator next');
      Map.prototype.forEach = note('Map forEach');
      Map.prototype.entries = note('Map entries');
      Set.prototype.values = note('Set values');
      Object.defineProperty(Map, Symbol.hasInstance, { value: note('Map hasInstance') });
      Object.defineProperty(Error, Symbol.hasInstance, { value: note('Error hasInstance') });
      Object.defineProperty(Object.prototype, 'x', { set: note('Object.prototype.x setter'), configurable: true });
      Object.defineProperty(Object.prototype, 'get', { get: note('Object.prototype.get getter'), configurable: true });
      Object.defineProperty(Array.prototype, '0', { set: note('Array.prototype[0] setter'), configurable: true });
      Object.defineProperty(Symbol.prototype, 'description', { get: note('description getter') });
      BigInt.prototype.toString = note('BigInt toString');
      String.prototype.charCodeAt = note('charCodeAt');
      Object.defineProperty(Object.getPrototypeOf(Uint8Array.prototype), 'buffer', { get: note('buffer getter') });
      var rich = { x: 1, list: [[1], 2], m: new Map([[1, [2]]]), s: new Set(['a']), e: new RangeError('r'),
                   b: 2n ** 70n, y: Symbol('d'), re: /a/g, t: new Uint8Array([1, 2]) };
      0""", sandbox)
    rich = pool.run_in_context("rich", sandbox)
    assert rich["x"] == 1 and rich["list"] == [[1], 2] and rich["m"] == JSMap({1: [2]})
    assert rich["s"] == JSSet({"a"}) and rich["e"].name == "RangeError" and rich["b"] == 2**70
    assert rich["y"] == isolate.JSSymbol("d") and rich["re"] == isolate.JSRegExp("a", "g")
    assert rich["t"] == isolate.JSTypedArray("Uint8Array", b"\x01\x02")
    echo = pool.run_in_context("(v) => [v, Object.keys(v), v.list[0][0], v.m.get(1)[0]]", sandbox)
    echoed, keys, first, in_map = echo({"x": 5, "list": [[7]], "m": JSMap({1: [3]}), "u": undefined,
                                          "big": BigInt(-(2**80)), "bytes": b"\x00\xff"})
    assert echoed["x"] == 5 and echoed["big"] == -(2**80) and echoed["bytes"] == b"\x00\xff"
    assert (keys, first, in_map) == (["x", "list", "m", "u", "big", "bytes"], 7, 3)
    calls = context["calls"]
    assert calls == {}, calls
    assert serves(pool)


def test_proto_key_is_an_own_property_both_ways(pool, ctx):
    check = pool.run_in_context(
        "(v) => [Object.keys(v), Object.getPrototypeOf(v) === Object.prototype, v.__proto__ === 1]", ctx)
    assert check({"__proto__": 1, "a": 2}) == [["__proto__", "a"], True, True]
    assert pool.run_in_context("JSON.parse('{\"__proto__\": [5]}')", ctx) == {"__proto__": [5]}


def test_everything_else_is_unchanged(pool, ctx):
    value = {
        "u": undefined, "n": None, "nan": math.nan, "negzero": -0.0, "inf": math.inf, "s": "a\ud800b",
        "d": __import__("datetime").datetime(2001, 2, 3, tzinfo=__import__("datetime").timezone.utc),
        "y": isolate.JSSymbol("k", registered=True), "t": isolate.JSTypedArray("Float64Array", b"\0" * 8),
        "b": b"\x01", "r": isolate.JSRegExp("x+", "gi"),
    }
    echo = pool.run_in_context("(v) => v", ctx)
    got = echo(value)
    assert math.isnan(got.pop("nan")) and math.copysign(1, got.pop("negzero")) < 0
    value.pop("nan"), value.pop("negzero")
    assert got == value
    f = pool.run_in_context("(function named() { return 7 })", ctx)
    assert echo(f)() == 7 and pool.run_in_context("(g) => g(2)", ctx)(lambda x: x * 3) == 6


# -- forged frames ------------------------------------------------------------------

def _worker():
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.Popen([sys.executable, "-m", "isolate.workers"], cwd=root, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdin.write(msgpack.packb([0, 0, "hello", [protocol.PROTOCOL_VERSION]]))
    proc.stdin.flush()
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(os.read(proc.stdout.fileno(), 65536))
    hello = next(unpacker)
    assert hello[3]["protocol"] == protocol.PROTOCOL_VERSION
    return proc


@pytest.mark.parametrize("frame", [
    b"\x94\x00\x01\xa3run" + b"\x91" * 100_000 + b"\xc0",                           # 100,000 levels
    b"\xc1",                                                                         # a reserved byte
    msgpack.packb([0, 1, "run", [0, 1, msgpack.ExtType(protocol.ExtType.MAP, b"\x91\x01"), {}]]),
    msgpack.packb([0, True, "stats", [0]]),                                          # a bool msgid
    msgpack.packb([1, 1, ["X"], None]),                                              # a bad error triple
], ids=["deep", "reserved-byte", "marker-with-payload", "bool-msgid", "bad-error-triple"])
def test_forged_frames_end_the_worker_cleanly(frame):
    proc = _worker()
    try:
        try:
            proc.stdin.write(frame)
            proc.stdin.flush()
        except BrokenPipeError:
            pass  # the worker refused the frame and left before reading all of it
        assert proc.wait(timeout=20) == 0  # ProtocolError: the worker leaves, it does not crash
        assert b"Traceback" not in proc.stderr.read()
    finally:
        proc.kill()
        proc.wait()
        for f in (proc.stdin, proc.stdout, proc.stderr):
            f.close()


def test_malformed_values_in_a_request_are_answered(pool):
    proc = _worker()
    try:
        bad = [[msgpack.ExtType(protocol.ExtType.REF, msgpack.packb(0))]]  # a REF outside any GRAPH
        proc.stdin.write(msgpack.packb([0, 1, "stats", [0, bad]]))
        proc.stdin.write(msgpack.packb([0, 2, "stats", [0]]))
        proc.stdin.flush()
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
        replies = []
        while len(replies) < 2:
            chunk = os.read(proc.stdout.fileno(), 65536)
            assert chunk, "the worker closed its end"
            unpacker.feed(chunk)
            replies.extend(unpacker)
        assert replies[0][1] == 1 and replies[0][2] is not None and "ProtocolError" in replies[0][2][1]
        assert replies[1][1] == 2 and replies[1][2] is None  # and it serves on
    finally:
        proc.stdin.close()
        proc.wait(timeout=20)
        proc.stdout.close()
        proc.stderr.close()


def test_bridge_decoder_bound():
    """The bridge's own bound (MAX_DECODE_DEPTH), behind the host's and the worker's: tagged JSON
    handed straight to the engine, in this process."""
    from isolate.workers.engine import EngineContext

    engine = EngineContext(lambda *args: {"ok": True, "v": None})
    try:
        fn = engine.op("run", "(v) => { let d = 0; while (Array.isArray(v)) { v = v[0]; d++; } return d; }",
                       "a.js", False, 0, 0, True)["v"]["i"]
        for depth, ok in ((protocol.MAX_DECODE_DEPTH - 1, True), (protocol.MAX_DECODE_DEPTH + 1, False)):
            arg = [{"\0": "u"}]
            for _ in range(depth - 1):
                arg = [arg]
            reply = engine.op("call", fn, [[arg], True], False)  # the argument list is one more level
            if ok:
                assert reply == {"ok": True, "v": depth, "t": False}
            else:
                assert not reply["ok"] and reply["e"][0]["name"] == "RangeError"
                assert f"more than {protocol.MAX_DECODE_DEPTH} levels" in reply["e"][0]["message"]
    finally:
        engine.close()
