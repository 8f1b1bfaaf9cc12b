"""Spec: dynamic import() in compilation APIs, with a callback (examples/node/dynamic_import.js).

``import_module_dynamically(specifier, referrer, attributes)`` returns a Module (or an
awaitable of one, as here). Run: python examples/dynamic_import.py
"""

import isolate
from _nodeprint import log


async def import_module_dynamically(specifier, referrer, import_attributes):
    log(specifier)  # 'foo.json'
    log(referrer is script)  # The compiled script
    log(import_attributes)  # { type: 'json' }
    m = isolate.SyntheticModule(["bar"], lambda: None)
    await m.link(lambda *args: None)
    m.set_export("bar", {"hello": "world"})
    return m


script = isolate.Script('import("foo.json", { with: { type: "json" } })',
                        import_module_dynamically=import_module_dynamically)
result = script.run_in_this_context().result()  # the promise import() returned, settled
log({name: result[name] for name in result})  # { bar: { hello: 'world' } }

# Without import_module_dynamically, import() rejects.
try:
    isolate.Script('import("foo.json")').run_in_this_context().result()
except isolate.JSError as e:
    log(e.props["code"])  # the JS error's own code (e.code is isolate's: ERR_JS_EXCEPTION)
