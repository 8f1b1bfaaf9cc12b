"""Differential checks for the conformance suite: the same JS through isolate and node:vm.

A test module that ports a Node test declares its JS snippets as ``CASES``,
in the case format of ``tests/differential/cases.json`` (``api``, ``code``,
``sandbox``, ``options``... ; run by ``tests/differential/node_runner.js`` in
Node and by ``tests/differential/isolate_runner.py`` here, which this module
imports rather than copies), and gets two tests from :func:`tests`::

    CASES = [{"id": "rinc", "api": "runInNewContext", "code": "x = 1", "sandbox": {}}]
    test_matches_node, test_live_node = _node.tests(__file__, CASES)

``test_matches_node`` always runs: isolate's outcome must equal Node's outcome
recorded in ``node_results.json`` (written by ``record_node.py``). A case may
carry ``"xfail": "reason"`` (isolate deviates; strict), and ``"compare"``
(``"name"``: engine-raised error messages differ between V8 and QuickJS, so
only names are compared; ``"key_order"``). ``test_live_node`` re-runs the
module's cases in the ``node`` on PATH and checks that Node still produces
the recording; without ``node`` it is skipped (the recorded comparison still
ran).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
DIFFERENTIAL = HERE.parent / "differential"
if str(DIFFERENTIAL) not in sys.path:
    sys.path.insert(0, str(DIFFERENTIAL))

from describe import canonical, sort_keys, strip_messages  # noqa: E402
from isolate_runner import run_case  # noqa: E402
from record import RUNNER, case_hash  # noqa: E402

RESULTS = HERE / "node_results.json"
NODE_TIMEOUT_S = 60

_recorded: dict | None = None


def recorded() -> dict:
    """``{module: {case id: {"hash", "node"}}}`` from node_results.json."""
    global _recorded
    if _recorded is None:
        _recorded = json.loads(RESULTS.read_text(encoding="utf-8"))["modules"] if RESULTS.exists() else {}
    return _recorded


def comparable(case: dict, desc: dict) -> dict:
    relax = case.get("compare", [])
    relax = [relax] if isinstance(relax, str) else relax
    desc = canonical(desc)
    if "name" in relax:
        desc = strip_messages(desc)
    if "key_order" in relax:
        desc = sort_keys(desc)
    return desc


def run_node(cases: list[dict], node: str = "node") -> dict:
    """Node's outcome for each case, live: ``{"node": version, "results": {id: outcome}}``."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False, encoding="utf-8") as f:
        json.dump({"cases": cases}, f)
        path = f.name
    try:
        proc = subprocess.run([node, str(RUNNER), path], capture_output=True, text=True,
                              timeout=NODE_TIMEOUT_S, check=False)
    finally:
        Path(path).unlink(missing_ok=True)
    if proc.returncode != 0:
        raise RuntimeError(f"node_runner.js failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout)


def _param(case: dict):
    marks = []
    if case.get("xfail"):
        marks.append(pytest.mark.xfail(strict=True, reason=case["xfail"]))
    return pytest.param(case, id=case["id"], marks=marks)


def tests(test_file: str, cases: list[dict]):
    """The recorded comparison (one test per case) and the live one, for a test module."""
    module = Path(test_file).stem
    ids = [c["id"] for c in cases]
    assert len(set(ids)) == len(ids), f"{module}: case ids must be unique"

    @pytest.mark.parametrize("case", [_param(c) for c in cases])
    def test_matches_node(case):
        entry = recorded().get(module, {}).get(case["id"])
        assert entry is not None and entry["hash"] == case_hash(case), \
            f"{module}::{case['id']} is not recorded or changed: run python tests/conformance/record_node.py"
        assert comparable(case, run_case(case)) == comparable(case, entry["node"])

    @pytest.mark.timeout(NODE_TIMEOUT_S + 30)
    def test_live_node():
        node = shutil.which("node")
        if node is None:
            pytest.skip("node is not on PATH: live node:vm comparison skipped (recorded results were compared)")
        live = run_node(cases, node)["results"]
        stale = [c["id"] for c in cases
                 if comparable(c, live[c["id"]]) != comparable(c, recorded()[module][c["id"]]["node"])]
        assert not stale, f"live node:vm differs from node_results.json for {stale}: re-run record_node.py"

    return test_matches_node, test_live_node
