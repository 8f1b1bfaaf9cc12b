"""A script that replaces built-ins cannot subvert the bridge (issue 13).

Inside a context the script owns every built-in, and the bridge (workers/bridge.js)
that encodes results and routes host calls runs in the same realm. The bridge takes
what it needs once, at installation (its primordials), and the worker serializes
replies and calls the host in a bare realm of the bridge's own. This suite is the
matrix: for each intrinsic the bridge relied on before (and the hooks around them:
setters and getters on Object.prototype and Array.prototype, index setters, toJSON,
Symbol.hasInstance, frozen and sealed globals, a deleted Symbol, replaced
constructors), a context is polluted, and every way a value crosses must give
exactly what an unpolluted context gives: values out, values in through globals and
function arguments, thrown errors with their stacks, compile errors, host calls both
ways, promises, handles, the mirror of a contextified dict. Another context on the
same worker stays unaffected.

Each context first runs SETUP (the values and helpers a check uses: made before the
pollution, so that the check's own code needs no built-in the pollution broke), then
the pollution, then the check. A check's observation is compared with the same
check's observation in a clean context; `test_clean_observations_are_exact` pins the
clean observations themselves to hand-written values.
"""

from __future__ import annotations

import datetime

import pytest

import isolate
from isolate import BigInt, JSMap, JSRegExp, JSSet, JSTypedArray, undefined

pytestmark = pytest.mark.timeout(120)

# The values and helpers of the checks, defined before any pollution.
SETUP = r"""
const TE = TypeError, DEF = Object.defineProperty, GPO = Object.getPrototypeOf;  // for the pollutions
const OUT = [1, 'a', -0, NaN, Infinity, undefined, null, 2n ** 70n, -5n, true,
             { b: [2, null], ['__proto__']: 7, '\u0000': 'tag-like key', nested: { deep: [[['x']]] } },
             new Map([[1, { x: 2 }], ['k', new Set(['s', 3])]]), new Set([1, 'two']),
             new Date(86400000), /re[a-z]+/gi, new Uint8Array([1, 2, 255]), new Float64Array([0.5]),
             new ArrayBuffer(3), Symbol.for('reg'), [ , 3], Object.assign(new RangeError('bad'), { code: 'E1' })];
OUT[21] = OUT;  // a cycle
function passThrough(...args) { return args; }
function describe(v) {
  // What arrived, read with operators only (no built-in a pollution may have replaced).
  return [typeof v, v === null, typeof v === 'object' && v !== null ? v['__proto__'] === 1 : false];
}
function thrower(m) { throw new TE(m); }
function callHost() { return f(1, 'two', [3, { four: 4n }], OUT[11], OUT[12], undefined, -0); }
function callFailingHost() { try { g(); return 'no throw'; } catch (e) { return e; } }
async function later(v) { await null; return v; }
class Klass { constructor() { this.x = 1; this.y = [2]; } }
var MIRROR = 0;
var TARGET;
"""

# Each pollution replaces intrinsics with functions that throw (so that any use shows),
# or hooks the prototype chain. `bad(name)` makes such a function; DEF and GPO are
# Object.defineProperty and Object.getPrototypeOf as SETUP found them.
BAD = "const bad = (n) => function () { throw new Error('polluted ' + n); };\n"


def replace(*paths):
    """JS that replaces each dotted path (on the global) with a throwing function."""
    lines = []
    for path in paths:
        owner, _, key = path.rpartition(".")
        if owner.endswith(".Symbol"):  # Array.prototype.Symbol.iterator: a well-known symbol key
            owner, key_js = owner[: -len(".Symbol")], "Symbol." + key
        else:
            key_js = repr(key)
        lines.append(f"DEF({owner}, {key_js}, {{ __proto__: null, value: bad({path!r}), writable: true, "
                     f"configurable: true }});")
    return "\n".join(lines)


def getter_throws(owner, *keys):
    """JS that puts a throwing accessor (get and set) on `owner` for each key."""
    return "\n".join(
        f"DEF({owner}, {key}, {{ __proto__: null, get: bad('get ' + String({key})), "
        f"set: bad('set ' + String({key})), configurable: true }});"
        for key in keys)


# Names of prototype properties the bridge or the C side would meet through the
# prototype chain of a plain object or array (descriptor fields, reply fields,
# tag fields, toJSON, then, the stack-position fields).
PLAIN_OBJECT_KEYS = ["'get'", "'set'", "'value'", "'writable'", "'enumerable'", "'configurable'",
                     "'toJSON'", "'abort'", "'ok'", "'v'", "'e'", "'t'", "'g'", "'n'", "'i'", "'k'",
                     "'name'", "'message'", "'stack'", "'firstLine'", "'filename'",
                     "'lineOffset'", "'columnOffset'", "'firstLineShift'", "'length'", "'constructor'"]

POLLUTIONS = {
    # Object
    "Object.keys": replace("Object.keys"),
    "Object.getPrototypeOf": replace("Object.getPrototypeOf"),
    "Object.setPrototypeOf": replace("Object.setPrototypeOf"),
    "Object.defineProperty": replace("Object.defineProperty"),
    "Object.getOwnPropertyDescriptor": replace("Object.getOwnPropertyDescriptor"),
    "Object.entries/assign/freeze": replace("Object.entries", "Object.assign", "Object.freeze"),
    "Object.prototype.hasOwnProperty": replace("Object.prototype.hasOwnProperty"),
    "Object.prototype.toString": replace("Object.prototype.toString"),
    "Object.prototype accessors": getter_throws("Object.prototype", *PLAIN_OBJECT_KEYS),
    "Object.prototype.toJSON spoof": "Object.prototype.toJSON = function () { return 'spoof'; };",
    "Object.prototype index accessors": getter_throws("Object.prototype", "0", "1", "2", "3"),
    "Object.prototype.__proto__ setter": getter_throws("Object.prototype", "'__proto__'"),
    "globalThis.Object": "globalThis.Object = bad('Object');",
    # Array
    "Array.isArray": replace("Array.isArray"),
    "Array.prototype.push/pop": replace("Array.prototype.push", "Array.prototype.pop"),
    "Array.prototype.join/slice/splice": replace("Array.prototype.join", "Array.prototype.slice",
                                                 "Array.prototype.splice"),
    "Array.prototype.map/filter/forEach": replace("Array.prototype.map", "Array.prototype.filter",
                                                  "Array.prototype.forEach"),
    "Array.prototype[Symbol.iterator]": replace("Array.prototype.Symbol.iterator"),
    "ArrayIterator.next": "GPO([][Symbol.iterator]()).next = bad('ArrayIterator.next');",
    "Array.prototype index setters": getter_throws("Array.prototype", "0", "1", "2", "3", "4", "5", "6", "7"),
    "Array.prototype index spies": (
        "for (let i = 0; i < 8; i++) DEF(Array.prototype, i, { __proto__: null, configurable: true,\n"
        "  get() { return 'spoof'; }, set(v) { if (v && typeof v === 'object') { v.v = 'spoof'; v.ok = false; } } });"),
    "Array.prototype.toJSON spoof": "Array.prototype.toJSON = function () { return 'spoof'; };",
    "Array.prototype toJSON/join accessors": getter_throws("Array.prototype", "'toJSON'", "'join'"),
    "globalThis.Array": "globalThis.Array = bad('Array');",
    # Function
    "Function.prototype.call/apply/bind": replace("Function.prototype.call", "Function.prototype.apply",
                                                  "Function.prototype.bind"),
    "Function.prototype.toString": replace("Function.prototype.toString"),
    "globalThis.eval/Function": "globalThis.eval = bad('eval'); globalThis.Function = bad('Function');",
    "Symbol.hasInstance hooks": "\n".join(
        f"DEF({c}, Symbol.hasInstance, {{ value: bad('hasInstance {c}') }});"
        for c in ["Error", "TypeError", "SyntaxError", "RangeError", "Promise", "Array", "Object", "Function",
                  "Map", "Set", "Date", "RegExp"] + ["InternalError"]),
    # Reflect, JSON
    "Reflect.*": replace("Reflect.apply", "Reflect.construct", "Reflect.ownKeys", "Reflect.defineProperty",
                         "Reflect.getPrototypeOf", "Reflect.get", "Reflect.set", "Reflect.has"),
    "globalThis.Reflect": "globalThis.Reflect = undefined;",
    "JSON.stringify/parse": replace("JSON.stringify", "JSON.parse"),
    "globalThis.JSON": "globalThis.JSON = { stringify: bad('stringify'), parse: bad('parse') };",
    # String, RegExp, Math, Symbol
    "String.prototype.split/replace": replace("String.prototype.split", "String.prototype.replace",
                                              "String.prototype.replaceAll"),
    "String.prototype.slice/indexOf/lastIndexOf": replace("String.prototype.slice", "String.prototype.indexOf",
                                                          "String.prototype.lastIndexOf",
                                                          "String.prototype.substring"),
    "String.prototype.startsWith/trim/repeat/charCodeAt": replace(
        "String.prototype.startsWith", "String.prototype.trim", "String.prototype.repeat",
        "String.prototype.charCodeAt", "String.prototype.endsWith"),
    "String.prototype[Symbol.split/replace]": (
        "String.prototype[Symbol.split] = bad('String split');\n"
        "String.prototype[Symbol.replace] = bad('String replace');"),
    "String.fromCharCode/globalThis.String": ("String.fromCharCode = bad('fromCharCode');\n"
                                              "globalThis.String = bad('String');"),
    "RegExp.prototype.exec/test": replace("RegExp.prototype.exec", "RegExp.prototype.test"),
    "RegExp.prototype[Symbol.replace/split/match]": (
        "for (const s of [Symbol.replace, Symbol.split, Symbol.match, Symbol.matchAll])\n"
        "  DEF(RegExp.prototype, s, { value: bad('RegExp symbol'), configurable: true });"),
    "RegExp.prototype flag getters": getter_throws("RegExp.prototype", "'flags'", "'global'", "'source'",
                                                   "'unicode'", "'sticky'", "'ignoreCase'", "'lastIndex'"),
    "Math.min/max": replace("Math.min", "Math.max"),
    "Symbol.for/keyFor": replace("Symbol.for", "Symbol.keyFor"),
    "delete Symbol": "delete globalThis.Symbol;",
    "Symbol.prototype.description": getter_throws("Symbol.prototype", "'description'"),
    # Collections
    "Map.prototype methods": replace("Map.prototype.set", "Map.prototype.get", "Map.prototype.has",
                                     "Map.prototype.delete", "Map.prototype.forEach", "Map.prototype.entries",
                                     "Map.prototype.keys", "Map.prototype.values")
    + "\n" + getter_throws("Map.prototype", "'size'"),
    "Set.prototype methods": replace("Set.prototype.add", "Set.prototype.has", "Set.prototype.forEach",
                                     "Set.prototype.values", "Set.prototype.delete")
    + "\n" + getter_throws("Set.prototype", "'size'"),
    "WeakMap.prototype methods": replace("WeakMap.prototype.get", "WeakMap.prototype.set",
                                         "WeakMap.prototype.has", "WeakMap.prototype.delete"),
    "globalThis.Map/Set/WeakMap": ("globalThis.Map = bad('Map'); globalThis.Set = bad('Set');\n"
                                   "globalThis.WeakMap = bad('WeakMap');"),
    # Promise
    "Promise.prototype.then": replace("Promise.prototype.then", "Promise.prototype.catch",
                                      "Promise.prototype.finally"),
    "globalThis.Promise": "globalThis.Promise = bad('Promise');",
    "Promise.resolve": replace("Promise.resolve", "Promise.reject"),
    # Dates, numbers, binary
    "Date.prototype.getTime/toISOString": replace("Date.prototype.getTime", "Date.prototype.toISOString",
                                                  "Date.prototype.valueOf", "Date.prototype.toJSON"),
    "BigInt.prototype.toString": replace("BigInt.prototype.toString", "Number.prototype.toString"),
    "TypedArray getters": getter_throws("GPO(Uint8Array.prototype)", "'buffer'",
                                        "'byteOffset'", "'byteLength'", "'length'", "Symbol.toStringTag"),
    "ArrayBuffer/DataView": replace("ArrayBuffer.isView") + "\n"
    + getter_throws("ArrayBuffer.prototype", "'byteLength'"),
    # Errors
    "globalThis error constructors": "\n".join(
        f"globalThis.{c} = bad({c!r});" for c in ["Error", "TypeError", "RangeError", "ReferenceError",
                                                  "SyntaxError", "EvalError", "InternalError", "AggregateError"]),
    "Error.captureStackTrace": replace("Error.captureStackTrace"),
    "Error.prototype accessors": getter_throws("Error.prototype", "'name'", "'message'", "'toString'"),
    # The global itself
    "sealed global": "Object.seal(globalThis);",
    "frozen global": "Object.freeze(globalThis);",
    "frozen prototypes": "\n".join(f"Object.freeze({p});" for p in [
        "Object.prototype", "Array.prototype", "Function.prototype", "String.prototype", "Error.prototype",
        "Promise.prototype", "Map.prototype", "Set.prototype"]),
}
# All of them in one context, one script each, in an order where each can still be
# written: prototype hooks, then replaced iteration, then the globals themselves.
LATE = ["Array.prototype index setters", "Array.prototype index spies", "Object.prototype index accessors",
        "ArrayIterator.next", "Array.prototype[Symbol.iterator]", "Object.prototype accessors",
        "globalThis.eval/Function", "globalThis.Object", "globalThis.Array", "globalThis.Reflect", "globalThis.JSON",
        "String.fromCharCode/globalThis.String", "globalThis.Map/Set/WeakMap", "globalThis.Promise",
        "globalThis error constructors", "delete Symbol"]
SOLO = ["frozen global", "sealed global", "frozen prototypes", "Object.prototype.__proto__ setter"]
POLLUTIONS["everything at once"] = [name for name in POLLUTIONS if name not in LATE + SOLO] + LATE

# A sealed global takes no new properties, a frozen one no changed ones either, in
# JavaScript as in Node: the checks that add or assign globals do not apply there.
SETS_GLOBALS = {"globals_in", "mirror"}
GLOBALS_FIXED = {"frozen global", "sealed global"}


def host_f(*args):
    HOST_CALLS.append(args)
    return {"got": list(args), "back": [JSMap({1: BigInt(2)}), {"__proto__": 3}, -0.0, undefined]}


def host_g():
    raise ValueError("from python")


HOST_CALLS: list = []


def observe_error(exc):
    return (type(exc).__name__, getattr(exc, "name", None), str(exc), getattr(exc, "stack", None),
            getattr(exc, "props", None))


def run(pool, ctx, code, **opts):
    return pool.run_in_context(code, ctx, filename="check.js", timeout=5000, **opts)


IN_VALUE = {"__proto__": 1, "list": [1, [2, [3]]], "map": JSMap({"k": [1]}), "set": JSSet({1, "a"}),
            "when": datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc), "big": BigInt(2 ** 80),
            "bytes": b"\x00\xff", "none": None, "undef": undefined, "neg0": -0.0, "nan": float("nan"),
            "re": JSRegExp("a+", "g"), "typed": JSTypedArray("Int16Array", b"\x01\x00\xff\xff"),
            "\x00": "tag-like key"}


def check_values_out(pool, ctx, d):
    return repr(run(pool, ctx, "OUT"))


def check_globals_in(pool, ctx, d):
    ctx["TARGET"] = IN_VALUE
    ctx["fresh_global"] = [IN_VALUE, IN_VALUE]
    return repr((run(pool, ctx, "TARGET"), run(pool, ctx, "describe(TARGET)"), run(pool, ctx, "fresh_global"),
                 ctx["TARGET"]))


def check_function_args(pool, ctx, d):
    fn = run(pool, ctx, "passThrough")
    return repr((fn(IN_VALUE, [1, 2], "s", BigInt(-3), undefined), run(pool, ctx, "describe")(IN_VALUE)))


def check_errors(pool, ctx, d):
    out = []
    for code in ["thrower('boom')", "\n  thrower('line two')", "OUT[20]", "null.x", "throw OUT[20]"]:
        try:
            out.append(("value", repr(run(pool, ctx, code, line_offset=3))))
        except isolate.IsolateError as exc:
            out.append(observe_error(exc))
    try:
        run(pool, ctx, "thrower")("via call")
    except isolate.IsolateError as exc:
        out.append(observe_error(exc))
    return repr(out)


def check_compile_errors(pool, ctx, d):
    out = []
    for code in ["let = ;", "\n\n  )", "({a: 1"]:
        try:
            run(pool, ctx, code, line_offset=2, column_offset=4)
        except isolate.IsolateError as exc:
            out.append(observe_error(exc))
    return repr(out)


def check_host_calls(pool, ctx, d):
    HOST_CALLS.clear()
    result = run(pool, ctx, "callHost()")
    failing = run(pool, ctx, "callFailingHost()")
    return repr((result, list(HOST_CALLS), failing))


def check_promises(pool, ctx, d):
    p = run(pool, ctx, "later(OUT[10])")
    q = run(pool, ctx, "later(thrower)")  # a function inside: a handle back
    r = run(pool, ctx, "(async () => { await null; thrower('async boom'); })()")
    try:
        r.result()
        rejected = None
    except isolate.IsolateError as exc:
        rejected = observe_error(exc)
    return repr((p.state(), p.result(), q.state(), type(q.result()).__name__, r.state(), rejected))


def check_handles(pool, ctx, d):
    obj = run(pool, ctx, "new Klass()")
    fn = run(pool, ctx, "(function plain(a) { return [a, this === undefined]; })")
    # A plain function crosses as a handle, never as a host-function reference.
    back = run(pool, ctx, "passThrough")(fn)[0]
    seen = run(pool, ctx, "(function (p) { return [typeof p, p.name, p === OUT]; })")(fn)
    return repr((type(obj).__name__, obj["x"], obj["y"], sorted(obj.keys()), fn(5), fn.new(6) is not None,
                 type(back).__name__, back(7), seen))


def check_mirror(pool, ctx, d):
    run(pool, ctx, "MIRROR = [OUT[10], OUT[11]]; globalThis.made = { b: 1 };")
    return repr((d["MIRROR"], d["made"], sorted(k for k in d if k not in ("f", "g"))))


def check_compile_function(pool, ctx, d):
    out = []
    fn = pool.compile_function("return [a, b, typeof OUT]", ["a", "b"], parsing_context=ctx, filename="cf.js")
    out.append(fn(1, "x"))
    with_ext = pool.compile_function("return k + a", ["a"], parsing_context=ctx, filename="cf.js",
                                     context_extensions=[{"k": 40}])
    out.append(with_ext(2))
    for code in ["return }", "}); (function () {", "throw new TE('in body')"]:
        try:
            out.append(repr(pool.compile_function(code, ["a"], parsing_context=ctx, filename="cf.js")()))
        except isolate.IsolateError as exc:
            out.append(observe_error(exc))
    return repr(out)


CHECKS = {
    "values_out": check_values_out,
    "globals_in": check_globals_in,
    "function_args": check_function_args,
    "errors": check_errors,
    "compile_errors": check_compile_errors,
    "host_calls": check_host_calls,
    "promises": check_promises,
    "handles": check_handles,
    "mirror": check_mirror,
    "compile_function": check_compile_function,
}


@pytest.fixture(scope="module")
def pool():
    with isolate.Pool(size=1, spare_workers=0) as p:
        yield p


def new_context(pool, pollution: str | None):
    d = {"f": host_f, "g": host_g}
    ctx = pool.create_context(d)
    pool.run_in_context(SETUP, ctx, filename="setup.js")
    scripts = [] if pollution is None else [POLLUTIONS[p] for p in pollution] if isinstance(pollution, list) \
        else [pollution]
    for js in scripts:
        pool.run_in_context("{\n" + BAD + js + "\n}\n0;", ctx, filename="pollution.js")
    return ctx, d


@pytest.fixture(scope="module")
def clean(pool):
    """Each check's observation in an unpolluted context."""
    out = {}
    for name, check in CHECKS.items():
        ctx, d = new_context(pool, None)
        out[name] = check(pool, ctx, d)
    return out


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("pollution", list(POLLUTIONS))
def test_results_stay_exact_after_pollution(pool, clean, pollution, check):
    if pollution in GLOBALS_FIXED and check in SETS_GLOBALS:
        pytest.skip("a sealed or frozen global takes no new globals (in Node too): see "
                    "test_a_frozen_global_refuses_new_globals_but_the_context_serves")
    ctx, d = new_context(pool, POLLUTIONS[pollution])
    assert CHECKS[check](pool, ctx, d) == clean[check]


@pytest.mark.parametrize("pollution", list(POLLUTIONS))
def test_other_contexts_on_the_worker_are_unaffected(pool, clean, pollution):
    polluted, _ = new_context(pool, POLLUTIONS[pollution])
    other, d = new_context(pool, None)
    assert polluted.worker_pid == other.worker_pid
    for name in ("values_out", "errors", "host_calls"):
        assert CHECKS[name](pool, other, d) == clean[name]


def test_a_frozen_global_refuses_new_globals_but_the_context_serves(pool, clean):
    ctx, d = new_context(pool, POLLUTIONS["frozen global"])
    with pytest.raises(isolate.IsolateError):
        ctx["fresh_global"] = 1
    assert check_values_out(pool, ctx, d) == clean["values_out"]


def test_clean_observations_are_exact(pool):
    """The baseline itself, against hand-written values (so that the matrix compares with truth)."""
    ctx, d = new_context(pool, None)
    out = run(pool, ctx, "OUT")
    assert out[:3] == [1, "a", -0.0] and str(out[2]) == "-0.0"
    assert out[3] != out[3] and out[4] == float("inf") and out[5] is undefined and out[6] is None
    assert out[7] == BigInt(2 ** 70) and out[8] == BigInt(-5) and out[9] is True
    assert out[10] == {"b": [2, None], "__proto__": 7, "\x00": "tag-like key", "nested": {"deep": [[["x"]]]}}
    assert out[11] == JSMap({1: {"x": 2}, "k": JSSet({"s", 3})}) and out[12] == JSSet({1, "two"})
    assert out[13] == datetime.datetime(1970, 1, 2, tzinfo=datetime.timezone.utc)
    assert out[14] == JSRegExp("re[a-z]+", "gi")
    assert out[15] == JSTypedArray("Uint8Array", b"\x01\x02\xff")
    assert out[17] == b"\x00\x00\x00" and out[18].description == "reg" and out[19] == [undefined, 3]
    assert out[20].name == "RangeError" and out[20].message == "bad" and out[20].props == {"code": "E1"}
    assert out[21] is out

    back = run(pool, ctx, "passThrough")(IN_VALUE)[0]
    assert repr(back) == repr(IN_VALUE)  # nan != nan: compare the representation
    assert run(pool, ctx, "describe")(IN_VALUE) == ["object", False, True]  # an own "__proto__" key arrived

    with pytest.raises(isolate.JSError) as info:
        run(pool, ctx, "thrower('boom')", line_offset=3)
    # displayErrors heads it with the line of setup.js that threw, as Node does.
    head, stack = info.value.stack.split("\n\n", 1)
    assert head.startswith("setup.js:14\n") and head.endswith("^")
    assert stack == "TypeError: boom\n    at thrower (setup.js:14:33)\n    at check.js:4:1"

    HOST_CALLS.clear()
    result = run(pool, ctx, "callHost()")
    assert HOST_CALLS == [(1, "two", [3, {"four": BigInt(4)}], JSMap({1: {"x": 2}, "k": JSSet({"s", 3})}),
                           JSSet({1, "two"}), undefined, -0.0)]
    assert result["back"] == [JSMap({1: BigInt(2)}), {"__proto__": 3}, -0.0, undefined]
    failing = run(pool, ctx, "callFailingHost()")
    assert failing.name == "RangeError" and failing.message == "from python"
