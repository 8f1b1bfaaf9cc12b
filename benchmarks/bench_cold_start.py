"""6. Cold start: a new process that evaluates ``1+1`` once and prints it, wall time.

- isolate: ``python -c "import isolate; print(isolate.run_in_new_context('1+1'))"``
  (imports, starts the default pool — one worker per CPU plus the warm spare —
  runs the call, closes the pool at exit).
- Node: ``node -e "const vm=require('vm'); console.log(vm.runInNewContext('1+1'))"``.
- For scale: ``python -c "import isolate"``, ``python -c "pass"``, and
  ``python -c "import dukpy; print(dukpy.evaljs('1+1'))"`` (in-process dukpy).

Runs are interleaved (one of each per round); the median of each is reported.
isolate's own modules are byte-compiled first, as installing its wheel does (pip
compiles every module): an editable install in an environment that sets
PYTHONDONTWRITEBYTECODE (this one does) would otherwise compile them on every
start (~40 ms), which no installed copy pays.
"""

from __future__ import annotations

import subprocess
import sys
import time

from .harness import interleave, node_path, percentile

SECTION = "Cold start"
ISOLATE = "python -c \"import isolate; print(isolate.run_in_new_context('1+1'))\""
NODE = "node -e \"const vm=require('vm'); console.log(vm.runInNewContext('1+1'))\""


def _timed(argv, expect="2"):
    def run(n):
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            proc = subprocess.run(argv, capture_output=True, text=True, cwd="/")
            out.append((time.perf_counter() - t0) * 1e3)
            if proc.returncode != 0 or (expect is not None and proc.stdout.strip() != expect):
                raise RuntimeError(f"{argv!r} failed: {proc.stdout!r} {proc.stderr[-1000:]!r}")
        return out
    return run


def _byte_compile() -> None:
    """What installing the wheel does: every module of isolate's packages compiled."""
    import compileall

    import isolate
    import isolate.protocol
    import isolate.workers

    for package in (isolate, isolate.protocol, isolate.workers):
        for directory in package.__path__:
            compileall.compile_dir(directory, quiet=1)


def run(suite):
    py = sys.executable
    _byte_compile()
    variants = {
        ISOLATE: _timed([py, "-c", "import isolate; print(isolate.run_in_new_context('1+1'))"]),
        "python -c \"import isolate\" (import only)": _timed([py, "-c", "import isolate"], expect=None),
        "python -c \"import dukpy; print(dukpy.evaljs('1+1'))\" (in-process)":
            _timed([py, "-c", "import dukpy; print(dukpy.evaljs('1+1'))"]),
        "python -c pass (interpreter only)": _timed([py, "-c", "pass"], expect=None),
    }
    if node_path():
        variants[NODE] = _timed([node_path(), "-e", "const vm=require('vm'); console.log(vm.runInNewContext('1+1'))"])
    else:
        suite.skip("node not on PATH: node -e cold-start baseline skipped")
    runs = suite.scale(9, 3)
    samples = interleave(variants, runs, runs)
    for name, xs in samples.items():
        suite.add(SECTION, name, "ms", xs, ref=name == ISOLATE)
    suite.raw["cold_start_ms"] = samples
    iso = percentile(samples[ISOLATE], 50)
    if NODE in samples:
        node = percentile(samples[NODE], 50)
        suite.target("cold_start", SECTION, "cold start ≤ 3× node -e", iso / node, 3.0, "<=",
                     detail=f"median {iso:.0f} ms vs {node:.0f} ms over {runs} runs each")
    else:
        suite.target("cold_start", SECTION, "cold start ≤ 3× node -e", None, 3.0, "<=", detail="node absent")


def profile(suite, key, out_dir):
    """Where a cold start goes: -X importtime, and the phases timed inside one process."""
    py = sys.executable
    phases = (
        "import time; t0 = time.perf_counter()\n"
        "import isolate; t1 = time.perf_counter()\n"
        "pool = isolate.default_pool(); t2 = time.perf_counter()\n"
        "r = isolate.run_in_new_context('1+1'); t3 = time.perf_counter()\n"
        "pool.close(); t4 = time.perf_counter()\n"
        "print(f'import isolate {1e3*(t1-t0):.1f} ms\\nstart default pool ({pool.size} workers + spare) "
        "{1e3*(t2-t1):.1f} ms\\nfirst run_in_new_context {1e3*(t3-t2):.1f} ms\\nclose {1e3*(t4-t3):.1f} ms')\n"
    )
    lines = ["Cold start breakdown (python -c, one process, phases timed inside it), 3 runs:"]
    for _ in range(3):
        t0 = time.perf_counter()
        out = subprocess.run([py, "-c", phases], capture_output=True, text=True, cwd="/")
        total = (time.perf_counter() - t0) * 1e3
        lines += [f"  run: total wall {total:.0f} ms (interpreter start + the phases + exit)"]
        lines += ["    " + line for line in out.stdout.strip().splitlines()]
    imp = subprocess.run([py, "-X", "importtime", "-c", "import isolate; isolate.Pool"], capture_output=True, text=True, cwd="/")
    rows = []
    for line in imp.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cum_us, name = line.split(":", 1)[1].split("|")
        rows.append((int(cum_us), int(self_us), name.rstrip()))
    rows.sort(reverse=True)
    lines += ["", "python -X importtime -c 'import isolate; isolate.Pool' (what starting a pool imports), top 25 by cumulative µs:",
              "  cumulative_us    self_us  module"]
    lines += [f"  {c:>13,} {s:>10,}  {n}" for c, s, n in rows[:25]]
    path = out_dir / f"profile_{key}.txt"
    path.write_text("\n".join(lines) + "\n")
    print(f"  wrote {path}", flush=True)
    return path
