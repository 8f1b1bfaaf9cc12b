"""3. CPU-bound scaling: real work per job, isolate pools of 1..N workers vs in-process dukpy.

Two workloads, each job in a fresh context on both sides:

- ``fib``: ``function fib(n) {...} fib(n)`` with ``n = 25`` (~19 ms in QuickJS);
- ``json``: a transform of a ~50 KB document passed in as a global (filter,
  map, group-by; returns the transformed items, ~25 KB), so the cost of moving
  the document in and the result out is part of the job.

isolate: ``pool.map(code, sandboxes)`` on ``Pool(size=k)``. In-process dukpy:
a fresh ``_dukpy`` context per job (what ``run_in_new_context`` costs the
worker too), the sandbox as JSON ``jsvars`` (dukpy's way of passing values),
the result through ``json.loads``. Node runs the same jobs with
``script.runInNewContext(sandbox)`` as a reference (V8 has a JIT; no target).
"""

from __future__ import annotations

import json
import os
import random
import time

import isolate

from .harness import DukpyHost, interleave, node_path, percentile, run_node

FIB_BODY = "function fib(n) { return n < 2 ? n : fib(n - 1) + fib(n - 2); } "
FIB = FIB_BODY + "fib(n)"
JSON_BODY = """
const out = doc.items.filter(it => it.active).map(it => ({
  id: it.id, name: it.name.toUpperCase(), total: Math.round(it.price * it.qty * 100) / 100,
  tags: it.tags.slice().sort().join(','), city: it.address.city }));
const byTag = {};
for (const it of doc.items) for (const t of it.tags) byTag[t] = (byTag[t] || 0) + it.qty;
({ count: out.length, byTag, items: out })
"""


def make_document(target_bytes: int = 50_000, seed: int = 7) -> dict:
    rng = random.Random(seed)
    tags = ["red", "green", "blue", "small", "large", "sale", "new", "eco"]
    items = []
    doc = {"version": 3, "source": "benchmarks", "items": items}
    i = 0
    while len(json.dumps(doc)) < target_bytes:
        items.append({"id": i, "name": f"item-{i:05d}-{rng.choice(tags)}", "price": round(rng.uniform(1, 500), 2),
                      "qty": rng.randint(1, 40), "active": rng.random() < 0.7,
                      "tags": rng.sample(tags, rng.randint(1, 4)),
                      "address": {"city": rng.choice(["Oslo", "Lima", "Pune", "Kyiv"]), "zip": f"{rng.randint(0, 99999):05d}"}})
        i += 1
    return doc




def _inproc_runner(code_with_dukpy_vars: str, sandbox: dict):
    from dukpy import _dukpy
    code = code_with_dukpy_vars.encode()

    def run(n):
        t0 = time.perf_counter()
        for _ in range(n):
            jsvars = json.dumps(sandbox).encode()
            json.loads(_dukpy.eval_string(DukpyHost(), code, jsvars, False, "<bench>"))
        return [n / (time.perf_counter() - t0)]
    return run


def _pool_runner(pool, code, sandbox):
    def run(n):
        t0 = time.perf_counter()
        for _ in pool.map(code, (dict(sandbox) for _ in range(n))):
            pass
        return [n / (time.perf_counter() - t0)]
    return run


def _measure(suite, pools, code, inproc_code, sandbox, jobs, rounds):
    variants = {"dukpy in-process (fresh context per job)": _inproc_runner(inproc_code, sandbox)}
    for k, pool in pools.items():
        list(pool.map(code, (dict(sandbox) for _ in range(2 * k))))  # warm-up
        variants[f"isolate Pool(size={k}).map"] = _pool_runner(pool, code, sandbox)
    samples = interleave(variants, jobs, rounds)
    if node_path():
        node = run_node("cpu", n=jobs, code=code, sandboxes=[json.dumps(sandbox)])
        samples["Node vm script.runInNewContext, 1 process (V8 JIT; reference)"] = [node["rate"]]
    return samples


def run(suite):
    cpus = os.cpu_count() or 1
    sizes = [1, 2] if suite.quick else sorted({1, 2, 3, 4, cpus})
    doc = make_document()
    workloads = {
        "fib(25)": (FIB, FIB_BODY + "fib(dukpy.n)", {"n": 25}),
        "json transform 50 KB": (JSON_BODY, "const doc = dukpy.doc;" + JSON_BODY, {"doc": doc}),
    }
    suite.raw["cpu_document_bytes"] = len(json.dumps(doc))
    jobs = suite.scale(240, 40)
    rounds = suite.scale(2, 1)
    pools = {k: isolate.Pool(size=k) for k in sizes}
    try:
        results = {}
        for wname, (code, inproc_code, sandbox) in workloads.items():
            section = f"CPU {wname}"
            key = "fib" if wname.startswith("fib") else "json"

            def stuck(section=section, key=key):
                for goal, suffix, threshold, op in (
                        ("2 workers ≥ 1.8× 1 worker (throughput)", "scaling", 1.8, ">="),
                        ("1 worker ≤ 1.10× in-process dukpy (time per job)", "overhead", 1.10, "<=")):
                    suite.target(f"cpu_{key}_{suffix}", section, goal, None, threshold, op, met=False,
                                 detail=f"not measured: the run hung (stacks in stuck_cpu_{key}.txt)")

            with suite.guard(f"cpu_{key}", suite.scale(150, 60), stuck):
                samples = _measure(suite, pools, code, inproc_code, sandbox, jobs, rounds)
            results[wname] = samples
            for name, xs in samples.items():
                suite.add(section, name, "jobs/s", xs, ref=name == "isolate Pool(size=1).map", n=jobs)

            r = {k: percentile(v, 50) for k, v in samples.items()}
            one, two = r["isolate Pool(size=1).map"], r["isolate Pool(size=2).map"]
            inproc = r["dukpy in-process (fresh context per job)"]
            suite.target(f"cpu_{key}_scaling", section, "2 workers ≥ 1.8× 1 worker (throughput)", two / one, 1.8,
                         ">=", detail=f"{two:.1f} vs {one:.1f} jobs/s, {jobs} jobs")
            suite.target(f"cpu_{key}_overhead", section, "1 worker ≤ 1.10× in-process dukpy (time per job)",
                         inproc / one, 1.10, "<=",
                         detail=f"{1000 / one:.2f} vs {1000 / inproc:.2f} ms per job")
            suite.raw["cpu_jobs_per_s"] = results
            suite.plots.setdefault("throughput", {}).setdefault("cpu", {})[wname] = {
                "sizes": {int(k.split("=")[1].split(")")[0]): percentile(v, 50)
                          for k, v in samples.items() if k.startswith("isolate Pool")},
                "baselines": {k: percentile(v, 50) for k, v in samples.items() if not k.startswith("isolate")}}
    finally:
        for pool in pools.values():
            pool.close()


def profile(suite, key, out_dir):
    from .profiling import profile_workload

    if "json" in key:
        code, sandbox, title = JSON_BODY, {"doc": make_document()}, "json transform 50 KB"
    else:
        code, sandbox, title = FIB, {"n": 25}, "fib(25)"
    with isolate.Pool(size=1) as pool:
        list(pool.map(code, (dict(sandbox) for _ in range(4))))
        n = suite.scale(150, 30)

        def work():
            for _ in pool.map(code, (dict(sandbox) for _ in range(n))):
                pass

        return profile_workload(out_dir / f"profile_{key}.txt", f"CPU {title} on Pool(size=1).map", work, n, pool)


def profile_key(key):
    return "cpu_json" if "json" in key else "cpu_fib"
