"""Spec: "VM (executing JavaScript)", the introductory example (examples/node/intro.js).

Run: python examples/intro.py
"""

import isolate
from _nodeprint import log

x = 1
context = {"x": 2}
isolate.create_context(context)  # Contextify the dict.
code = "x += 40; var y = 17;"
# `x` and `y` are global variables in the context.
# Initially, x has the value 2 because that is the value of context["x"].
isolate.run_in_context(code, context)
log(context["x"])  # 42
log(context["y"])  # 17
log(x)  # 1; y is not defined.
