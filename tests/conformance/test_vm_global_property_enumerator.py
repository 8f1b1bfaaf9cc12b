# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-global-property-enumerator.js
# Regression of https://github.com/nodejs/node/issues/53346
#
# Node contextifies ten kinds of object (with getters, setters, class
# instances, arrays, prototypes, non-enumerable and symbol keys) and checks
# that Object.keys / getOwnPropertyNames / getOwnPropertySymbols of the
# global match the sandbox's. Python passes dicts only, so the cases kept
# are the two plain-object ones ({} and {key, 1}); the others cannot be
# expressed. Node subtracts its list of intrinsics; here a fresh context's
# own names are.
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

SANDBOXES = [{}, {"key": "value", "1": "value"}]


CASES = [{"id": f"case_{i}_keys", "api": "runInNewContext", "sandbox": sandbox, "code": "Object.keys(this)"}
         for i, sandbox in enumerate(SANDBOXES)]
CASES += [{"id": f"case_{i}_symbols", "api": "runInNewContext", "sandbox": sandbox,
           "code": "Object.getOwnPropertySymbols(this).filter((it) => it !== Symbol.toStringTag)"}
          for i, sandbox in enumerate(SANDBOXES)]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


@pytest.mark.parametrize("sandbox", SANDBOXES, ids=["empty", "key_and_index"])
def test_global_enumerates_the_sandbox(sandbox):
    intrinsics = set(isolate.run_in_new_context("Object.getOwnPropertyNames(this)"))
    ctx = isolate.create_context(dict(sandbox))
    expected = isolate.run_in_new_context("Object.keys(this)", dict(sandbox))  # JS order: indices first
    assert isolate.run_in_context("Object.keys(this)", ctx) == expected
    assert sorted(expected) == sorted(sandbox)
    names = isolate.run_in_context("Object.getOwnPropertyNames(this)", ctx)
    assert [n for n in names if n not in intrinsics] == expected


@pytest.mark.parametrize("sandbox", SANDBOXES, ids=["empty", "key_and_index"])
def test_global_has_only_the_sandboxs_symbols(sandbox):
    ctx = isolate.create_context(dict(sandbox))
    assert isolate.run_in_context(
        "Object.getOwnPropertySymbols(this).filter((it) => it !== Symbol.toStringTag)", ctx) == []
