"""Spec: vm.runInContext() (examples/node/run_in_context.js).

Run: python examples/run_in_context.py
"""

import isolate
from _nodeprint import log

context_object = {"globalVar": 1}
isolate.create_context(context_object)
for i in range(10):
    isolate.run_in_context("globalVar *= 2;", context_object)
log(context_object)
# Prints: { globalVar: 1024 }
