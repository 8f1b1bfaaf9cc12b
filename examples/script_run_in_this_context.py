"""Spec: script.runInThisContext() (examples/node/script_run_in_this_context.js).

Node's "this context" is the global object of the Node process. isolate has no
JavaScript global in the Python process: run_in_this_context() runs in the
pool's persistent *main context*, which lives in a worker. So `globalVar` is
set there first (Node: `global.globalVar = 0`) and read back from there.

Run: python examples/script_run_in_this_context.py
"""

import isolate
from _nodeprint import log

isolate.run_in_this_context("globalVar = 0")
script = isolate.Script("globalVar += 1", filename="myfile.vm")
for i in range(1000):
    script.run_in_this_context()
log(isolate.run_in_this_context("globalVar"))
# 1000
