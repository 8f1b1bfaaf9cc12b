"""Spec: vm.createContext() (examples/node/create_context.js).

Node's `global.globalVar` is a global of the Node process; its isolate
counterpart is the pool's main context (where run_in_this_context() runs).
A new context does not see or change it.

Run: python examples/create_context.py
"""

import isolate
from _nodeprint import log

isolate.run_in_this_context("globalVar = 3")
context = {"globalVar": 1}
isolate.create_context(context)
isolate.run_in_context("globalVar *= 2;", context)
log(context)
# Prints: { globalVar: 2 }
log(isolate.run_in_this_context("globalVar"))
# Prints: 3
