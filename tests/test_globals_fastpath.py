"""A sandbox's globals set through the C API are the globals the bridge's op sets (issue 14).

``EngineContext.op("set_globals", ...)`` with untagged values defines each key on
the global from C (workers/engine.py, _set_plain_globals) instead of entering the
bridge. Each case here sets the same entries in two fresh contexts, one through
that path and one through the bridge's op itself, and compares everything a script
can observe: the global's own keys in order, each key's descriptor, the values'
prototypes and own keys, and the reply (an error's name and message included).
"""

from __future__ import annotations

import json

import pytest

from isolate.protocol.plainjson import plain_json
from isolate.protocol.values import JSONText
from isolate.workers import engine as engine_module
from isolate.workers.engine import EngineContext
from isolate.workers.tagged import from_tagged, to_tagged

pytestmark = pytest.mark.timeout(60)

# Installed before the globals are set (they may replace JSON, Object, globalThis...):
# a non-enumerable global function that reads with the intrinsics it captured.
PROBE = r"""
(() => {
  const G = globalThis, O = Object, R = Reflect, J = JSON.stringify, S = String;
  const keys = O.keys, names = O.getOwnPropertyNames, desc = O.getOwnPropertyDescriptor;
  const proto = O.getPrototypeOf, OP = O.prototype, AP = Array.prototype, own = O.prototype.hasOwnProperty;
  const apply = R.apply, ownKeys = R.ownKeys, push = Array.prototype.push, includes = Array.prototype.includes;
  const map = Array.prototype.map;
  O.defineProperty(G, '__observe', { enumerable: false, configurable: true, value: (changed) => {
    const out = [keys(G)];
    for (const k of names(G)) {
      const d = desc(G, k);
      if (!d.enumerable && !apply(includes, changed, [k])) continue;
      const v = d.value, isObj = typeof v === 'object' && v !== null;
      apply(push, out, [[k, 'get' in d ? 'accessor' : typeof v, d.writable, d.enumerable, d.configurable,
        typeof v === 'function' || typeof v === 'undefined' ? typeof v : J(v),
        isObj ? proto(v) === OP || proto(v) === AP : null,
        isObj ? apply(map, ownKeys(v), [S]) : null,
        isObj ? apply(own, v, ['__proto__']) : null]]);
    }
    return J(out);
  } });
})();
"""

CASES = {
    "one number": {"x": 1},
    "index keys among names": {"b": 1, "a": [1, 2, {"c": None}], "2": "two", "10": 10, "1": 1},
    "__proto__ keys": {"__proto__": {"__proto__": 5, "y": 1}, "z": {"__proto__": None}},
    "names of built-ins": {"JSON": 1, "Object": 2, "globalThis": 3, "eval": 4, "Array": [5]},
    "non-configurable first": {"undefined": 1, "a": 2},
    "non-configurable among others": {"a": 1, "NaN": 2, "b": 3, "5": 5},
    "non-configurable last": {"q": 1, "Infinity": 0},
    "a key not ASCII": {"a": 1, "é": 2, "b": 3},
    "a key with a NUL": {"a": 1, "a\x00b": 2},
    "strings": {"s": "é ☃ 𝄞 \u2028 \"quoted\" \\", "lone": "\ud800", "empty": ""},
    "numbers": {"big": 1e308, "neg": -5, "frac": 0.1, "int": 2 ** 53, "t": True, "f": False, "n": None},
    "empty": {},
    "deep": {"d": [[[[[[[[[[{"k": [1]}]]]]]]]]]]},
    "many": {f"k{i}": i for i in range(300)},
    "a sandbox text too large to read for its keys": {"big": "x" * 20_000, "after": 1},
}
CHANGED = sorted({k for case in CASES.values() for k in case} | {"acc", "fixed"})


def fresh(pre: str | None = None) -> EngineContext:
    engine = EngineContext(lambda *a: None)
    assert engine.op("run", PROBE, "probe.js", False, 0, 0, True)["ok"]
    if pre:
        assert engine.op("run", pre, "pre.js", False, 0, 0, True)["ok"]
    return engine


def observe(engine: EngineContext) -> list:
    """The global's own keys, then per key: kind, writable, enumerable, configurable,
    the value's JSON, whether its prototype is the realm's own, its own keys, whether
    "__proto__" is one of them."""
    reply = engine.op("run", f"__observe({json.dumps(CHANGED)})", "observe.js",
                      False, 0, 0, True)
    assert reply["ok"], reply
    text = from_tagged(reply["v"], reply["t"])
    if isinstance(text, JSONText):  # a large reply's text, unparsed (workers/fastjson.py)
        text = json.loads(text.data)
    return json.loads(text)


def outcome(reply: dict):
    if reply["ok"]:
        return ("ok", from_tagged(reply["v"], reply["t"]))
    error = from_tagged(reply["e"], reply["t"])
    return ("error", error.name, error.message)


def through_c_api(entries, pre=None):
    engine = fresh(pre)
    entered = []
    native = engine._op_native
    engine._op_native = lambda request, drain=True: (entered.append(request[0]), native(request, drain))[1]
    reply = engine.op("set_globals", entries)
    engine._op_native = native
    return engine, reply, entered


def through_the_bridge(entries, pre=None):
    engine = fresh(pre)
    return engine, engine._op_native(("set_globals", entries), True)


def entries_of(case: dict, form: str):
    """The entries as the worker passes them: a dict, or (from a pool) the host's
    sandbox as one JSON text (isolate/context.py, _encode_globals)."""
    if form == "dict":
        return to_tagged(case)
    text = plain_json(case, 500)
    if text is None:
        pytest.skip("not plain: the host sends this one walked, not as JSON text")
    return to_tagged(JSONText(text))


@pytest.mark.parametrize("form", ["dict", "JSON text"])
@pytest.mark.parametrize("name", CASES)
def test_the_c_api_sets_what_the_bridge_sets(name, form):
    entries = entries_of(CASES[name], form)
    fast, fast_reply, entered = through_c_api(entries)
    slow, slow_reply = through_the_bridge(entries)
    assert outcome(fast_reply) == outcome(slow_reply)
    assert observe(fast) == observe(slow)
    plain_ascii = entries[1] is False and all(k.isascii() and "\x00" not in k for k in CASES[name]) and \
        (form == "dict" or len(entries[0].data) <= engine_module._GLOBALS_TEXT_MAX)
    refused = any(k in ("undefined", "NaN", "Infinity") for k in CASES[name])
    if plain_ascii and not refused:
        assert entered == []  # no bridge entry at all


def test_the_outcomes_are_the_ones_expected():
    # The comparison above is not between two wrong answers.
    fast, reply, _ = through_c_api(to_tagged(CASES["non-configurable among others"]))
    assert outcome(reply) == ("error", "TypeError", "'NaN' is read-only")
    seen = observe(fast)
    assert [k for k in seen[0] if k in CASES["non-configurable among others"]] == ["5", "a"]
    fast, reply, _ = through_c_api(to_tagged(CASES["__proto__ keys"]))
    row = {r[0]: r for r in observe(fast)[1:]}["__proto__"]
    assert row[1:] == ["object", True, True, True, '{"__proto__":5,"y":1}', True, ["__proto__", "y"], True]


def test_an_accessor_a_script_left_on_the_global_behaves_as_with_the_bridge():
    # Not a path the worker takes (it sets globals before any script runs), but the
    # C API must not differ there either: a configurable accessor is replaced, a
    # non-configurable one is assigned through (its setter runs) by the bridge's op.
    pre = ("globalThis.log = [];"
           "Object.defineProperty(globalThis, 'acc', { get() { return 'got'; }, set(v) { log.push('set acc'); },"
           " configurable: true, enumerable: true });"
           "Object.defineProperty(globalThis, 'fixed', { get() { return 'fixed'; }, set(v) { log.push('set ' + v); },"
           " configurable: false, enumerable: true });")
    entries = to_tagged({"acc": 1, "fixed": 2, "after": 3})
    fast, fast_reply, _ = through_c_api(entries, pre)
    slow, slow_reply = through_the_bridge(entries, pre)
    assert outcome(fast_reply) == outcome(slow_reply) == ("ok", None) or \
        outcome(fast_reply) == outcome(slow_reply)
    assert observe(fast) == observe(slow)
    logs = [from_tagged(e.op("run", "log", "l.js", False, 0, 0, True)["v"], False) for e in (fast, slow)]
    assert logs[0] == logs[1] == ["set 2"]


# -- the mirror read back through the C API ----------------------------------------

MIRRORS = {
    "a number": ({"x": 1}, "x + 1"),
    "primitives and index keys": ({"a": "s", "b": None, "c": True, "1": 2, "0": 1}, "var y; var z = 'é ☃'; a"),
    "undefined result": ({"x": 1}, "void 0"),
    "a lone surrogate": ({"a": "x"}, "var s = '\\ud800'; s + a"),
    "numbers": ({}, "var big = 2 ** 53 + 2, huge = 1e21, frac = 0.1 + 0.2, neg = -7; huge"),
    "minus zero result": ({"x": 1}, "-0"),
    "NaN global": ({}, "var n = NaN; 1"),
    "an accessor global": ({}, "Object.defineProperty(globalThis, 'acc', { get() { throw new Error('ran'); },"
                               " enumerable: true }); 1"),
    "a function declaration": ({"x": 1}, "function f() {} x"),
    "an object global": ({}, "var o = { a: [1] }; 1"),
    "a key not ASCII": ({"é": 1}, "1"),
    "a deleted global": ({"x": 1, "y": 2}, "delete globalThis.x; y"),
    "many globals": ({f"k{i}": i for i in range(100)}, "k5"),
    "a BigInt": ({}, "var b = 10n; 1"),
}


def mirrored_run(globals_: dict, code: str, through_bridge: bool):
    engine = EngineContext(lambda *a: None)  # as the worker makes it: no op has run
    assert engine.op("set_globals", to_tagged(globals_))["ok"]
    if through_bridge:
        engine._primitive_globals = lambda api, ctx: None
    entered = []
    native = engine._op_native
    engine._op_native = lambda request, drain=True: (entered.append(request[0]), native(request, drain))[1]
    bytecode, failure = engine.compile_script(code, "m.js")
    assert failure is None
    reply = engine.run_compiled(bytecode, True)
    assert reply["ok"], reply
    return from_tagged(reply["v"], reply["t"]), from_tagged(reply["g"], reply["gt"]), entered


@pytest.mark.parametrize("name", MIRRORS)
def test_the_mirror_read_through_the_c_api_is_the_bridges(name):
    from _values import same

    globals_, code = MIRRORS[name]
    value, seen, entered = mirrored_run(globals_, code, through_bridge=False)
    want_value, want_seen, _ = mirrored_run(globals_, code, through_bridge=True)
    assert same(value, want_value) and same(seen, want_seen), (value, seen, want_value, want_seen)
    assert list(seen) == list(want_seen)  # the global's key order
    if name in ("a number", "primitives and index keys", "undefined result", "a lone surrogate", "numbers",
                "a deleted global"):
        assert entered == []  # no bridge entry for the whole job
    else:
        assert entered == ["finish"]
