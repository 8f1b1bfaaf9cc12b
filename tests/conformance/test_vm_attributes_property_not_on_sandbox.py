# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-attributes-property-not-on-sandbox.js
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

CODE = """Object.defineProperty(
               this,
               'foo',
               { get: function() {return 17} }
             );
             var desc = Object.getOwnPropertyDescriptor(this, 'foo');"""

CASES = [{"id": "getter_descriptor", "api": "runInContext-sequence", "code": CODE, "sandbox": {}}]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def test_descriptor_of_a_getter_defined_on_the_global():
    sandbox = {}
    isolate.create_context(sandbox)
    isolate.run_in_context(CODE, sandbox)
    assert isinstance(sandbox["desc"]["get"], isolate.JSFunction)
