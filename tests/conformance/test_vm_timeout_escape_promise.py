# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-timeout-escape-promise.js
# https://github.com/nodejs/node/issues/3020: promises used to escape the timeout.
#
# Node's `loop` is a host function that busy-waits (and throws after 2 s if
# it escaped); isolate runs host functions in the host, where a busy loop
# past the timeout is abandoned rather than interrupted (README), so the
# loop is JS here. What is checked is the same: a loop reached both from the
# script and from a promise job ends with the timeout.
import pytest

import isolate

import _node

pytestmark = pytest.mark.timeout(60)

LOOP = "function loop() { while (1) {} }\n"
CODE = LOOP + "Promise.resolve().then(() => loop()); loop();"

# Node's test uses 5 ms; on a loaded machine Node itself then sometimes times out
# before the script ran (its sandbox has no `loop`), so the comparison uses 50 ms.
CASES = [{"id": "escape_promise", "api": "runInNewContext", "sandbox": {}, "code": CODE,
          "options": {"timeout": 50, "microtaskMode": "afterEvaluate"}}]

test_matches_node, test_live_node = _node.tests(__file__, CASES)


def test_promise_does_not_escape_the_timeout():
    with pytest.raises(isolate.ScriptTimeoutError) as info:
        isolate.run_in_new_context(CODE, {}, {"timeout": 5, "microtaskMode": "afterEvaluate"})
    assert info.value.code == "ERR_SCRIPT_EXECUTION_TIMEOUT"
    assert str(info.value) == "Script execution timed out after 5ms"
