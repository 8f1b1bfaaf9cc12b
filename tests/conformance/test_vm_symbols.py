# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-symbols.js
#
# Node contextifies a class instance (`new Document()`) holding a
# symbol-keyed property read by a prototype method. A dict cannot have a
# prototype or symbol keys (UnencodableValueError), so JS builds the same
# shape on the global; the point kept is that `this` inside the context
# reaches symbol-keyed own properties through an inherited method.
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

SETUP = """
var symbol = Symbol();
Object.setPrototypeOf(this, Object.assign(Object.create(Object.getPrototypeOf(this)), {
  getSymbolValue() { return this[symbol]; }
}));
this[symbol] = 'foo';
0
"""

CASES = [{"id": "symbol_through_prototype_method", "api": "runInContext-sequence", "sandbox": {},
          "code": [SETUP, "this.getSymbolValue()"]}]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def test_symbol_property_read_through_the_global():
    context = isolate.create_context({})
    isolate.run_in_context(SETUP, context)
    assert isolate.run_in_context("this.getSymbolValue()", context) == "foo"


def test_symbol_keys_cannot_be_passed_in_a_dict():
    with pytest.raises(isolate.UnencodableValueError):
        isolate.create_context({isolate.JSSymbol("s"): "foo"})
