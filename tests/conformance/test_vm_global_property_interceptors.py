# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-global-property-interceptors.js
#
# Node gives the sandbox properties with every combination of attributes
# (Object.defineProperties on the host object) before contextifying it. A
# dict holds only plain enumerable data, so `a` comes from the dict and the
# others are defined on the global by JS first; what the context then
# observes is compared with Node running the same JS. Reads of the sandbox
# from the host (`ctx.k`, `ctx.encodeURI`) go through the Context mapping,
# and the dict mirror shows what is enumerable.
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

SETUP = """
var dSymbol = Symbol('d');
Object.defineProperties(this, {
  b: { value: 'b' },
  c: { value: 'c', writable: true, enumerable: true },
  [dSymbol]: { value: 'd' },
  e: { value: 'e', configurable: true },
  f: {}
});
0
"""

DESCRIPTORS = """
const getDesc = (prop) => Object.getOwnPropertyDescriptor(this, prop);
const result = {
  a: getDesc('a'),
  b: getDesc('b'),
  c: getDesc('c'),
  d: getDesc(dSymbol),
  e: getDesc('e'),
  f: getDesc('f'),
  g: getDesc('g')
};
result;
"""

DEFINE_NEW = """
Object.defineProperty(this, 'h', {value: 'h'});
Object.defineProperty(this, 'i', {});
Object.defineProperty(this, 'j', {
  get() { return 'j'; }
});
let kValue = 0;
Object.defineProperty(this, 'k', {
  get() { return kValue; },
  set(value) { kValue = value }
});
0
"""

NEW_DESCRIPTORS = """
const d = (p) => Object.getOwnPropertyDescriptor(this, p);
[d('h'), d('i'), typeof d('j').get, typeof d('j').set, d('j').enumerable, d('j').configurable,
 typeof d('k').get, typeof d('k').set, d('k').enumerable, d('k').configurable]
"""

CASES = [{"id": "interceptors", "api": "runInContext-sequence", "sandbox": {"a": "a"}, "compare": "name",
          "code": [SETUP, DESCRIPTORS, DEFINE_NEW, NEW_DESCRIPTORS,
                   "k;", "k = 2;", "k;",
                   "typeof encodeURI;", "Object.defineProperty(this, 'encodeURI', { value: 42 }); 0",
                   "encodeURI;",
                   "Object.defineProperty(this, 'e', { value: 'newE' }); e",
                   "'use strict';\nObject.defineProperty(this, 'f', { value: 'newF' });"]}]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def _desc(value, writable, enumerable, configurable):
    return {"value": value, "writable": writable, "enumerable": enumerable, "configurable": configurable}


def test_interceptors():
    sandbox = {"a": "a"}
    ctx = isolate.create_context(sandbox)
    isolate.run_in_context(SETUP, ctx)
    result = isolate.run_in_context(DESCRIPTORS, ctx)
    assert result == {
        "a": _desc("a", True, True, True),
        "b": _desc("b", False, False, False),
        "c": _desc("c", True, True, False),
        "d": _desc("d", False, False, False),
        "e": _desc("e", False, False, True),
        "f": _desc(isolate.undefined, False, False, False),
        "g": isolate.undefined,
    }

    # Define new properties
    isolate.run_in_context(DEFINE_NEW, ctx)
    (h, i, j_get, j_set, j_enum, j_conf, k_get, k_set, k_enum, k_conf) = \
        isolate.run_in_context(NEW_DESCRIPTORS, ctx)
    assert h == _desc("h", False, False, False)
    assert i == _desc(isolate.undefined, False, False, False)
    assert (j_get, j_set, j_enum, j_conf) == ("function", "undefined", False, False)
    assert (k_get, k_set, k_enum, k_conf) == ("function", "function", False, False)

    assert ctx["k"] == 0
    ctx["k"] = 1
    assert ctx["k"] == 1
    assert isolate.run_in_context("k;", ctx) == 1
    isolate.run_in_context("k = 2;", ctx)
    assert ctx["k"] == 2
    assert isolate.run_in_context("k;", ctx) == 2

    # Redefine properties on the global object
    assert isolate.run_in_context("typeof encodeURI;", ctx) == "function"
    assert "encodeURI" not in sandbox  # a builtin, not a property of the sandbox
    isolate.run_in_context("Object.defineProperty(this, 'encodeURI', { value: 42 });", ctx)
    assert isolate.run_in_context("encodeURI;", ctx) == 42
    assert ctx["encodeURI"] == 42

    # Redefine properties on the sandbox
    isolate.run_in_context("Object.defineProperty(this, 'e', { value: 'newE' });", ctx)
    assert ctx["e"] == "newE"

    with pytest.raises(isolate.JSTypeError):
        isolate.run_in_context("'use strict';\nObject.defineProperty(this, 'f', { value: 'newF' });", ctx)
