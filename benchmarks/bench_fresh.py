"""2. Fresh contexts: ``x + 1`` in a new context per input, throughput (jobs/s).

- isolate: ``pool.map('x + 1', ({'x': i} for i in ...))`` on ``Pool()`` (one worker
  per CPU): ``Pool.map`` is what the README recommends for many inputs (it
  streams, keeping ``2 × size`` calls in flight).
- Node: ``vm.runInNewContext('x + 1', {x: i})`` in a loop, one process.
- multiprocess ``Pool(2).map`` calling ``dukpy.evaljs('dukpy.x + 1', x=i)`` per
  task (dukpy exposes keyword arguments on the ``dukpy`` global, so plain
  ``x + 1`` would be a ReferenceError; ``evaljs`` makes a fresh interpreter per
  call, as isolate makes a fresh context), with ``chunksize=1`` (naive: one
  task per message) and with ``map``'s default chunksize (``ceil(n / (4 ×
  processes))``, batching, which the docs recommend for long iterables).
- pebble ``ProcessPool(max_workers=2)``, ``pool.schedule(task, args=[i],
  timeout=1)`` per task, as pebble's docs show for tasks with a timeout.

Pool start-up is excluded everywhere (each pool is started and warmed up
first); every variant runs the same number of jobs per round, rounds rotate.
Also: isolate's throughput at pool sizes 1..4 (for the pool-size plot).
"""

from __future__ import annotations

import os
import time

import isolate

from .harness import interleave, node_path, run_node

SECTION = "Fresh contexts x + 1"
ISOLATE = "isolate Pool().map, run_in_new_context per input"
NODE = "Node vm.runInNewContext loop (1 process)"
MP1 = "multiprocess.Pool(2).map + dukpy.evaljs, chunksize=1 (naive)"
MPD = "multiprocess.Pool(2).map + dukpy.evaljs, default chunksize n/8"
PEBBLE = "pebble ProcessPool(2).schedule(timeout=1) + dukpy.evaljs"


def _task(i):
    import dukpy
    return dukpy.evaljs("dukpy.x + 1", x=i)


def _rate(fn, n):
    t0 = time.perf_counter()
    result = fn(n)
    dt = time.perf_counter() - t0
    assert result == n * (n + 1) // 2, (result, n)  # sum of i + 1 for i in range(n)
    return [n / dt]


def _isolate_runner(pool):
    return lambda n: _rate(lambda n: sum(pool.map("x + 1", ({"x": i} for i in range(n)))), n)


def run(suite):
    import multiprocess
    import pebble

    per_round = suite.scale(1500, 250)
    rounds = suite.scale(5, 2)
    cpus = os.cpu_count() or 1
    # The process pools fork before this module starts any isolate pool.
    mp = multiprocess.Pool(2)
    mp.map(_task, range(20), chunksize=1)
    pp = pebble.ProcessPool(max_workers=2)
    [f.result() for f in [pp.schedule(_task, args=[i], timeout=1) for i in range(20)]]

    def pebble_run(n):
        futures = [pp.schedule(_task, args=[i], timeout=1) for i in range(n)]
        return sum(f.result() for f in futures)

    try:
        with isolate.Pool() as pool:
            list(pool.map("x + 1", ({"x": i} for i in range(200))))
            variants = {
                ISOLATE: _isolate_runner(pool),
                MP1: lambda n: _rate(lambda n: sum(mp.map(_task, range(n), chunksize=1)), n),
                MPD: lambda n: _rate(lambda n: sum(mp.map(_task, range(n))), n),
                PEBBLE: lambda n: _rate(pebble_run, n),
            }
            if node_path():
                variants[NODE] = lambda n: [run_node("fresh", n=n)["rate"]]
            else:
                suite.skip("node not on PATH: Node runInNewContext baseline skipped")
            samples = interleave(variants, per_round * rounds, rounds)
    finally:
        mp.close()
        mp.join()
        pp.close()
        pp.join()

    note = f"pool size {cpus}"
    for name, xs in samples.items():
        suite.add(SECTION, name, "jobs/s", xs, ref=name == ISOLATE, note=note if name == ISOLATE else "")
    suite.raw["fresh_jobs_per_s"] = samples

    from .harness import percentile
    med = {k: percentile(v, 50) for k, v in samples.items()}
    iso = med[ISOLATE]
    if NODE in med:
        suite.target("fresh_vs_node", SECTION, "isolate ≥ 2× Node's runInNewContext loop", iso / med[NODE], 2.0,
                     ">=", detail=f"{iso:.0f} vs {med[NODE]:.0f} jobs/s")
    else:
        suite.target("fresh_vs_node", SECTION, "isolate ≥ 2× Node's runInNewContext loop", None, 2.0, ">=",
                     detail="node absent")
    suite.target("fresh_vs_naive", SECTION, "isolate ≥ 3× naive multiprocess (chunksize=1) and pebble",
                 iso / max(med[MP1], med[PEBBLE]), 3.0, ">=",
                 detail=f"{iso:.0f} vs multiprocess {med[MP1]:.0f} ({iso / med[MP1]:.2f}×), pebble "
                        f"{med[PEBBLE]:.0f} ({iso / med[PEBBLE]:.2f}×) jobs/s; the lower ratio counts. "
                        f"Chunked multiprocess: {med[MPD]:.0f} jobs/s ({iso / med[MPD]:.2f}×)")

    # Throughput vs pool size (same workload), for the plot.
    sizes = sorted({1, 2, 3, 4, cpus})
    n = suite.scale(1500, 300)
    sweep = {}
    for size in sizes:
        with isolate.Pool(size=size) as pool:
            list(pool.map("x + 1", ({"x": i} for i in range(100))))
            sweep[size] = _isolate_runner(pool)(n)[0]
        suite.add(SECTION, f"isolate Pool(size={size}).map", "jobs/s", median=sweep[size], n=n)
    suite.plots.setdefault("throughput", {})["fresh"] = {
        "sizes": sweep, "baselines": {k: med[k] for k in (NODE, MP1, MPD, PEBBLE) if k in med}}


def profile(suite, key, out_dir):
    from .profiling import profile_workload

    with isolate.Pool() as pool:
        list(pool.map("x + 1", ({"x": i} for i in range(200))))
        n = suite.scale(3000, 600)

        def work():
            for _ in pool.map("x + 1", ({"x": i} for i in range(n))):
                pass

        return profile_workload(out_dir / f"profile_{key}.txt", "fresh contexts: pool.map('x + 1', ...)",
                                work, n, pool)


def profile_key(key):
    return "fresh_contexts"
