"""ES module differential tests: every case of module_cases.py through isolate, against node:vm.

Each case runs through isolate (module_runner.py) and its description is compared,
after :func:`normalize`, with Node's, recorded in node_results.json by record_modules.py (so this
runs where node is absent). When ``node`` is on PATH, node_runner.js also runs live once
per session and must still produce the recording; otherwise that test is skipped and says so.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from module_cases import load_cases  # noqa: E402
from module_runner import run_case  # noqa: E402
from record_modules import RESULTS, case_hash, run_node  # noqa: E402

pytestmark = pytest.mark.timeout(60)

CASES = load_cases()
RECORDED = json.loads(RESULTS.read_text(encoding="utf-8"))["cases"]

# Node's ERR_* messages end with ". Received <the value, as JS shows it>"; the value is a
# Python one on isolate's side, so for these only the part before that is compared.
_RECEIVED_CODES = {"ERR_INVALID_ARG_TYPE", "ERR_INVALID_ARG_VALUE", "ERR_OUT_OF_RANGE"}
_MAX_SAFE = 2**53


def _keep_message(err: dict, messages: bool = False) -> str | None:
    message, code = err.get("message"), err.get("code")
    if not isinstance(message, str):
        return None
    if messages and not code:  # the case asks for every message (Node's own words)
        return message
    if isinstance(code, str) and code.startswith("ERR_"):
        return message.split(". Received")[0] if code in _RECEIVED_CODES else message
    if message.startswith("boom"):  # the cases' own messages
        return message
    return None  # the engine's words (V8 vs QuickJS): not compared


def normalize(desc: Any, stacks: bool = False, messages: bool = False) -> Any:
    """What of a description is compared (see the docstring of module_cases.py)."""
    if isinstance(desc, list):
        return [normalize(x, stacks, messages) for x in desc]
    if isinstance(desc, float) and desc.is_integer() and abs(desc) <= _MAX_SAFE:
        return int(desc)
    if not isinstance(desc, dict):
        return desc
    out = {k: normalize(v, stacks, messages) for k, v in desc.items()}
    if desc.get("t") == "error":
        out = {"t": "error", "name": desc.get("name")}
        if "code" in desc:
            out["code"] = desc["code"]
        message = _keep_message(desc, messages)
        if message is not None:
            out["message"] = message
        if "cause" in desc:
            out["cause"] = normalize(desc["cause"], stacks, messages)
        if stacks:
            out["at"] = desc.get("at")
    if "linker_calls" in out:
        out["linker_calls"] = sorted(out["linker_calls"], key=lambda c: json.dumps(c, sort_keys=True))
    return out


def comparable(case: dict, desc: dict) -> Any:
    compare = case.get("compare", [])
    compare = [compare] if isinstance(compare, str) else compare
    return normalize(desc, stacks="stack" in compare, messages="message" in compare)


def differences(actual: Any, expected: Any, path: str = "") -> list[str]:
    """Where two descriptions differ, as readable lines (steps named by index and op)."""
    if isinstance(actual, dict) and isinstance(expected, dict):
        out = []
        for key in list(expected) + [k for k in actual if k not in expected]:
            if key not in actual:
                out.append(f"{path}.{key}: missing in isolate (node: {json.dumps(expected[key])[:300]})")
            elif key not in expected:
                out.append(f"{path}.{key}: only in isolate: {json.dumps(actual[key])[:300]}")
            else:
                out.extend(differences(actual[key], expected[key], f"{path}.{key}"))
        return out
    if isinstance(actual, list) and isinstance(expected, list) and len(actual) == len(expected):
        out = []
        for i, (a, e) in enumerate(zip(actual, expected)):
            label = f"[{i}:{e[0]}]" if path.endswith(".steps") and isinstance(e, list) and e else f"[{i}]"
            out.extend(differences(a, e, path + label))
        return out
    if actual != expected:
        return [f"{path}: isolate {json.dumps(actual)[:400]}\n{' ' * len(path)}  node    {json.dumps(expected)[:400]}"]
    return []


def _param(case: dict):
    marks = [pytest.mark.xfail(strict=True, reason=case["xfail"])] if case.get("xfail") else []
    return pytest.param(case, id=case["id"], marks=marks)


def test_enough_cases():
    assert len(CASES) >= 30
    assert len({c["id"] for c in CASES}) == len(CASES), "case ids must be unique"


def test_recording_is_current():
    """node_results.json was recorded from these cases (re-run record_modules.py otherwise)."""
    stale = [c["id"] for c in CASES if c["id"] not in RECORDED or RECORDED[c["id"]]["hash"] != case_hash(c)]
    extra = sorted(set(RECORDED) - {c["id"] for c in CASES})
    assert not stale and not extra, f"re-run tests/modules/record_modules.py: stale {stale}, no longer cases {extra}"


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_isolate_matches_node(case, pool):
    expected = comparable(case, RECORDED[case["id"]]["node"])
    actual = comparable(case, run_case(case, pool))
    if actual != expected:
        pytest.fail("isolate differs from node:vm:\n" + "\n".join(differences(actual, expected)), pytrace=False)


@pytest.fixture(scope="session")
def live_node_results():
    """node_runner.js run once per session, or None when node is not on PATH."""
    node = shutil.which("node")
    return None if node is None else run_node(node)["results"]


@pytest.mark.timeout(150)
def test_live_node_matches_recording(live_node_results):
    if live_node_results is None:
        pytest.skip("node is not on PATH: the live node:vm comparison was skipped; "
                    "isolate was compared with the recorded node_results.json only")
    mismatched = [
        c["id"] for c in CASES
        if comparable(c, live_node_results[c["id"]]) != comparable(c, RECORDED[c["id"]]["node"])
    ]
    assert not mismatched, f"live node:vm differs from node_results.json for {mismatched}"
