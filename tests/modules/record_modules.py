"""Record Node's outcomes for the module cases (module_cases.py) into node_results.json.

    python tests/modules/record_modules.py

Runs node_runner.js under ``node --experimental-vm-modules`` (needs ``node`` on PATH, v20
here) with the cases as JSON on stdin, and writes for every case the hash of its
definition and Node's description of what happened. Node's outcomes do not depend on
isolate. The output is deterministic: the same Node and the same cases give the same file.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from module_cases import cases_json, load_cases  # noqa: E402

RUNNER = HERE / "node_runner.js"
RESULTS = HERE / "node_results.json"
NODE_TIMEOUT_S = 120
NODE_FLAGS = ["--experimental-vm-modules", "--no-warnings"]


def case_hash(case: dict) -> str:
    """A hash of what a case runs (not of its bookkeeping: xfail, note, source)."""
    semantic = {k: v for k, v in case.items() if k not in ("xfail", "note", "source")}
    blob = json.dumps(semantic, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def run_node(node: str = "node") -> dict:
    """Node's outcomes, live: ``{"node": version, "results": {id: outcome}}``."""
    proc = subprocess.run([node, *NODE_FLAGS, str(RUNNER)], input=cases_json(), capture_output=True,
                          text=True, timeout=NODE_TIMEOUT_S, check=False, cwd=str(HERE))
    if proc.returncode != 0:
        raise RuntimeError(f"node_runner.js failed ({proc.returncode}):\n{proc.stderr}")
    return json.loads(proc.stdout)


def main() -> int:
    node = shutil.which("node")
    if node is None:
        print("record_modules.py: `node` is not on PATH", file=sys.stderr)
        return 1
    live = run_node(node)
    cases = load_cases()
    broken = [c["id"] for c in cases if "runner_error" in live["results"][c["id"]]
              or "timeout" in live["results"][c["id"]]]
    if broken:
        print(f"record_modules.py: node_runner.js could not run {broken}", file=sys.stderr)
        return 1
    recorded = {
        "_doc": "Node's outcomes for tests/modules/module_cases.py, written by record_modules.py. Do not edit by hand.",
        "node": live["node"],
        "cases": {c["id"]: {"hash": case_hash(c), "node": live["results"][c["id"]]} for c in cases},
    }
    RESULTS.write_text(json.dumps(recorded, indent=1, ensure_ascii=True) + "\n", encoding="utf-8")
    print(f"recorded {len(cases)} cases with node {live['node']} in {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
