"""9. Batch: ``run_batch`` of many small jobs, each in a fresh context (jobs/s).

- isolate: ``pool.run_batch(jobs)`` on ``Pool()`` (one worker per CPU), a job
  ``{"id": i, "code": "<i> + 1"}``, with its default window (``2 × size`` jobs
  in flight); every record is checked (status ``ok``, the right value).
- The naive batch runner it replaces: ``multiprocess.Pool(2).map(dukpy.evaljs,
  codes, chunksize=64)`` (a fresh interpreter per job, as isolate makes a fresh
  context; chunksize 64 as a batch script would set it).
- pebble ``ProcessPool(max_workers=2)``, ``pool.map(dukpy.evaljs, codes,
  chunksize=64, timeout=10)``: pebble's batch API, with the per-chunk timeout
  pebble offers, per chunk of 64 (isolate's is per job).

Pool start-up is excluded everywhere (each pool is started and warmed up
first); each variant runs the same jobs per round, rounds rotate.
"""

from __future__ import annotations

import time

import isolate

from .harness import interleave, percentile

SECTION = "Batch of small jobs"
ISOLATE = "isolate Pool().run_batch, fresh context per job"
MP64 = "multiprocess.Pool(2).map(dukpy.evaljs, chunksize=64) (naive)"
PEBBLE = "pebble ProcessPool(2).map(dukpy.evaljs, chunksize=64, timeout=10)"


def _evaljs(code):
    import dukpy
    return dukpy.evaljs(code)


def _codes(n):
    return [f"{i} + 1" for i in range(n)]


def _expected(n):
    return n * (n + 1) // 2  # the sum of i + 1 for i in range(n)


def _rate(fn, n):
    t0 = time.perf_counter()
    total = fn(n)
    dt = time.perf_counter() - t0
    assert total == _expected(n), (total, n)
    return [n / dt]


def _isolate_batch(pool, n):
    total = 0
    for record in pool.run_batch({"id": i, "code": code} for i, code in enumerate(_codes(n))):
        assert record["status"] == "ok", record
        total += record["value"]
    return total


def run(suite):
    import multiprocess
    import pebble

    per_round = suite.scale(10_000, 2_000)
    rounds = suite.scale(3, 1)
    # The process pools fork before this module starts any isolate pool.
    mp = multiprocess.Pool(2)
    mp.map(_evaljs, _codes(64), chunksize=8)
    pp = pebble.ProcessPool(max_workers=2)
    list(pp.map(_evaljs, _codes(64), chunksize=8, timeout=10).result())
    try:
        with isolate.Pool() as pool:
            _isolate_batch(pool, 200)
            variants = {
                ISOLATE: lambda n: _rate(lambda n: _isolate_batch(pool, n), n),
                MP64: lambda n: _rate(lambda n: sum(mp.map(_evaljs, _codes(n), chunksize=64)), n),
                PEBBLE: lambda n: _rate(lambda n: sum(pp.map(_evaljs, _codes(n), chunksize=64,
                                                             timeout=10).result()), n),
            }
            samples = interleave(variants, per_round * rounds, rounds)
            size = pool.size
    finally:
        mp.close()
        mp.join()
        pp.close()
        pp.join()

    for name, xs in samples.items():
        suite.add(SECTION, name, "jobs/s", xs, ref=name == ISOLATE, note=f"pool size {size}" if name == ISOLATE else "")
    suite.raw["batch_jobs_per_s"] = samples
    med = {k: percentile(v, 50) for k, v in samples.items()}
    iso = med[ISOLATE]
    suite.target("batch_vs_naive", SECTION, "run_batch ≥ 2× naive multiprocess.Pool(2) + dukpy.evaljs (chunksize=64)",
                 iso / med[MP64], 2.0, ">=",
                 detail=f"{iso:.0f} vs {med[MP64]:.0f} jobs/s; pebble (chunksize=64) {med[PEBBLE]:.0f} jobs/s "
                        f"({iso / med[PEBBLE]:.2f}×)")


def profile(suite, key, out_dir):
    from .profiling import profile_workload

    with isolate.Pool() as pool:
        _isolate_batch(pool, 200)
        n = suite.scale(3000, 600)
        return profile_workload(out_dir / f"profile_{key}.txt", "run_batch of small jobs",
                                lambda: _isolate_batch(pool, n), n, pool)


def profile_key(key):
    return "batch"
