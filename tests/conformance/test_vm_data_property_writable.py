# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-data-property-writable.js
# Refs: https://github.com/nodejs/node/issues/10223
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

CODE_FOO = """
   Object.defineProperty(this, 'foo', {value: 5});
   Object.getOwnPropertyDescriptor(this, 'foo');
"""
# Check that interceptors work for symbols.
CODE_BAR = """
   const bar = Symbol('bar');
   Object.defineProperty(this, bar, {value: 6});
   Object.getOwnPropertyDescriptor(this, bar);
"""

CASES = [{"id": "descriptors", "api": "runInContext-sequence", "sandbox": {}, "code": [CODE_FOO, CODE_BAR]}]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def test_defined_data_properties_are_not_writable():
    context = isolate.create_context({})
    assert isolate.run_in_context(CODE_FOO, context)["writable"] is False
    assert isolate.run_in_context(CODE_BAR, context)["value"] == 6
