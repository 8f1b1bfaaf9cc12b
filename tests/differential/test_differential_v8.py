"""The differential cases (cases.json) on Pool(engine="v8"), against the same Node recording.

The module-level functions the runner calls use the default pool: for this module
it is a V8 pool. Cases compare as on QuickJS (with their own relaxations), and
the cases marked xfail there fail here for the same host-side reasons (the value
table, the mirror's accessors). Where QuickJS needs a relaxation only because it
words errors differently, V8 must match Node exactly (V8_EXACT). Skipped when
the `v8` extra is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from describe import canonical  # noqa: E402
from isolate_runner import run_case  # noqa: E402
from record import RESULTS, load_cases  # noqa: E402
from test_differential import comparable  # noqa: E402

pytestmark = [pytest.mark.timeout(30),
              pytest.mark.skipif(importlib.util.find_spec("STPyV8") is None,
                                 reason="the v8 extra is not installed (pip install 'isolate-vm[v8]')")]

CASES = load_cases()
RECORDED = json.loads(RESULTS.read_text(encoding="utf-8"))["cases"]

# Cases relaxed for QuickJS ("compare": "name": engine-raised errors worded differently)
# that V8 words exactly as Node does: compared strictly here.
V8_EXACT = ["engine_type_error_property_of_undefined", "engine_type_error_not_a_function",
            "engine_range_error_array_length", "engine_syntax_error", "engine_syntax_error_in_eval",
            "engine_uri_error", "engine_bigint_mixing", "strict_with_is_syntax_error",
            "compile_fn_body_closes_wrapper"]


@pytest.fixture(scope="module", autouse=True)
def v8_default_pool():
    if importlib.util.find_spec("STPyV8") is None:
        yield None
        return
    from isolate import Pool, defaults

    with defaults._lock:
        previous = defaults._default
        defaults._default = pool = Pool(2, engine="v8")
    try:
        yield pool
    finally:
        with defaults._lock:
            defaults._default = previous
        pool.close()


# Cases that differ on V8 only, with the reason (README, "Engines").
V8_XFAIL = {
    "error_nested_timeout_as_js_sees_it":
        "binding: a nested call's timeout stops the calling script too (V8's termination unwinds every "
        "script on the thread and STPyV8 exposes no CancelTerminateExecution), so JS cannot catch it; "
        "the outer call fails with the nested call's ScriptTimeoutError",
}


def _param(case: dict):
    marks = []
    reason = case.get("xfail") or V8_XFAIL.get(case["id"])
    if reason:
        marks.append(pytest.mark.xfail(strict=True, reason=reason))
    return pytest.param(case, id=case["id"], marks=marks)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_v8_matches_node(case):
    expected = RECORDED[case["id"]]["node"]
    actual = run_case(case)
    assert comparable(case, actual) == comparable(case, expected)


@pytest.mark.parametrize("case_id", V8_EXACT)
def test_v8_words_errors_as_node(case_id):
    case = next(c for c in CASES if c["id"] == case_id)
    assert canonical(run_case(case)) == canonical(RECORDED[case_id]["node"])
