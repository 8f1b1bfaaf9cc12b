# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-property-not-on-sandbox.js
# (partially inspired by https://github.com/nodejs/node/issues/855)
import pytest

import isolate

pytestmark = pytest.mark.timeout(60)

CODE = """Object.defineProperty(
               this,
               'foo',
               { get: function() {return document.defaultView} }
             );
             var result = foo === this;"""


def test_sandbox_reached_through_a_getter_is_the_global():
    sandbox = {"console": {}}
    sandbox["document"] = {"defaultView": sandbox}
    isolate.create_context(sandbox)
    isolate.run_in_context(CODE, sandbox)
    assert sandbox["result"] is True
