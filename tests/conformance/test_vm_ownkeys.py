# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-ownkeys.js
#
# Node's sandbox has a non-enumerable key and symbol keys, set on the host
# object. A dict holds only enumerable string keys, so `a` comes from the
# dict and `b`, sym1 and sym2 are defined on the global by JS first (in
# Node's order); the global's own keys beyond a fresh context's must be
# exactly those.
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

SETUP = """
var sym1 = Symbol('1');
var sym2 = Symbol('2');
this[sym1] = true;
Object.defineProperty(this, 'b', { value: true });
Object.defineProperty(this, sym2, { value: true });
0
"""
NATIVE = "Reflect.ownKeys(this).map(String)"
# The sandbox's keys among the global's own keys, in order (the builtins differ between engines).
OURS = ("Reflect.ownKeys(this).filter((k) => k === 'a' || k === 'b' ||"
        " (typeof k === 'symbol' && (k.description === '1' || k.description === '2'))).map(String)")

CASES = [{"id": "own_keys", "api": "runInContext-sequence", "sandbox": {"a": True}, "code": [SETUP, OURS]}]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def test_own_keys_of_the_global_beyond_a_fresh_context():
    native = isolate.run_in_new_context(NATIVE)
    ctx = isolate.create_context({"a": True})
    isolate.run_in_context(SETUP, ctx)
    own = isolate.run_in_context(NATIVE, ctx)
    rest = [key for key in own if key not in native and key not in ("sym1", "sym2")]
    assert rest == ["a", "b", "Symbol(1)", "Symbol(2)"]
