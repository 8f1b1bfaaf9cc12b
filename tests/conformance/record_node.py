"""Record Node's outcomes for every conformance module's CASES into node_results.json.

    python tests/conformance/record_node.py

Imports each ``tests/conformance/test_*.py`` (importing runs no JS), runs its
``CASES`` through ``tests/differential/node_runner.js`` with the ``node`` on
PATH, and writes, per module and case, the hash of the case's definition and
Node's outcome. Deterministic: the same Node and the same cases give the
same file.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _node  # noqa: E402


def module_cases() -> dict[str, list[dict]]:
    found = {}
    for path in sorted(HERE.glob("test_*.py")):
        spec = importlib.util.spec_from_file_location(f"_conformance_{path.stem}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        cases = getattr(mod, "CASES", None)
        if cases:
            found[path.stem] = cases
    return found


def main() -> int:
    node = shutil.which("node")
    if node is None:
        print("record_node.py: `node` is not on PATH", file=sys.stderr)
        return 1
    modules = module_cases()
    out, version = {}, None
    for name, cases in modules.items():
        live = _node.run_node(cases, node)
        version = live["node"]
        out[name] = {c["id"]: {"hash": _node.case_hash(c), "node": live["results"][c["id"]]} for c in cases}
    recorded = {
        "_doc": "Node's outcomes for the CASES of tests/conformance/test_*.py, "
                "written by record_node.py. Do not edit by hand.",
        "node": version,
        "modules": out,
    }
    _node.RESULTS.write_text(json.dumps(recorded, indent=1, ensure_ascii=True, sort_keys=True) + "\n",
                             encoding="utf-8")
    total = sum(len(c) for c in modules.values())
    print(f"recorded {total} cases of {len(modules)} modules with node {version} in {_node.RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
