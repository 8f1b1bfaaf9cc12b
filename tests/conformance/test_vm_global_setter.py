# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-global-setter.js
# Regression test for https://github.com/nodejs/node/issues/42962
#
# Node defines accessors and data properties on the contextified object from
# the host, then assigns through the global proxy (`vm.runInContext('this')`)
# from the host. Here the accessors are defined on the global by JS (a dict
# cannot hold them; the setters count their calls in the context, as
# common.mustCall does), and the host assigns through the Context mapping,
# the Python view of the global. The symbol-keyed half runs inside the
# context (Context keys are strings).
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

SETUP = """
var calls = { get: {}, set: {} };
function counted(kind, name, fn) {
  return function(...args) { calls[kind][name] = (calls[kind][name] || 0) + 1; return fn.apply(this, args); };
}
var getSetSymbolReceivingFunction = Symbol('sym-1');
var getSetSymbolReceivingNumber = Symbol('sym-2');
var symbolReceivingNumber = Symbol('sym-3');
var unknownSymbolReceivingNumber = Symbol('sym-4');
function accessor(key, name, value, setter) {
  Object.defineProperty(this, key, {
    get: counted('get', name, () => value),
    set: counted('set', name, setter || (() => {})),
    configurable: true,
  });
}
accessor.call(this, 'getSetPropReceivingFunction', 'f', 42);
accessor.call(this, 'getSetPropReceivingNumber', 'n', 43);
this.propReceivingNumber = 44;
accessor.call(this, getSetSymbolReceivingFunction, 'sf', 46);
accessor.call(this, getSetSymbolReceivingNumber, 'sn', 47);
this[symbolReceivingNumber] = 48;
accessor.call(this, 'getSetPropThrowing', 't', 50, () => { throw new Error('setter called'); });
Object.defineProperty(this, 'nonWritableProp', { value: 51, writable: false });
0
"""

DESCRIPTORS = """
const d = (k) => Object.getOwnPropertyDescriptor(this, k);
const acc = (k) => [typeof d(k).get, typeof d(k).set, d(k).configurable];
[acc('getSetPropReceivingFunction'), acc('getSetPropReceivingNumber'), d('propReceivingNumber').value,
 d('unknownPropReceivingNumber'), acc(getSetSymbolReceivingFunction), acc(getSetSymbolReceivingNumber),
 d(symbolReceivingNumber).value, d(unknownSymbolReceivingNumber), acc('getSetPropThrowing'),
 d('nonWritableProp').value, d('nonWritableProp').writable]
"""

SYMBOL_ASSIGNMENTS = """
this[getSetSymbolReceivingFunction] = () => {};
this[getSetSymbolReceivingNumber] = 147;
this[symbolReceivingNumber] = 148;
this[unknownSymbolReceivingNumber] = 149;
[this[getSetSymbolReceivingFunction], this[getSetSymbolReceivingNumber], this[symbolReceivingNumber],
 this[unknownSymbolReceivingNumber]]
"""

CASES = [{"id": "global_setters_from_inside", "api": "runInContext-sequence", "sandbox": {},
          "compare": ["name", "key_order"],
          "code": [SETUP, DESCRIPTORS,
                   "this.getSetPropReceivingFunction = () => {}; getSetPropReceivingFunction",
                   "this.getSetPropReceivingNumber = 143; getSetPropReceivingNumber",
                   "this.propReceivingNumber = 144; propReceivingNumber",
                   "this.unknownPropReceivingNumber = 145; unknownPropReceivingNumber",
                   SYMBOL_ASSIGNMENTS,
                   "this.getSetPropThrowing = 150", "getSetPropThrowing",
                   "'use strict'; this.nonWritableProp = 151", "nonWritableProp",
                   "JSON.stringify(calls.set)"]}]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def test_assigning_through_the_global_calls_setters():
    ctx = isolate.create_context({})
    isolate.run_in_context(SETUP, ctx)
    assert isolate.run_in_context(DESCRIPTORS, ctx) == [
        ["function", "function", True], ["function", "function", True], 44, isolate.undefined,
        ["function", "function", True], ["function", "function", True], 48, isolate.undefined,
        ["function", "function", True], 51, False]

    # Regression test for GH-42962. This assignment should not throw.
    ctx["getSetPropReceivingFunction"] = lambda: None
    assert ctx["getSetPropReceivingFunction"] == 42

    ctx["getSetPropReceivingNumber"] = 143
    assert ctx["getSetPropReceivingNumber"] == 43

    ctx["propReceivingNumber"] = 144
    assert ctx["propReceivingNumber"] == 144

    ctx["unknownPropReceivingNumber"] = 145
    assert ctx["unknownPropReceivingNumber"] == 145

    assert isolate.run_in_context(SYMBOL_ASSIGNMENTS, ctx) == [46, 47, 148, 149]

    with pytest.raises(isolate.JSError, match="setter called"):
        ctx["getSetPropThrowing"] = 150
    assert ctx["getSetPropThrowing"] == 50

    with pytest.raises(isolate.JSTypeError):
        ctx["nonWritableProp"] = 151
    assert ctx["nonWritableProp"] == 51

    # Each setter was called exactly once (common.mustCall()).
    assert isolate.run_in_context("calls.set", ctx) == {"f": 1, "n": 1, "sf": 1, "sn": 1, "t": 1}
