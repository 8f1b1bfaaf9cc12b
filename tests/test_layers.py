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


def _imports(path):
    """(level, module) of every import statement in ``path`` (function-level ones too)."""
    import ast

    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            yield node.level, node.module or ""
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield 0, alias.name


def _files(folder):
    import glob

    return sorted(glob.glob(os.path.join(REPO, folder, "*.py")))


@pytest.mark.timeout(60)
def test_the_three_folders_import_downwards_only():
    # import-linter sees isolate/ only: the folders installed as isolate.workers and
    # isolate.protocol (package-dir) are checked here, statement by statement.
    problems = []
    for path in _files("protocol"):
        for level, module in _imports(path):
            if level > 1 or (level == 0 and module.split(".")[0] in ("isolate", "workers", "protocol")):
                problems.append((path, level, module))
    for path in _files("workers"):
        for level, module in _imports(path):
            outside = level >= 2 and module.split(".")[0] != "protocol"
            host = level == 0 and module.split(".")[0] in ("isolate", "workers", "protocol") and \
                not module.startswith(("isolate.workers", "isolate.protocol"))  # itself, as the zygote script
            if outside or level > 2 or host:
                problems.append((path, level, module))
    for path in _files("isolate"):
        for level, module in _imports(path):
            if (level == 1 and module.split(".")[0] == "workers") or module.startswith("isolate.workers"):
                problems.append((path, level, module))
    assert not problems, problems
