# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-global-property-prototype.js
#
# Node's sandbox inherits from an "outer" prototype chain (as JSDom's window
# does) and the test checks own-ness, descriptors, `in` and values of own,
# outer-prototype and inner-prototype (the context's Object.prototype)
# properties. A Python dict has no prototype: the outer-prototype
# properties are left out (the "both" ones then come from the inner
# prototype only). The own getter and own indexed property are defined on
# the global by JS (a dict holds only plain data).
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

SETUP = """
Object.defineProperties(this, {
  onSelfGetter: {
    get: function onSelfGetter() {
      return 'onSelfGetter';
    },
  },
  1: {
    value: 'onSelfIndexed',
    writable: false,
    enumerable: false,
    configurable: true,
  }
});
Object.prototype.onInnerProto = 'onInnerProto';
Object.defineProperties(Object.prototype, {
  onInnerProtoGetter: {
    get() {
      return 'onInnerProtoGetter';
    },
  },
  2: {
    value: 'onInnerProtoIndexed',
    writable: false,
    enumerable: false,
    configurable: true,
  },
});
0
"""
# The same without the read-only index on Object.prototype.
SETUP_NO_INNER_INDEX = SETUP.replace("""  2: {
    value: 'onInnerProtoIndexed',
    writable: false,
    enumerable: false,
    configurable: true,
  },
""", "")
# Results are built from objects without prototypes (issue 13), so properties the script put
# on Object.prototype (a read-only index 2, a getter-only `onInnerProtoGetter`) no longer get
# in the way of encoding them: both setups give Node's results.

KEYS = {"oneself": "'oneself'", "onSelfGetter": "'onSelfGetter'", "onSelfIndexed": "1",
        "onInnerProto": "'onInnerProto'", "onInnerProtoGetter": "'onInnerProtoGetter'", "onInnerProtoIndexed": "2"}


def _result_code(expr: str) -> str:
    # An array in KEYS order (an object keyed by these names would collide with the
    # Object.prototype properties under test).
    return "[" + ", ".join(expr.format(k=key) for key in KEYS.values()) + "]"


HAS_OWN = _result_code("Object.hasOwn(this, {k})")
IN = _result_code("{k} in this")
VALUE = _result_code("this[{k}]")
DESC = ("(() => { const d = (p) => { const x = Object.getOwnPropertyDescriptor(this, p);"
        " return x && Object.assign({}, x, x.get ? { get: typeof x.get } : {}); }; return "
        + _result_code("d({k})") + "; })()")

# Both cases leave HAS_OWN out: Node 20 (the recorded one) reports Object.hasOwn(this, 'onInnerProto')
# as true on a contextified global; the upstream test, written with the fix, expects false, as isolate
# gives (checked by the Python tests below).
CASES = [{"id": "prototype_lookups", "api": "runInContext-sequence", "sandbox": {"oneself": "oneself"},
          "code": [SETUP, DESC, IN, VALUE]},
         {"id": "prototype_lookups_no_inner_index", "api": "runInContext-sequence",
          "sandbox": {"oneself": "oneself"}, "code": [SETUP_NO_INNER_INDEX, DESC, IN, VALUE]}]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def test_own_and_inner_prototype_properties():
    _check(SETUP)


def test_own_and_inner_prototype_properties_without_the_inner_index():
    _check(SETUP_NO_INNER_INDEX, inner_index=False)


def _run(code, ctx):
    return dict(zip(KEYS, isolate.run_in_context(code, ctx)))


def _check(setup, inner_index=True):
    ctx = isolate.create_context({"oneself": "oneself"})
    isolate.run_in_context(setup, ctx)
    own = {"oneself": True, "onSelfGetter": True, "onSelfIndexed": True}
    inner = {"onInnerProto": False, "onInnerProtoGetter": False, "onInnerProtoIndexed": False}
    assert _run(HAS_OWN, ctx) == {**own, **inner}
    assert _run(DESC, ctx) == {
        "oneself": {"value": "oneself", "writable": True, "enumerable": True, "configurable": True},
        "onSelfGetter": {"get": "function", "set": isolate.undefined, "enumerable": False, "configurable": False},
        "onSelfIndexed": {"value": "onSelfIndexed", "writable": False, "enumerable": False, "configurable": True},
        # All prototype properties are not own properties.
        "onInnerProto": isolate.undefined,
        "onInnerProtoGetter": isolate.undefined,
        "onInnerProtoIndexed": isolate.undefined,
    }
    # Properties on the inner prototype chain are found by `in`.
    assert _run(IN, ctx) == {**{name: True for name in KEYS}, "onInnerProtoIndexed": inner_index}
    assert _run(VALUE, ctx) == {
        "oneself": "oneself", "onSelfGetter": "onSelfGetter", "onSelfIndexed": "onSelfIndexed",
        "onInnerProto": "onInnerProto", "onInnerProtoGetter": "onInnerProtoGetter",
        "onInnerProtoIndexed": "onInnerProtoIndexed" if inner_index else isolate.undefined,
    }
