# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-create-and-run-in-context.js
import gc

import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

CASES = [
    {"id": "empty_context", "api": "runInContext-sequence", "code": '"passed";'},
    {"id": "prepopulated_and_updated", "api": "runInContext-sequence",
     "sandbox": {"foo": "bar", "thing": "lala"}, "code": ["foo", "thing", "var foo = 3;", "foo"]},
]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def test_create_and_run():
    context = isolate.create_context()
    assert isolate.run_in_context('"passed";', context) == "passed"
    context = isolate.create_context({"foo": "bar", "thing": "lala"})
    assert context["foo"] == "bar"
    assert context["thing"] == "lala"
    isolate.run_in_context("var foo = 3;", context)
    assert context["foo"] == 3
    assert context["thing"] == "lala"


def test_gh5768_contextified_dict_without_a_reference_to_the_context():
    sandbox = {"x": 1}
    isolate.create_context(sandbox)  # the Context itself is dropped at once
    gc.collect()
    isolate.run_in_context("x = 2", sandbox)
    assert sandbox["x"] == 2
