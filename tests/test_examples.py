"""The examples in examples/ print what Node prints for the spec's originals.

Each examples/<name>.py is run in a subprocess and its stdout compared with
examples/node/<name>.out, the recorded stdout of examples/node/<name>.js under
Node (regenerate with examples/node/record.sh). Where isolate differs from Node
by design, examples/expected/<name>.out holds the expected isolate output
instead (the difference is explained in examples/README.md). When node is on
PATH, the JS originals are re-run to check that the recordings are current;
without node those checks warn and pass on the recorded data.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
NODE_DIR = EXAMPLES / "node"
EXPECTED_DIR = EXAMPLES / "expected"

NAMES = sorted(p.stem for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
RUN_TIMEOUT_S = 50  # below the pytest-timeout marks, so a hang is reported with its output


def _run(argv: list[str]) -> str:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    try:
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT_S)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{' '.join(argv)} did not finish in {RUN_TIMEOUT_S}s; stdout so far:\n{exc.stdout}")
    assert done.returncode == 0, (
        f"{' '.join(argv)} exited with {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}")
    return done.stdout


def _expected(name: str) -> Path:
    override = EXPECTED_DIR / f"{name}.out"
    return override if override.exists() else NODE_DIR / f"{name}.out"


def test_examples_found():
    assert "quickstart" in NAMES and len(NAMES) >= 12, NAMES


@pytest.mark.parametrize("name", NAMES)
def test_every_example_has_its_node_original_and_readme_row(name):
    assert (NODE_DIR / f"{name}.js").exists(), f"examples/node/{name}.js is missing"
    assert (NODE_DIR / f"{name}.out").exists(), f"examples/node/{name}.out is missing: run record.sh"
    readme = (EXAMPLES / "README.md").read_text()
    assert f"python examples/{name}.py" in readme, f"examples/README.md has no row for {name}"


def test_no_stray_node_originals():
    stray = sorted({p.stem for p in NODE_DIR.glob("*.js")} - set(NAMES))
    assert not stray, f"examples/node has originals without a Python example: {stray}"
    unused = sorted({p.stem for p in EXPECTED_DIR.glob("*.out")} - set(NAMES))
    assert not unused, f"examples/expected has outputs of no example: {unused}"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", NAMES)
def test_example_prints_what_node_prints(name):
    out = _run([sys.executable, str(EXAMPLES / f"{name}.py")])
    expected = _expected(name)
    assert out == expected.read_text(), f"stdout of examples/{name}.py differs from {expected.relative_to(ROOT)}"


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", NAMES)
def test_node_recording_is_current(name):
    node = shutil.which("node")
    if node is None:
        warnings.warn(f"node is not on PATH: examples/node/{name}.out not re-checked, "
                      "the recorded output is trusted")
        return
    out = _run([node, str(NODE_DIR / f"{name}.js")])
    assert out == (NODE_DIR / f"{name}.out").read_text(), (
        f"node's output of examples/node/{name}.js no longer matches its recording: "
        "run examples/node/record.sh and review the diff")


# Where the examples differ from Node by design, they differ only where documented.
@pytest.mark.parametrize("name", sorted(p.stem for p in EXPECTED_DIR.glob("*.out")))
def test_documented_differences_are_explained(name):
    readme = (EXAMPLES / "README.md").read_text()
    assert f"expected/{name}.out" in readme
    assert (EXPECTED_DIR / f"{name}.out").read_text() != (NODE_DIR / f"{name}.out").read_text()


@pytest.mark.parametrize("value, shown", [
    ({"animal": "cat", "count": 3, "name": "kitty"}, "{ animal: 'cat', count: 3, name: 'kitty' }"),
    ({}, "{}"),
    ([1, 2.5, -0.0, float("nan")], "[ 1, 2.5, -0, NaN ]"),
    ([True, None, "it's", {"a-b": [[[1]]]}], "[ true, null, \"it's\", { 'a-b': [ [Array] ] } ]"),
    ("top-level strings are bare", "top-level strings are bare"),
    (1e-7, "1e-7"),
    (2.0, "2"),
])
def test_node_format(value, shown):
    sys.path.insert(0, str(EXAMPLES))
    try:
        from _nodeprint import node_format
    finally:
        sys.path.remove(str(EXAMPLES))
    assert node_format(value) == shown
