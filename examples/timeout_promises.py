"""Spec: "Timeout interactions with asynchronous tasks and Promises" (examples/node/timeout_promises.js).

In Node, by default, a promise job scheduled by the script runs after
runInNewContext() has returned, outside the timeout: the loop escapes it.
In isolate, promise jobs always run inside the call that scheduled them and
inside its timeout, whatever the microtask mode, so the loop is interrupted
in both parts and ScriptTimeoutError (code ERR_SCRIPT_EXECUTION_TIMEOUT) is
raised. This example's output therefore differs from Node's by design; the
expected isolate output is examples/expected/timeout_promises.out.

`loop` is defined in JavaScript inside the context: a Python function runs in
the host process, where a JS timeout cannot interrupt it.

Run: python examples/timeout_promises.py
"""

import isolate
from _nodeprint import log

CODE = """
function loop() {
  console.log('entering loop');
  const end = Date.now() + 500;
  while (Date.now() < end); // the spec: while (1) console.log(Date.now());
  console.log('loop ran for 500 ms: the timeout did not stop it');
}
Promise.resolve().then(() => loop());
"""
console = {"log": log}

# 1. Default microtask mode.
try:
    isolate.run_in_new_context(CODE, {"console": console}, timeout=50)
except isolate.ScriptTimeoutError as err:
    log(f"{err.code}: {err}")
# In Node this is printed *before* 'entering loop'; in isolate, after the timeout.
log("done executing")

# 2. microtask_mode="afterEvaluate": the same in Node and in isolate.
log("-- afterEvaluate --")
try:
    isolate.run_in_new_context(CODE, {"console": console}, timeout=50, microtask_mode="afterEvaluate")
except isolate.ScriptTimeoutError as err:
    log(f"{err.code}: {err}")
log("done executing")
