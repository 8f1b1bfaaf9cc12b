"""Spec: SourceTextModule(code, initialize_import_meta=...) (examples/node/module_import_meta.js).

``initialize_import_meta(meta, module)`` gets a proxy of the module's ``import.meta`` and
sets properties on it. Values set from Python are made in the module's context.
Run: python examples/module_import_meta.py
"""

import isolate
from _nodeprint import log

contextified_object = isolate.create_context({"secret": 42})

# As the spec writes it: the module has no `context`, so it runs in the main context,
# where there is no `secret`.
module = isolate.SourceTextModule(
    "Object.getPrototypeOf(import.meta.prop).secret = secret;",
    initialize_import_meta=lambda meta, module: meta.__setitem__("prop", {}))
module.link(lambda *args: None)
try:
    module.evaluate().result()
except isolate.JSError as e:
    log(f"{e.name}: {e.message}", module.status)


# In the context, with the object made there (the spec's suggested fix), it works.
def initialize_import_meta(meta, module):
    log("initializing import.meta of", module.identifier)
    meta["prop"] = isolate.run_in_context("({})", contextified_object)


in_context = isolate.SourceTextModule(
    "Object.getPrototypeOf(import.meta.prop).secret = secret;",
    context=contextified_object, initialize_import_meta=initialize_import_meta)
in_context.link(lambda *args: None)
in_context.evaluate()
log(isolate.run_in_context("Object.prototype.secret", contextified_object))
