"""Spec: script.runInNewContext() (examples/node/script_run_in_new_context.js).

One Script, three new contexts. Run: python examples/script_run_in_new_context.py
"""

import isolate
from _nodeprint import log

script = isolate.Script('globalVar = "set"')
contexts = [{}, {}, {}]
for context in contexts:
    script.run_in_new_context(context)
log(contexts)
# Prints: [ { globalVar: 'set' }, { globalVar: 'set' }, { globalVar: 'set' } ]
