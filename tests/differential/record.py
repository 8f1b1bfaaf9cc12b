"""Record Node's outputs for cases.json into node_results.json.

    python tests/differential/record.py

Runs node_runner.js (needs ``node`` on PATH) and writes, for every case, the
hash of its definition and Node's description of what happened. The output
is deterministic: the same Node and the same cases give the same file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CASES = HERE / "cases.json"
RUNNER = HERE / "node_runner.js"
RESULTS = HERE / "node_results.json"
NODE_TIMEOUT_S = 120


def load_cases() -> list[dict]:
    return json.loads(CASES.read_text(encoding="utf-8"))["cases"]


def case_hash(case: dict) -> str:
    """A hash of what a case runs (not of its bookkeeping: compare, xfail, source, note)."""
    semantic = {k: v for k, v in case.items() if k not in ("compare", "xfail", "source", "note")}
    blob = json.dumps(semantic, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run_node(node: str = "node") -> dict:
    """Node's outputs, live: ``{"node": version, "results": {id: outcome}}``."""
    proc = subprocess.run([node, str(RUNNER), str(CASES)], capture_output=True, text=True,
                          timeout=NODE_TIMEOUT_S, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"node_runner.js failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout)


def main() -> int:
    node = shutil.which("node")
    if node is None:
        print("record.py: `node` is not on PATH", file=sys.stderr)
        return 1
    live = run_node(node)
    cases = load_cases()
    recorded = {
        "_doc": "Node's outputs for cases.json, written by record.py. Do not edit by hand.",
        "node": live["node"],
        "cases": {c["id"]: {"hash": case_hash(c), "node": live["results"][c["id"]]} for c in cases},
    }
    RESULTS.write_text(json.dumps(recorded, indent=1, ensure_ascii=True) + "\n", encoding="utf-8")
    print(f"recorded {len(cases)} cases with node {live['node']} in {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
