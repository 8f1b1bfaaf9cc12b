"""Spec: dynamic import() with constants.USE_MAIN_CONTEXT_DEFAULT_LOADER (examples/node/default_loader.js).

isolate's default loader reads files (JavaScript modules, and JSON with
``{ type: 'json' }``) relative to the importing script's ``filename``, and never outside a
root directory: here the directory of ``filename`` (``Pool(default_loader_root=...)`` sets
one for the pool). Run: python examples/default_loader.py
"""

import os
import shutil
import tempfile

import isolate
from _nodeprint import log
from isolate import constants

directory = tempfile.mkdtemp(prefix="vm-default-loader-")
with open(os.path.join(directory, "test.mjs"), "w") as f:
    f.write('export const filename = "./test.json";')
with open(os.path.join(directory, "test.json"), "w") as f:
    f.write('{"hello": "world"}')

# Compile a script that loads test.mjs and then test.json
# as if the script is placed in the same directory.
script = isolate.Script(
    """(async function() {
    const { filename } = await import('./test.mjs');
    return import(filename, { with: { type: 'json' } })
  })();""",
    filename=os.path.join(directory, "test-with-default.js"),
    import_module_dynamically=constants.USE_MAIN_CONTEXT_DEFAULT_LOADER)

# { default: { hello: 'world' } }
ns = script.run_in_this_context().result()
log({name: ns[name] for name in ns})
shutil.rmtree(directory)
