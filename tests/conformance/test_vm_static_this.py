# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-static-this.js
#
# "This context" is the pool's main context (README); Node's `global.x` is
# read and written through it (isolate.default_pool().main_context).
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

CASES = [
    {"id": "passed", "api": "runInThisContext", "code": "'passed';"},
    {"id": "throws", "api": "runInThisContext", "code": "throw new Error('test');"},
]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


@pytest.fixture
def main():
    ctx = isolate.default_pool().main_context
    yield ctx
    for name in ("hello", "foo", "bar", "obj", "f"):
        if name in ctx:
            del ctx[name]


def test_run_in_this_context(main):
    assert isolate.run_in_this_context("'passed';") == "passed"
    with pytest.raises(isolate.JSError, match="test"):
        isolate.run_in_this_context("throw new Error('test');")

    main["hello"] = 5
    isolate.run_in_this_context("hello = 2")
    assert main["hello"] == 2

    # Pass values
    code = "foo = 1;bar = 2;if (typeof baz !== 'undefined')throw new Error('test fail');"
    main["foo"] = 2
    main["obj"] = {"foo": 0, "baz": 3}
    isolate.run_in_this_context(code)
    assert main["obj"]["foo"] == 0
    assert main["bar"] == 2
    assert main["foo"] == 1

    # Call a function
    main["f"] = lambda: main.__setitem__("foo", 100)
    isolate.run_in_this_context("f()")
    assert main["foo"] == 100
