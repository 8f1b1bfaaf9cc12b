# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-proxy-sandbox-property-query.js
#
# Own properties defined on the global answer every query alike: descriptor,
# getOwnPropertyNames, hasOwnProperty, Object.hasOwn, `in`, Reflect.has,
# Object.keys and propertyIsEnumerable. Node's sandbox is an empty-handler
# Proxy, which forwards everything to its target: for these queries it is a
# plain object, so the sandbox here is a dict (create_context takes a dict;
# test-vm-set-property-proxy.js in NOT_PORTED.md says why JS Proxies are not
# sandboxes here).
#
# The node on PATH (v20) answers `Object.hasOwn(globalThis, 'toString')`
# true for a sandbox that inherits toString (its query interceptor reports
# the sandbox's inherited properties as own); Node's main branch asserts
# false, as isolate answers. The recorded comparison leaves that one query
# out; the test below asserts all of Node's test.
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

DEFINE = """
Object.defineProperty(this, 'foo', { value: 42, writable: true, enumerable: true, configurable: true });
Object.defineProperty(this, 'hidden', { value: 1, enumerable: false, configurable: true });
Object.defineProperty(this, 'readonly', { value: 2, writable: false, enumerable: true, configurable: true });
0
"""

QUERY_AS_V20 = """({
  value: foo,
  descriptor: { ...Object.getOwnPropertyDescriptor(globalThis, 'foo') },
  ownNamesIncludes: Object.getOwnPropertyNames(globalThis).includes('foo'),
  hasOwnProperty: Object.prototype.hasOwnProperty.call(globalThis, 'foo'),
  objectHasOwn: Object.hasOwn(globalThis, 'foo'),
  inGlobalThis: 'foo' in globalThis,
  reflectHas: Reflect.has(globalThis, 'foo'),
  keysIncludesFoo: Object.keys(globalThis).includes('foo'),
  keysIncludesHidden: Object.keys(globalThis).includes('hidden'),
  hiddenIsEnumerable: Object.prototype.propertyIsEnumerable.call(globalThis, 'hidden'),
  readonlyDescriptor: { ...Object.getOwnPropertyDescriptor(globalThis, 'readonly') },
  toStringInGlobalThis: 'toString' in globalThis,
})"""

QUERY = QUERY_AS_V20[:-2] + "  hasOwnToString: Object.hasOwn(globalThis, 'toString'),\n})"

CASES = [{"id": "property_queries", "api": "runInContext-sequence", "sandbox": {}, "compare": "key_order",
          "code": [DEFINE, QUERY_AS_V20]}]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def test_own_properties_answer_every_query_alike():
    sandbox: dict = {}
    ctx = isolate.create_context(sandbox)
    isolate.run_in_context(DEFINE, ctx)
    result = isolate.run_in_context(QUERY, ctx)
    assert result["value"] == 42
    assert result["descriptor"] == {"value": 42, "writable": True, "enumerable": True, "configurable": True}
    for key in ("ownNamesIncludes", "hasOwnProperty", "objectHasOwn", "inGlobalThis", "reflectHas",
                "keysIncludesFoo", "toStringInGlobalThis"):
        assert result[key] is True, key
    for key in ("keysIncludesHidden", "hiddenIsEnumerable", "hasOwnToString"):
        assert result[key] is False, key
    assert result["readonlyDescriptor"] == {"value": 2, "writable": False, "enumerable": True, "configurable": True}
    # The sandbox dict mirrors the enumerable ones.
    assert sandbox == {"foo": 42, "readonly": 2}
