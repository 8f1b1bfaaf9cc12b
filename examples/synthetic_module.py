"""Spec: vm.SyntheticModule (examples/node/synthetic_module.js).

A JSON source exposed as a module, and set_export. The evaluate callback runs when the
module is evaluated; it is given the module when it takes an argument (Node passes it as
``this``). Run: python examples/synthetic_module.py
"""

import json

import isolate
from _nodeprint import log

# A JSON source exposed as a module with a default export, used by another module.
source = '{ "a": 1 }'


def evaluate(module):
    obj = json.loads(source)
    module.set_export("default", obj)


module = isolate.SyntheticModule(["default"], evaluate)
user = isolate.SourceTextModule("import data from 'data.json'; export const doubled = data.a * 2;")


def linker(specifier, referencing_module, extra):
    if specifier == "data.json":
        return module
    raise Exception(f"Unable to resolve dependency: {specifier}")


user.link(linker)
user.evaluate()
log(module.namespace["default"], user.namespace.doubled)

# set_export needs the module linked; the exports are live for importers.
m = isolate.SyntheticModule(["x"], lambda: m.set_export("x", 1))
try:
    m.set_export("x", 0)
except isolate.IsolateError as e:
    log(e.code)
m.link(lambda *args: None)
m.evaluate()
assert m.namespace.x == 1
m.set_export("x", 2)
log(m.namespace.x, m.status)
