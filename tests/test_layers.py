"""The host package's layers hold: no module imports one above it, so isolate/ has no cycles.

The contract is in pyproject.toml ([tool.importlinter]); import-linter builds
the real import graph (function-level imports included, type-checking-only
imports excluded) and checks it. It runs in a process of its own: it
reconfigures logging (disabling every logger that exists), which must not
leak into the other tests.
"""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.timeout(120)
def test_isolate_has_layers_and_no_import_cycles():
    proc = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports; "
                               "sys.exit(lint_imports(no_cache=True))"],
        cwd=REPO, capture_output=True, text=True, timeout=100)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "KEPT" in proc.stdout and "BROKEN" not in proc.stdout
