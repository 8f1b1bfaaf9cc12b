"""Fixtures of the conformance suite (tests ported from Node's test/parallel/test-vm-*.js).

Most ports call the module-level functions (``isolate.run_in_context``...),
which use the default pool, as Node's tests use the one ``vm`` module; the
``pool`` / ``fresh_pool`` fixtures of tests/conftest.py are used where a
test needs a pool of its own.
"""

import sys
from pathlib import Path

import isolate

# The ports import their shared helper (_node.py) and each other's helpers by
# module name, whatever pytest's import mode.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)
