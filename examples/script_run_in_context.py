"""Spec: script.runInContext() (examples/node/script_run_in_context.js).

Compile once, run ten times in one context. Run: python examples/script_run_in_context.py
"""

import isolate
from _nodeprint import log

context = {
    "animal": "cat",
    "count": 2,
}
script = isolate.Script('count += 1; name = "kitty";')
isolate.create_context(context)
for i in range(10):
    script.run_in_context(context)
log(context)
# Prints: { animal: 'cat', count: 12, name: 'kitty' }
