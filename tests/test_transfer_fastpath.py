"""The transfer fast path (issue 14): plain values cross as JSON text, with every semantic kept.

Into JS, a ``set`` of a plain value (protocol.plainjson) travels as ``JSON_FOR_JS`` and
is built by the bridge's captured ``JSON.parse``; out of JS, a large reply with no tag
travels as ``JSON_FROM_JS``, the text the bridge's ``JSON.stringify`` wrote of its own
prototype-less copy. Each test compares the fast path with the general one (a host
function argument, or a value made tagged, still takes the general path), or attacks
what the fast path could skip: setters, getters, Proxies, toJSON, ``__proto__``, depth,
sharing, limits. Real workers.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import threading

import msgpack
import pytest

import isolate
from isolate.protocol import ExtDecoder, ExtType, ProtocolError, encode_value
from isolate.protocol.plainjson import plain_json
from isolate.protocol.values import JSONText

pytestmark = pytest.mark.timeout(120)

# A canonical description of a JS value: types, -0, NaN, key order, prototypes and
# property descriptors; identity of containers (shared references, cycles) by number.
DESCRIBE = r"""
globalThis.describe = function describe(root) {
  const seen = new Map();
  function d(v) {
    if (v === null) return 'null';
    switch (typeof v) {
      case 'number': return Object.is(v, -0) ? 'n:-0' : 'n:' + String(v);
      case 'string': return 's:' + JSON.stringify(v);
      case 'boolean': return 'b:' + v;
      case 'undefined': return 'u';
      case 'bigint': return 'B:' + v;
      case 'object': break;
      default: return typeof v;
    }
    if (seen.has(v)) return '@' + seen.get(v);
    seen.set(v, seen.size);
    const proto = Object.getPrototypeOf(v);
    const kind = Array.isArray(v) ? 'A' : proto === Object.prototype ? 'O' : proto === null ? 'N' : '?';
    if (kind === '?') return Object.prototype.toString.call(v);
    let out = kind + (Array.isArray(v) ? v.length : '') + '{';
    for (const k of Reflect.ownKeys(v)) {
      const p = Object.getOwnPropertyDescriptor(v, k);
      if (!('value' in p)) return 'accessor';
      out += JSON.stringify(String(k)) + (p.writable ? 'w' : '') + (p.enumerable ? 'e' : '') +
        (p.configurable ? 'c' : '') + '=' + (k === 'length' && Array.isArray(v) ? '' : d(p.value)) + ',';
    }
    return out + '}';
  }
  return d(root);
};
"""

KEYS = ["a", "id", "__proto__", "\u0000", "1", "0", "constructor", "toJSON", "é", "\U0001f600", "x y", ""]


def random_value(rng: random.Random, depth: int = 0):
    roll = rng.random()
    if depth > 6 or roll < 0.45:
        return rng.choice([
            lambda: rng.randint(-10**6, 10**6), lambda: rng.choice([0, 2**53 - 1, -(2**53 - 1), 2**31, -2**31]),
            lambda: rng.uniform(-1e6, 1e6), lambda: rng.choice([0.5, -0.0, 1e300, 5e-324, 1e21, 0.1]),
            lambda: rng.choice(KEYS) * rng.randint(0, 3), lambda: "".join(chr(rng.randint(0, 0x2FF)) for _ in range(5)),
            lambda: rng.choice([True, False, None]),
        ])()
    if roll < 0.75:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 6))]
    if roll < 0.8:
        return tuple(random_value(rng, depth + 1) for _ in range(rng.randint(0, 3)))
    return {rng.choice(KEYS) + str(rng.randint(0, 3) if rng.random() < 0.5 else ""): random_value(rng, depth + 1)
            for _ in range(rng.randint(0, 6))}


def normalized(v):
    """What a value reads back as, as far as == tells: tuples are arrays."""
    if isinstance(v, (list, tuple)):
        return [normalized(x) for x in v]
    if isinstance(v, dict):
        return {k: normalized(x) for k, x in v.items()}
    return v


def same(a, b) -> bool:
    """Equality that tells -0.0 from 0.0 and int from float."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b) or (a != a and b != b)
    return a == b


def big_records(n: int, seed: int = 3) -> dict:
    rng = random.Random(seed)
    return {"meta": {"n": n}, "records": [
        {"id": i, "name": f"r{i}é", "score": rng.random(), "flags": [rng.random() < 0.5 for _ in range(3)],
         "nested": {"b": [rng.randint(0, 999) for _ in range(3)], "c": None}} for i in range(n)]}


@pytest.fixture(scope="module")
def pool():
    with isolate.Pool(size=1, limits=isolate.Limits(access_timeout_s=60)) as p:
        yield p


@pytest.fixture
def ctx(pool):
    context = pool.create_context()
    pool.run_in_context(DESCRIBE, context)
    return context


# -- which values take the fast path ----------------------------------------------------

def _is_json_ext(encoded) -> bool:
    return isinstance(encoded, msgpack.ExtType) and encoded.code == ExtType.JSON_FOR_JS


def test_plain_values_take_the_fast_path_and_nothing_else_does():
    assert _is_json_ext(encode_value({"a": [1, 2.5, "x", True, None, (3,)]}, for_js=True))
    assert _is_json_ext(encode_value([2**53 - 1, -(2**53 - 1), -0.0], for_js=True))
    assert _is_json_ext(encode_value([1e308, 1e308, -1e308], for_js=True))  # finite, their sum is not
    for floats in ([1e308, 1e308, math.inf], [-math.inf, math.inf], [1.0, math.nan], [1e308, 1e308, math.nan]):
        assert not _is_json_ext(encode_value(floats, for_js=True)), floats
    assert not _is_json_ext(encode_value([{"a": [1.5] * 100}, [0] * 100 + [2**53]], for_js=True))
    assert not _is_json_ext(encode_value({"a": [1]}))  # only where asked (a `set`)
    shared = [1]
    cyclic: list = []
    cyclic.append(cyclic)
    for value in ([math.nan], [math.inf], [2**53], [-(2**53)], [isolate.BigInt(1)], [isolate.undefined],
                  [shared, shared], cyclic, {1: "int key"}, {True: 1}, {"a": {"b": isolate.JSMap()}},
                  [b"bytes"], [{"x"}], [type("S", (str,), {})("sub")], [type("D", (dict,), {})()],
                  [[[[1]]]]):
        try:
            encoded = encode_value(value, for_js=True, max_depth=3)
        except isolate.protocol.UnencodableValue:
            continue  # refused (a non-str key, a value too deep): also not the fast path
        assert not _is_json_ext(encoded), value
    with pytest.raises(isolate.protocol.UnencodableValue, match="MAX_VALUE_DEPTH"):
        encode_value([[[[1]]]], for_js=True, max_depth=3)


def test_stand_ins_are_not_taken_as_plain():
    holder: dict = {"k": 1}
    assert plain_json([holder], 10) is not None
    assert plain_json([holder], 10, {id(holder): "stand-in"}) is None


def test_lone_surrogates_and_deep_values_fall_back_to_the_standard_encoder():
    assert json.loads(plain_json(["a\ud800b"], 10)) == ["a\ud800b"]
    deep: list = []
    for _ in range(400):   # past orjson's own nesting limit, within MAX_VALUE_DEPTH
        deep = [deep]
    assert plain_json(deep, 500) is not None
    assert plain_json(deep, 400) is None


def test_hostile_json_from_js_is_a_protocol_error():
    for payload in (b"[1,", b"[" * 100_000 + b"]" * 100_000, b"\xff"):
        with pytest.raises(ProtocolError):
            ExtDecoder()(ExtType.JSON_FROM_JS, payload)
    assert isinstance(ExtDecoder()(ExtType.JSON_FOR_JS, b"[1]"), JSONText)


# -- round trips: fast path against the general path --------------------------------------

def test_randomized_values_cross_in_as_the_general_path_makes_them(pool, ctx):
    """`ctx[k] = v` (fast when plain) and a host function argument (the general path)
    give JS the same value, down to descriptors, key order and -0; and it reads back equal."""
    keep = pool.run_in_context("(v) => { globalThis.viaArgs = v; return true }", ctx)
    rng = random.Random(14)
    fast = 0
    for i in range(150):
        value = random_value(rng)
        if i % 10 == 0:
            value = {"big": [random_value(rng) for _ in range(300)], "i": i}
        fast += _is_json_ext(encode_value(value, for_js=True))
        ctx["viaSet"] = value
        assert keep(value) is True
        assert pool.run_in_context("describe(viaSet) === describe(viaArgs)", ctx), value
        back = pool.run_in_context("viaSet", ctx)
        assert same(back, pool.run_in_context("viaArgs", ctx)) and back == normalized(value), value
    assert fast > 50  # the generator makes mostly plain values


def test_randomized_non_plain_values_still_cross_exactly(pool, ctx):
    keep = pool.run_in_context("(v) => { globalThis.viaArgs = v; return true }", ctx)
    rng = random.Random(15)
    for _ in range(40):
        shared = [random_value(rng)]
        value = {"plain": random_value(rng), "odd": rng.choice([math.nan, -math.inf, 2**60, isolate.undefined,
                                                                 isolate.BigInt(-5)]),
                 "a": shared, "b": shared}
        ctx["viaSet"] = value
        keep(value)
        assert pool.run_in_context("describe(viaSet) === describe(viaArgs) && viaSet.a === viaSet.b", ctx)


def test_large_values_out_match_the_general_path(pool, ctx):
    """A large untagged reply comes out as JSON text; the same value made tagged (an
    `undefined` beside it) takes the general path: both read the same."""
    pool.run_in_context(r"""
      globalThis.big = [];
      for (let i = 0; i < 3000; i++) big.push({id: i, f: i / 7, neg: -i, s: 'é\ud800' + i, z: 0, t: true,
        n: null, deep: [[[i]]], safe: 2 ** 53 - 1, e: 1e21, tiny: 5e-324, '__proto__': {p: i}});
      0""", ctx)
    raw = pool.run_in_context("big", ctx)
    general = pool.run_in_context("[big, undefined]", ctx)[0]
    assert same(raw, general)
    assert raw[5]["__proto__"] == {"p": 5} and raw[5]["s"] == "é\ud8005"
    assert type(raw[5]["safe"]) is int and type(raw[5]["e"]) is float


def test_unsafe_integers_out_are_floats_as_before(pool, ctx):
    got = pool.run_in_context("const u = []; for (let i = 0; i < 5000; i++) u.push(2 ** 60 + i * 4096, i); u", ctx)
    assert type(got[0]) is float and got[0] == 2.0 ** 60
    assert type(got[1]) is int
    assert same(got, pool.run_in_context("[u, undefined]", ctx)[0])


def test_the_benchmark_object_round_trips(pool, ctx):
    value = big_records(20_000)
    ctx["data"] = value
    assert pool.run_in_context("data.records.length", ctx) == 20_000
    assert pool.run_in_context("data", ctx) == value


# -- attacks: nothing of the script's runs that did not run before --------------------------

def test_prototype_setters_and_a_replaced_json_parse_are_not_hit_writing_in(pool, ctx):
    pool.run_in_context(r"""
      globalThis.hits = 0;
      for (const key of ['id', 'name', '__proto__x', '0', '1', 'records'])
        Object.defineProperty(Object.prototype, key, {set(v) { hits++ }, get() { hits++ }, configurable: true});
      Object.defineProperty(Array.prototype, '0', {set(v) { hits++ }, get() { hits++ }, configurable: true});
      JSON.parse = () => { hits++; return 'hijacked' };
      Object.prototype.toJSON = function () { hits++; return 'hijacked' };
      0""", ctx)
    value = big_records(2_000)
    ctx["data"] = value
    assert pool.run_in_context("hits", ctx) == 0
    assert pool.run_in_context(
        "Object.getOwnPropertyDescriptor(data.records[0], 'id').value === 0 && "
        "Object.getOwnPropertyDescriptor(data.records, '0').writable", ctx)
    assert pool.run_in_context("hits", ctx) == 0
    assert pool.run_in_context("delete Object.prototype.toJSON; data", ctx) == value


def test_proto_keys_from_the_host_stay_own_data_properties(pool, ctx):
    value = {"__proto__": {"polluted": True}, "rows": [{"__proto__": [1, 2]} for _ in range(5_000)]}
    assert _is_json_ext(encode_value(value, for_js=True))
    ctx["d"] = value
    assert pool.run_in_context(
        "Object.getPrototypeOf(d) === Object.prototype && d.polluted === undefined && "
        "Object.getOwnPropertyDescriptor(d, '__proto__').value.polluted === true && "
        "Array.isArray(Object.getOwnPropertyDescriptor(d.rows[7], '__proto__').value) && "
        "({}).polluted === undefined && [].polluted === undefined", ctx)
    assert pool.run_in_context("d", ctx) == value


def test_getters_proxies_and_tojson_run_out_exactly_as_before(pool, ctx):
    """Read out twice, once on the fast path and once on the general one: each run of
    script code counts, and both reads count the same; toJSON never runs."""
    pool.run_in_context(r"""
      globalThis.calls = {getter: 0, get: 0, ownKeys: 0, gopd: 0, proto: 0, toJSON: 0, arrayToJSON: 0};
      Object.prototype.toJSON = function () { calls.toJSON++; return 'hijacked' };
      Array.prototype.toJSON = function () { calls.arrayToJSON++; return 'hijacked' };
      const target = {a: 1, b: [2]};
      const proxy = new Proxy(target, {
        get(t, k) { calls.get++; return t[k] },
        ownKeys(t) { calls.ownKeys++; return Reflect.ownKeys(t) },
        getOwnPropertyDescriptor(t, k) { calls.gopd++; return Reflect.getOwnPropertyDescriptor(t, k) },
        getPrototypeOf(t) { calls.proto++; return Object.prototype },
      });
      globalThis.out = {rows: [], proxy, get lazy() { calls.getter++; return 'got' }};
      for (let i = 0; i < 4000; i++) out.rows.push({i, s: 'x' + i});
      0""", ctx)
    fast = pool.run_in_context("out", ctx)
    after_fast = pool.run_in_context("Object.assign({}, calls)", ctx)
    general = pool.run_in_context("[out, undefined]", ctx)[0]
    after_general = pool.run_in_context("Object.assign({}, calls)", ctx)
    assert fast == general and fast["lazy"] == "got" and fast["proxy"] == {"a": 1, "b": [2]}
    assert after_fast["toJSON"] == after_fast["arrayToJSON"] == 0
    assert after_general["toJSON"] == after_general["arrayToJSON"] == 0
    assert after_fast["getter"] == 1 and after_general["getter"] == 2
    for trap in ("get", "ownKeys", "gopd", "proto"):
        assert after_general[trap] == 2 * after_fast[trap] > 0, trap


def test_shared_references_and_cycles_are_kept_both_ways(pool, ctx):
    row = {"k": list(range(100))}
    value = {"rows": [row] * 500}
    ctx["s"] = value
    assert pool.run_in_context("s.rows[0] === s.rows[499]", ctx)
    back = pool.run_in_context("s", ctx)
    assert back["rows"][0] is back["rows"][499]
    got = pool.run_in_context("const c = {rows: []}; for (let i = 0; i < 3000; i++) c.rows.push({i}); "
                              "c.self = c; c", ctx)
    assert got["self"] is got and len(got["rows"]) == 3000


def test_shared_references_beside_index_like_keys_name_the_right_container(pool, ctx):
    """JS enumerates index-like keys first: the general path must number containers in
    the order it walks them (found by the randomized test above)."""
    empty = ()
    ctx["v"] = value = [[{"id0": [[empty]], "x": {}, "0": []}, empty]]
    assert pool.run_in_context("v[0][1] === v[0][0].id0[0][0] && v[0][0]['0'] !== v[0][1]", ctx)
    assert pool.run_in_context("v", ctx) == normalized(value)
    shared = {"s": 1}
    ctx["w"] = {"b": shared, "7": [1], "a": shared, "10": {"t": shared}}
    assert pool.run_in_context("w.b === w.a && w.a === w['10'].t && Array.isArray(w['7'])", ctx)


# -- large values out: the walk skips its Map when the worker found nothing met twice ----------
# Past 1024 containers the bridge asks the worker (two JS_WriteObject passes, in C) whether any
# object is met twice; if none is, it stops keeping a Map of the containers it met. Each test
# puts what the check must see after the 1024th container, where only the check can see it.

def with_rows(tail: str) -> str:
    """Code whose value is ``tail``'s, after 3000 rows (6000 containers) are made."""
    return ("(() => { const rows = []; for (let i = 0; i < 3000; i++) rows.push({i, tags: ['a', i]}); "
            + tail + " })()")


def test_sharing_and_cycles_past_the_check_point_keep_their_identity(pool, ctx):
    got = pool.run_in_context(with_rows("const shared = {s: 1}; rows.push(shared, [shared]); return rows"), ctx)
    assert got[-2] is got[-1][0] and got[-2] == {"s": 1}
    got = pool.run_in_context(with_rows("const c = {rows}; rows.push(c); return c"), ctx)
    assert got["rows"][-1] is got and got["rows"][2999] == {"i": 2999, "tags": ["a", 2999]}
    got = pool.run_in_context(with_rows(
        "const m = {k: 1}; rows.push(new Map([['m', m]]), new Set([m]), m); return rows"), ctx)
    assert isinstance(got[-3], isolate.JSMap) and got[-3]["m"] is got[-1]
    got = pool.run_in_context(with_rows(
        "const buf = new ArrayBuffer(8); rows.push(new Uint8Array(buf), new Uint8Array(buf, 4)); return rows"), ctx)
    assert len(got) == 3002 and got[-2].data == bytes(8) and got[-1].data == bytes(4)


def test_unshared_large_values_read_as_the_general_path_reads_them(pool, ctx):
    """The same value with a Proxy at its end (which the check refuses: the Map is kept)
    reads the same, container for container."""
    tail = "rows.push({deep: [[[{x: -0, u: undefined, n: NaN, b: 10n}]]]}, new Date(0), /r/g);"
    fast = pool.run_in_context(with_rows(tail + "return rows"), ctx)
    general = pool.run_in_context(with_rows(tail + "rows.push(new Proxy({p: 1}, {})); return rows"), ctx)
    assert general[-1] == {"p": 1}
    assert same(normalized(fast), normalized(general[:-1]))


# Each is pushed past the check point; what comes out must be what the Map-keeping walk
# (kept by a Proxy beside the value) makes of it, and no toJSON may run.
PAST_THE_CHECK = [
    "{a: 1, b: 'x', c: [true, null, 1.5]}",                # plain: JSON.stringify writes it all
    "Object.assign(Object.create(null), {n: 1})",
    "[-0]", "[NaN]", "[Infinity]", "[undefined]", "[2 ** 53]", "[-(2 ** 53)]", "[10n]", "[Symbol('s')]",
    "[, 1]", "(() => { const a = [1, 2]; a.extra = 3; return a })()",
    "{'\\0': 'x', i: 1}",                                  # an own TAG key: a pairs object
    "(() => { const o = {i: 1}; Object.defineProperty(o, '\\0', {value: 1}); return o })()",
    "(() => { const o = {i: 1}; Object.defineProperty(o, 'toJSON', {value: () => { calls += 1000; return 'x' }}); "
    "return o })()",
    "{toJSON: 1}",
    "(() => { class K { constructor() { this.k = 1 } } return new K() })()",
    "Object.setPrototypeOf([1, 2], Object.create(Array.prototype))",
    "Object.setPrototypeOf({a: 1}, Object.create(Object.prototype))",
    "new Date(0)", "new Map([[1, {m: 1}]])", "new Set([1])", "new Uint8Array([1, 2])", "/x/g",
    "new Error('e')", "Object(1)", "'\\ud800'",
    "(() => { let d = []; for (let i = 0; i < 490; i++) d = [d]; return d })()",
    "(() => { let d = []; for (let i = 0; i < 600; i++) d = [d]; return d })()",
    "(() => { const a = [1, 2]; Object.defineProperty(a, 0, {get() { calls++; return {g: 1} }, enumerable: true}); "
    "return a })()",
]


@pytest.mark.parametrize("tail", PAST_THE_CHECK)
@pytest.mark.parametrize("hooked", [False, True], ids=["", "prototypes-with-toJSON"])
def test_values_past_the_check_read_as_the_map_keeping_walk_reads_them(pool, ctx, tail, hooked):
    pool.run_in_context("globalThis.calls = 0; delete Object.prototype.toJSON; delete Array.prototype.toJSON", ctx)
    if hooked:
        pool.run_in_context("Object.prototype.toJSON = function () { calls += 1000; return 'hijacked' }; "
                            "Array.prototype.toJSON = Object.prototype.toJSON", ctx)

    def read(code):
        try:
            return "value", pool.run_in_context(code, ctx)
        except isolate.IsolateError as exc:
            return "error", (type(exc).__name__, str(exc))

    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 5000))  # same() and normalized() recurse 490 levels deep
    try:
        _compare_past_the_check(pool, ctx, tail, read)
    finally:
        sys.setrecursionlimit(limit)
    assert pool.run_in_context("calls", ctx) < 1000  # no toJSON ran (a getter adds 1 a read)


def _compare_past_the_check(pool, ctx, tail, read):
    kind, fast = read(with_rows(f"rows.push({tail}); return rows"))
    general_kind, general = read(with_rows(f"rows.push({tail}); return [rows, new Proxy({{}}, {{}})]"))
    if general_kind == "value":
        general = general[0]
    assert kind == general_kind
    if kind == "error":
        assert fast == general
    else:
        last, general_last = fast[-1], general[-1]
        assert same(normalized(fast[:-1]), normalized(general[:-1]))
        assert type(last) is type(general_last)
        if isinstance(last, (list, dict)):
            assert same(normalized(last), normalized(general_last)), (last, general_last)
        elif not isinstance(last, isolate.JSObject):
            assert repr(last) == repr(general_last)


def test_large_mirrored_replies_come_out_whole(pool):
    """A large mirrored reply is written as two texts (value, globals): every mix of
    plain and tagged, value and error, reads as before."""
    doc = big_records(1_000)
    sandbox = {"doc": doc}
    assert pool.run_in_new_context("doc.records[3].name = 'changed'; doc.records.length", sandbox) == 1_000
    assert sandbox["doc"]["records"][3]["name"] == "changed"
    assert sandbox["doc"]["records"][4] == doc["records"][4]

    sandbox = {"doc": big_records(1_000)}
    got = pool.run_in_new_context("doc.when = new Date(0); doc.records.push(undefined); [doc.records.length, undefined]",
                                  sandbox)
    assert got == [1_001, isolate.undefined]
    assert isinstance(sandbox["doc"]["when"], __import__("datetime").datetime)
    assert sandbox["doc"]["records"][-1] is isolate.undefined

    sandbox = {"doc": big_records(1_000)}
    with pytest.raises(isolate.JSError, match="after"):
        pool.run_in_new_context("doc.meta.n = -1; throw new Error('after')", sandbox)
    assert sandbox["doc"]["meta"]["n"] == -1 and len(sandbox["doc"]["records"]) == 1_000

    sandbox = {"doc": big_records(1_000)}
    fn = pool.run_in_new_context("globalThis.copy = doc.records.map((r) => r.id); () => copy.length", sandbox)
    assert fn() == 1_000 and sandbox["copy"] == list(range(1_000))
    big = pool.run_in_new_context("doc", {"doc": big_records(1_000)})
    assert big == big_records(1_000)


def test_a_large_plain_value_leaves_within_a_tight_memory_limit(pool):
    """Written by JSON.stringify from the value itself, a large plain result needs no
    copy in the engine: 20,000 rows leave an 8 MB context (they ran out of memory in the
    copying walk). Below what the check's passes need, the Map-keeping walk is taken,
    and a context out of memory answers typed and serves on."""
    code = "const rows = []; for (let i = 0; i < 20000; i++) rows.push({i, s: 'x' + i}); rows"
    ctx = pool.create_context(memory_limit=8 * 2**20)
    got = pool.run_in_context(code, ctx)
    assert len(got) == 20000 and got[-1] == {"i": 19999, "s": "x19999"}
    tight = pool.create_context(memory_limit=4 * 2**20)
    with pytest.raises(isolate.JSMemoryError):
        pool.run_in_context(code, tight)
    assert pool.run_in_context("1 + 1", tight) == 2


LOOPING_GETTER = with_rows(
    "const a = [1, 2]; Object.defineProperty(a, 1, {get() { for (;;) {} }, enumerable: true}); "
    "rows.push(a); return rows")


@pytest.mark.timeout(60)
def test_a_getter_that_loops_inside_the_check_is_stopped_by_a_timeout(pool, ctx):
    with pytest.raises(isolate.ScriptTimeoutError) as info:
        pool.run_in_context(LOOPING_GETTER, ctx, timeout=300)
    assert info.value.stage == "interrupt"  # stopped in the engine: the worker serves on
    assert pool.run_in_context("1 + 1", ctx) == 2


@pytest.mark.timeout(60)
def test_a_getter_that_loops_inside_the_check_is_stopped_by_sigint(pool, ctx):
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(isolate.ScriptInterruptedError):
            pool.run_in_context(LOOPING_GETTER, ctx, break_on_sigint=True)
    finally:
        timer.cancel()
    assert pool.run_in_context("1 + 1", ctx) == 2


def test_a_getter_that_shares_objects_after_the_check_cannot_grow_the_value(pool, ctx):
    """A getter that, read a third time (after the check's two passes), returns objects
    nested 2**40 times over: without the Map the plain-data check and the walk would
    follow them all. Both stop at the size the check measured, with an error that says
    why."""
    code = with_rows("""
      globalThis.reads = 0;
      const a = [0];
      Object.defineProperty(a, 0, {enumerable: true, get() {
        if (++reads < 3) return 0;
        let bomb = [1]; for (let i = 0; i < 40; i++) bomb = [bomb, bomb];
        return bomb;
      }});
      rows.push(a); return rows""")
    with pytest.raises(isolate.UnencodableValueError, match="grew while it was read"):
        pool.run_in_context(code, ctx, timeout=30_000)
    assert pool.run_in_context("reads", ctx) >= 3
    assert pool.run_in_context("1 + 1", ctx) == 2


def test_a_hundred_thousand_levels_give_the_same_error(pool, ctx):
    deep: list = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(isolate.UnencodableValueError, match="MAX_VALUE_DEPTH"):
        ctx["deep"] = deep
    with pytest.raises(isolate.UnencodableValueError, match="MAX_VALUE_DEPTH"):
        pool.run_in_context("let dd = []; for (let i = 0; i < 100000; i++) dd = [dd]; "
                            "[dd, 'x'.repeat(100000)]", ctx)
    assert pool.run_in_context("1 + 1", ctx) == 2


def test_a_large_value_past_the_memory_limit_fails_typed_and_the_context_serves(pool):
    context = pool.create_context(memory_limit=8 * 2**20)
    with pytest.raises(isolate.IsolateError) as info:
        context["data"] = big_records(60_000)
    assert info.value.code
    assert pool.run_in_context("typeof data", context) == "undefined"
    context["small"] = big_records(100)
    assert pool.run_in_context("small.records.length", context) == 100


def test_a_large_write_is_bounded_by_the_access_timeout():
    # The grace is long enough for the engine's JSON.parse (C, not interruptible:
    # ~80 ms for these 4 MB here, more on a slow machine) so that the worker's own
    # stop answers, not the kill ladder, which would end the context with it.
    with isolate.Pool(size=1, limits=isolate.Limits(access_timeout_s=0.001, kill_grace_s=10)) as pool:
        context = pool.create_context()
        with pytest.raises(isolate.ScriptTimeoutError):
            context["data"] = big_records(60_000)
        assert pool.run_in_context("typeof data", context) == "undefined"


def test_v8_takes_the_same_values_in_and_out():
    """V8 shares the bridge: a `set` of a plain value splices its JSON text there too."""
    import importlib.util

    if importlib.util.find_spec("STPyV8") is None:
        pytest.skip("the v8 extra is not installed (pip install 'isolate-vm[v8]')")
    with isolate.Pool(size=1, engine="v8", limits=isolate.Limits(access_timeout_s=60)) as pool:
        context = pool.create_context()
        pool.run_in_context(DESCRIBE + "Object.defineProperty(Object.prototype, 'id', {set(v) { throw 1 }});"
                            "JSON.parse = () => 'hijacked';", context)
        keep = pool.run_in_context("(v) => { globalThis.viaArgs = v; return true }", context)
        rng = random.Random(16)
        for i in range(30):
            value = {"big": [random_value(rng) for _ in range(50)], "id": i, "__proto__": [i]}
            context["viaSet"] = value
            keep(value)
            assert pool.run_in_context("describe(viaSet) === describe(viaArgs)", context), value
            assert pool.run_in_context("viaSet", context) == normalized(value)
        value = big_records(5_000)
        context["data"] = value
        assert pool.run_in_context("data", context) == value
        # Past the QuickJS worker's check point and split size: V8's worker does neither,
        # and its values still come out whole (shared objects too) with the mirror.
        got = pool.run_in_context(with_rows("const s = {s: 1}; rows.push(s, [s]); return rows"), context)
        assert got[-2] is got[-1][0] and len(got) == 3002
        calls = []
        sandbox = {"doc": big_records(2_000), "f": lambda: calls.append(1)}
        assert pool.run_in_new_context("doc.records.length", sandbox) == 2_000
        assert sandbox["doc"] == big_records(2_000) and calls == []


# -- a sandbox's globals (run_in_new_context, map, run_batch) ------------------------------

def test_a_plain_sandbox_crosses_as_json_text_and_others_do_not(pool):
    ctx = pool.create_context()
    assert _is_json_ext(ctx._encode_globals({"doc": big_records(3), "n": 1}))
    assert ctx._encode_globals({}) == {}  # no set_globals op at all
    shared = [1]
    for sandbox in ({"a": shared, "b": shared}, {"x": math.nan}, {"u": isolate.undefined}, {1: "int key"}):
        assert not _is_json_ext(ctx._encode_globals(sandbox)), sandbox


def test_randomized_sandboxes_read_in_js_as_a_set_makes_them(pool, ctx):
    """A sandbox's globals (JSON text when plain) give the script what `ctx[k] = v` gives,
    down to descriptors, key order and -0; a non-plain sandbox keeps its sharing; and the
    sandbox reads back as it went in."""
    rng = random.Random(17)
    for i in range(60):
        value = random_value(rng)
        ctx["viaSet"] = value
        expected = pool.run_in_context("describe(viaSet)", ctx)
        sandbox = {"v": value, "i": i}
        got = pool.run_in_new_context(DESCRIBE + "describe(v)", sandbox)
        assert got == expected, value
        assert normalized(sandbox["v"]) == normalized(value) and sandbox["i"] == i
    shared = {"s": [1, 2]}
    assert list(pool.map("a === b && a.s.length === 2", [{"a": shared, "b": shared}] * 3)) == [True] * 3


def test_sandbox_keys_reach_the_global_as_own_data_properties(pool):
    """`__proto__`, `constructor` and a built-in's name in a plain sandbox become own
    enumerable globals; no setter a script could have put on a prototype runs."""
    sandbox = {"__proto__": {"p": 1}, "constructor": 2, "JSON": 3, "toJSON": 4}
    code = ("const d = (k) => Object.getOwnPropertyDescriptor(globalThis, k);"
            "[d('__proto__').value.p, d('constructor').value, d('JSON').enumerable, toJSON, "
            "Object.getPrototypeOf(globalThis) !== null]")
    assert pool.run_in_new_context(code, sandbox) == [1, 2, True, 4, True]


def test_results_with_and_without_handles_in_fresh_contexts(pool):
    """A fresh context's result is checked for handles (its context then stays alive):
    a plain result takes the C-speed check, a function deep in it the walk."""
    big = pool.run_in_new_context("({rows: Array.from({length: 2000}, (_, i) => ({i, s: 'x' + i})), data})",
                                  {"data": big_records(50)})
    assert len(big["rows"]) == 2000 and big["data"] == big_records(50)
    nested = pool.run_in_new_context("let n = 0; const o = {a: [{b: [() => ++n]}], t: 'x'.repeat(100000)}; o")
    fn = nested["a"][0]["b"][0]
    assert fn() == 1 and fn() == 2  # its context was kept
    out = list(pool.map("({f: () => k * 2, big: 'y'.repeat(50000)})", [{"k": 3}, {"k": 4}]))
    assert [o["f"]() for o in out] == [6, 8]
