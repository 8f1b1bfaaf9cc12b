"""Spec: script.sourceMapURL (examples/node/script_source_map_url.js).

Run: python examples/script_source_map_url.py
"""

import isolate
from _nodeprint import log

script = isolate.Script("""
function myFunc() {}
//# sourceMappingURL=sourcemap.json
""")
log(script.source_map_url)
# Prints: sourcemap.json
