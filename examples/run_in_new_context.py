"""Spec: vm.runInNewContext() (examples/node/run_in_new_context.js).

Run: python examples/run_in_new_context.py
"""

import isolate
from _nodeprint import log

context_object = {
    "animal": "cat",
    "count": 2,
}
isolate.run_in_new_context('count += 1; name = "kitty"', context_object)
log(context_object)
# Prints: { animal: 'cat', count: 3, name: 'kitty' }
