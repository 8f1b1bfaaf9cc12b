"""Spec: vm.runInThisContext() compared with eval() (examples/node/run_in_this_context.js).

The script runs in the pool's main context, in a worker process: it cannot see
the Python program's variables, so assigning `localVar` there creates a JS
global and leaves the Python `localVar` alone. Python's own eval() (here at
module level, with an assignment expression) does change it, as JS eval() does
in Node.

Run: python examples/run_in_this_context.py
"""

import isolate
from _nodeprint import log

localVar = "initial value"
vmResult = isolate.run_in_this_context('localVar = "vm";')
log(f"vmResult: '{vmResult}', localVar: '{localVar}'")
# Prints: vmResult: 'vm', localVar: 'initial value'
evalResult = eval('(localVar := "eval")')
log(f"evalResult: '{evalResult}', localVar: '{localVar}'")
# Prints: evalResult: 'eval', localVar: 'eval'
