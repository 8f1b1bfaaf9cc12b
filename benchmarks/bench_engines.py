"""10. Engines: QuickJS and V8 (``Pool(engine=...)``) against Node, on CPU-bound jobs and per-call costs.

CPU-bound jobs, each in a fresh context (``run_in_new_context``; Node: the
script once in a fresh process, ``vm.runInThisContext``), timed per job and interleaved round by round so
that a noisy machine slows every side alike:

- ``fib(30)``, ``fib(32)``: ``function fib(n) {...}``;
- ``json 300k``: 300,000 records built, filtered, mapped and ``JSON.stringify``'d
  (the string's length is the result: the job, not the transfer, is measured).

Per-call costs per engine: the round trip (``run_in_context("1")`` on a live
context) and a fresh context per job (``run_in_new_context("1")``). V8 rows are
skipped when the ``v8`` extra is not installed. Target: CPU-bound work on V8
within 1.5× of Node's time for the same script.
"""

from __future__ import annotations

import importlib.util
import subprocess
import time

import isolate

from .harness import node_path, percentile

FIB = "function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); } fib({n})"
JSON_300K = """const recs = [];
for (let i = 0; i < 300000; i++) recs.push({ id: i, name: 'user' + i, score: i % 97 });
const out = recs.filter(r => r.score > 40).map(r => ({ id: r.id, label: r.name.toUpperCase(), s: r.score * 2 }));
JSON.stringify(out).length"""
TARGET = 1.5


def _engines() -> list[str]:
    return ["quickjs", "v8"] if importlib.util.find_spec("STPyV8") is not None else ["quickjs"]


def _job_ms(pool, code: str) -> float:
    t0 = time.perf_counter()
    pool.run_in_new_context(code, timeout=120_000)
    return (time.perf_counter() - t0) * 1000.0


# Node runs the script once, as a plain script in a fresh process (cold, as each isolate
# job is in a fresh context). Not runInNewContext: there every global lookup of the
# script (`fib` calling itself) goes through the contextified sandbox, 10-20x slower,
# which would flatter V8 here.
_NODE_JOB = ("const vm = require('vm'); const code = process.argv[1]; const t0 = process.hrtime.bigint();"
             " vm.runInThisContext(code); console.log(Number(process.hrtime.bigint() - t0) / 1e6)")


def _node_ms(code: str) -> float:
    out = subprocess.run([node_path(), "-e", _NODE_JOB, code], capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"node failed: {out.stderr.strip()[-500:]}")
    return float(out.stdout.strip())


def _per_call_us(pool, n: int) -> tuple[list[float], list[float]]:
    ctx = pool.create_context()
    for _ in range(50):
        pool.run_in_context("1", ctx)
    trip, fresh = [], []
    for _ in range(n):
        t0 = time.perf_counter()
        pool.run_in_context("1", ctx)
        trip.append((time.perf_counter() - t0) * 1e6)
    for _ in range(n // 4):
        t0 = time.perf_counter()
        pool.run_in_new_context("1")
        fresh.append((time.perf_counter() - t0) * 1e6)
    return trip, fresh


def run(suite):
    engines = _engines()
    if "v8" not in engines:
        suite.skip("engines: the v8 extra is not installed (pip install 'isolate-vm[v8]'): QuickJS rows only")
    jobs = {"fib(30)": FIB.replace("{n}", "30"), "fib(32)": FIB.replace("{n}", "32"), "json 300k": JSON_300K}
    rounds = suite.scale(3, 1)
    pools = {name: isolate.Pool(size=1, engine=name, spare_workers=0) for name in engines}
    try:
        for pool in pools.values():
            pool.run_in_new_context("1")
        for job, code in jobs.items():
            section = f"Engines: {job}, ms per job (fresh context)"
            samples: dict[str, list[float]] = {f"isolate {name}": [] for name in engines}
            if node_path():
                samples["Node, the script once (vm.runInThisContext)"] = []
            for r in range(rounds):
                names = list(samples)
                for name in names[r % len(names):] + names[:r % len(names)]:
                    if name.startswith("Node"):
                        samples[name].append(_node_ms(code))
                    else:
                        samples[name].append(_job_ms(pools[name.split()[1]], code))
            for name, xs in samples.items():
                suite.add(section, name, "ms", xs, ref=name == "isolate v8" or (name == "isolate quickjs"
                                                                               and "v8" not in engines))
            if "v8" in engines and node_path():
                v8, node = percentile(samples["isolate v8"], 50), percentile(samples["Node, the script once (vm.runInThisContext)"], 50)
                suite.target(f"engines_v8_{job.replace(' ', '_').replace('(', '').replace(')', '')}", section,
                             f"V8 ≤ {TARGET}× Node's time", v8 / node, TARGET, "<=",
                             detail=f"{v8:.1f} vs {node:.1f} ms per job, {rounds} rounds interleaved")
        n = suite.scale(2000, 400)
        for name, pool in pools.items():
            trip, fresh = _per_call_us(pool, n)
            suite.add("Engines: round trip run_in_context('1')", f"isolate {name}", "µs", trip,
                      ref=name == "quickjs", n=n)
            suite.add("Engines: fresh context run_in_new_context('1')", f"isolate {name}", "µs", fresh,
                      ref=name == "quickjs", n=n // 4)
    finally:
        for pool in pools.values():
            pool.close()
