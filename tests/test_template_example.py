"""examples/templates/render.py: a template engine with host callables, run as a user would."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "templates"


@pytest.mark.timeout(60)
def test_template_example_prints_what_it_documents(tmp_path):
    done = subprocess.run([sys.executable, str(EXAMPLE / "render.py")], capture_output=True, text=True,
                          timeout=50, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout == (EXAMPLE / "expected.out").read_text()
    # What the example is about: the template line, the host frame, the Python cause.
    assert "    at pages/receipt.tpl:2:40\n" in done.stdout
    assert "    at customer (<host>)\n" in done.stdout
    assert "caused by the Python KeyError: 'c-404' (in customer())" in done.stdout
