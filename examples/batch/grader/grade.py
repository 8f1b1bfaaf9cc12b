#!/usr/bin/env python3
"""Grade JavaScript submissions against test cases, each run sandboxed with a timeout and a memory cap.

    python examples/batch/grader/grade.py [--timeout MS] [--memory-limit SIZE] [--workers N]

The problem: ``solve(nums)`` returns the length of the longest strictly
increasing subsequence of ``nums``. Every file in ``submissions/`` defines
``solve``; every case in ``cases.json`` has an ``input`` and the
``expected`` answer. Each (submission, case) pair runs in a fresh context on
an :class:`isolate.Pool` through ``Pool.run_batch``: a submission that loops
forever is stopped at the timeout, one that allocates without bound at the
memory limit, and neither disturbs the other runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import isolate

HERE = Path(__file__).resolve().parent
VERDICTS = {  # run status -> (mark, verdict)
    "ok": (".", "passed"),
    "wrong": ("x", "wrong answer"),
    "error": ("E", "runtime error"),
    "timeout": ("T", "time limit exceeded"),
    "memory": ("M", "memory limit exceeded"),
    "crashed": ("C", "crashed"),
    "invalid": ("?", "invalid job"),
}


def grade(pool: isolate.Pool, submission: Path, cases: list[dict], timeout: int, memory_limit: str) -> dict:
    """Run one submission on every case; return {case name: (mark, record)}."""
    source = submission.read_text(encoding="utf-8")
    # The appended call is on a line of its own: the submission's line numbers stay as they are.
    code = source + "\n;solve(input);\n"
    jobs = ({"id": case["name"], "code": code, "context": {"input": case["input"]}} for case in cases)
    expected = {case["name"]: case["expected"] for case in cases}
    results = {}
    for record in pool.run_batch(jobs, timeout=timeout, memory_limit=memory_limit,
                                 filename=f"submissions/{submission.name}"):
        status = record["status"]
        if status == "ok" and record["value"] != expected[record["id"]]:
            status = "wrong"
        results[record["id"]] = (status, record)
    return results


def detail(status: str, record: dict, case: dict) -> str:
    if status == "wrong":
        return f"got {json.dumps(isolate.batch.jsonable(record['value']))}, expected {case['expected']}"
    error = record.get("error") or {}
    if status == "error":
        return f"{error.get('name')}: {error.get('message')}"
    return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--timeout", type=int, default=1000, help="per run, in ms (default 1000)")
    parser.add_argument("--memory-limit", default="64MB", help="per run (default 64MB)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--submissions", type=Path, default=HERE / "submissions")
    parser.add_argument("--cases", type=Path, default=HERE / "cases.json")
    args = parser.parse_args()

    cases = json.loads(args.cases.read_text(encoding="utf-8"))
    submissions = sorted(args.submissions.glob("*.js"))
    print(f"Longest increasing subsequence: {len(submissions)} submissions x {len(cases)} tests, "
          f"timeout {args.timeout} ms, memory limit {args.memory_limit}, {args.workers} workers")
    print()
    print(f"{'submission':<12} {'score':>6}  {'tests':<{len(cases)}}  verdict")
    started = time.monotonic()
    runs = 0
    # The worker cap is a backstop behind the per-run limit: a worker whose
    # RSS passes it is killed and replaced, and only its run fails.
    with isolate.Pool(size=args.workers, worker_memory_limit="1GB") as pool:
        for submission in submissions:
            results = grade(pool, submission, cases, args.timeout, args.memory_limit)
            runs += len(results)
            marks = "".join(VERDICTS[results[c["name"]][0]][0] for c in cases)
            passed = sum(1 for c in cases if results[c["name"]][0] == "ok")
            failures: dict[str, list[str]] = {}
            for case in cases:
                status, record = results[case["name"]]
                if status != "ok":
                    failures.setdefault(status, []).append(case["name"])
            if not failures:
                verdict = "accepted"
            else:
                parts = []
                for status, names in failures.items():
                    first = next(c for c in cases if c["name"] == names[0])
                    why = detail(status, results[names[0]][1], first)
                    parts.append(f"{VERDICTS[status][1]} on {', '.join(names)}" + (f" ({why})" if why else ""))
                verdict = "; ".join(parts)
            print(f"{submission.name:<12} {passed:>3}/{len(cases):<2}  {marks}  {verdict}")
    elapsed = time.monotonic() - started
    print()
    print("legend: " + "  ".join(f"{mark} {name}" for mark, name in VERDICTS.values() if mark != "?"))
    print(f"graded {runs} runs in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
