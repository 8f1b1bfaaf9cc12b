# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-new-script-this-context.js
#
# "This context" is the pool's main context (README); Node's `global.x` is
# read and written through it (isolate.default_pool().main_context).
import pytest

import isolate
from isolate import Script

import _node

pytestmark = pytest.mark.timeout(60)

CASES = [
    {"id": "passed", "api": "Script.runInThisContext-multi", "code": "'passed';", "repeat": 2},
    {"id": "throws", "api": "Script.runInThisContext-multi", "code": "throw new Error('test');", "repeat": 1},
]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


@pytest.fixture
def main():
    ctx = isolate.default_pool().main_context
    yield ctx
    for name in ("hello", "code", "foo", "bar", "obj", "f"):
        if name in ctx:
            del ctx[name]


def test_run_a_string():
    assert Script("'passed';").run_in_this_context() == "passed"


def test_thrown_error():
    with pytest.raises(isolate.JSError) as info:
        Script("throw new Error('test');").run_in_this_context()
    assert str(info.value).splitlines()[0] == "Error: test"  # then "    at file:line:col"


def test_globals(main):
    main["hello"] = 5
    Script("hello = 2").run_in_this_context()
    assert main["hello"] == 2

    # Pass values
    main["code"] = "foo = 1;bar = 2;if (typeof baz !== \"undefined\") throw new Error(\"test fail\");"
    main["foo"] = 2
    main["obj"] = {"foo": 0, "baz": 3}
    Script(main["code"]).run_in_this_context()
    assert main["obj"]["foo"] == 0
    assert main["bar"] == 2
    assert main["foo"] == 1

    # Call a function
    main["f"] = lambda: main.__setitem__("foo", 100)
    Script("f()").run_in_this_context()
    assert main["foo"] == 100
