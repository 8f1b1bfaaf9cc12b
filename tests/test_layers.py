"""The host package's layers hold: no module imports one above it, so isolate/ has no cycles.

The contract is in pyproject.toml ([tool.importlinter]); import-linter builds
the real import graph (function-level imports included, type-checking-only
imports excluded) and checks it.
"""

import os

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.timeout(120)
def test_isolate_has_layers_and_no_import_cycles(monkeypatch, capsys):
    from importlinter.cli import lint_imports

    monkeypatch.chdir(REPO)
    code = lint_imports(config_filename=os.path.join(REPO, "pyproject.toml"), no_cache=True)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "BROKEN" not in out and "KEPT" in out
