# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-indexed-properties.js
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

CODE = """Object.defineProperty(this, 99, {
      value: 20,
      enumerable: true
 });"""

CASES = [{"id": "indexed", "api": "runInContext-sequence", "sandbox": {}, "code": [CODE, "this[99]"]}]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def test_indexed_property_reaches_the_sandbox():
    sandbox = {}
    ctx = isolate.create_context(sandbox)
    isolate.run_in_context(CODE, ctx)
    assert sandbox["99"] == 20  # JS property names are strings
