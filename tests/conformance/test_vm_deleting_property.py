# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-deleting-property.js
# Refs: https://github.com/nodejs/node/issues/6287
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

CODE = """
  this.x = 'prop';
  delete this.x;
  Object.getOwnPropertyDescriptor(this, 'x');
"""

CASES = [{"id": "delete_then_describe", "api": "runInContext-sequence", "code": CODE}]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def test_deleted_property_has_no_descriptor():
    context = isolate.create_context()
    assert isolate.run_in_context(CODE, context) is isolate.undefined
