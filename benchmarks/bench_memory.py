"""5. Memory (KB = 1,000 bytes, MB = 1,000,000 bytes: the stricter reading of the targets).

- Engine bytes per empty context: ``ctx.memory_usage()["used"]`` (QuickJS's
  ``memory_used_size`` for the context's runtime, bridge included), also
  ``"allocated"`` (``malloc_size``); median over several fresh contexts.
- RSS and USS per idle worker (psutil ``memory_full_info``): RSS counts pages
  shared with the host after fork, USS only the worker's own. Workers of a
  started pool after one call each, and the warm spare. A bare ``node -e``
  process's RSS is shown for scale.
- Host RSS per 1,000 live ``Context`` proxies from ``pool.create_context()``,
  with what the same contexts cost the workers (each is a QuickJS runtime there).
"""

from __future__ import annotations

import gc
import subprocess
import time

import isolate

from .harness import host_rss, node_path, percentile, rss_uss

SECTION = "Memory"
KB, MB = 1e3, 1e6


def run(suite):
    with isolate.Pool(size=2) as pool:
        # Engine bytes per empty context.
        ctxs = [pool.create_context() for _ in range(8)]
        usage = [c.memory_usage() for c in ctxs]
        used = [u["used"] / KB for u in usage]
        allocated = [u["allocated"] / KB for u in usage]
        del ctxs
        suite.add(SECTION, "engine bytes per empty context, used", "KB", used, ref=True)
        suite.add(SECTION, "engine bytes per empty context, allocated (malloc_size)", "KB", allocated)
        suite.target("empty_context", SECTION, "empty context ≤ 200 KB (engine, used)", percentile(used, 50),
                     200.0, "<=", unit=" KB",
                     detail=f"allocated {percentile(allocated, 50):.0f} KB; "
                            f"{usage[0]['objects']} objects, atoms {usage[0]['engine'].get('atom_size', 0) / KB:.0f} KB")
        suite.raw["empty_context_engine"] = usage[0]["engine"]

        # Idle workers: after one call each.
        for _ in range(4):
            pool.run_in_new_context("1+1")
        time.sleep(0.3)
        workers = [rss_uss(pid) for pid in pool.worker_pids()]
        spares = [rss_uss(w.pid) for w in getattr(pool, "_spares", []) if w.pid]
        rss = [r / MB for r, _ in workers]
        uss = [u / MB for _, u in workers]
        suite.add(SECTION, "idle worker RSS (psutil)", "MB", rss)
        suite.add(SECTION, "idle worker USS (psutil)", "MB", uss)
        if spares:
            suite.add(SECTION, "idle spare worker RSS / USS", "MB", median=spares[0][0] / MB,
                      note=f"USS {spares[0][1] / MB:.1f} MB")
        suite.target("idle_worker_rss", SECTION, "idle worker RSS ≤ 30 MB", max(rss), 30.0, "<=", unit=" MB",
                     detail=f"RSS {', '.join(f'{x:.1f}' for x in rss)} MB; USS "
                            f"{', '.join(f'{x:.1f}' for x in uss)} MB (worst worker shown)")

        if node_path():
            out = subprocess.run([node_path(), "-e", "console.log(process.memoryUsage().rss)"],
                                 capture_output=True, text=True)
            suite.add(SECTION, "bare node -e process RSS (reference)", "MB", median=int(out.stdout) / MB)

        # Host RSS per 1,000 live Context proxies.
        n = suite.scale(1000, 200)
        gc.collect()
        time.sleep(0.2)
        worker_before = sum(rss_uss(pid)[0] for pid in pool.worker_pids())
        before = host_rss()
        t0 = time.perf_counter()
        live = [pool.create_context() for _ in range(n)]
        create_s = time.perf_counter() - t0
        gc.collect()
        after = host_rss()
        worker_after = sum(rss_uss(pid)[0] for pid in pool.worker_pids())
        per_1000 = (after - before) / MB * 1000 / n
        suite.add(SECTION, f"host RSS per 1,000 live Context proxies (measured on {n})", "MB", median=per_1000)
        suite.add(SECTION, "worker RSS per live context (sum over workers)", "KB",
                  median=(worker_after - worker_before) / KB / n)
        suite.add(SECTION, "create_context() time per context", "µs", median=create_s * 1e6 / n, n=n)
        suite.raw["contexts_1000"] = {"n": n, "host_rss_before": before, "host_rss_after": after,
                                      "worker_rss_before": worker_before, "worker_rss_after": worker_after}
        del live


def profile(suite, key, out_dir):
    """For memory, 'where it goes' is a breakdown, not a time profile."""
    import psutil

    lines = [f"Memory breakdown for target {key}", ""]
    with isolate.Pool(size=1) as pool:
        pool.run_in_new_context("1+1")
        time.sleep(0.3)
        ctx = pool.create_context()
        usage = ctx.memory_usage()
        lines += ["Empty context, QuickJS JSMemoryUsage fields (bytes):"]
        lines += [f"  {k:24} {v:>12,}" for k, v in sorted(usage["engine"].items(), key=lambda kv: -kv[1])]
        pid = pool.worker_pids()[0]
        proc = psutil.Process(pid)
        info = proc.memory_full_info()
        lines += ["", f"Idle worker {pid}: RSS {info.rss:,} USS {info.uss:,} PSS {getattr(info, 'pss', 0):,} "
                  f"shared {info.shared:,}", "", "Largest mappings by RSS (psutil memory_maps, grouped):"]
        try:
            maps = sorted(proc.memory_maps(grouped=True), key=lambda m: -m.rss)[:20]
            for m in maps:
                lines.append(f"  rss {m.rss / MB:7.2f} MB  private {(m.private_clean + m.private_dirty) / MB:7.2f} MB"
                             f"  {m.path or '[anon]'}")
        except psutil.Error as exc:  # pragma: no cover
            lines.append(f"  unavailable: {exc}")
    path = out_dir / f"profile_{key}.txt"
    path.write_text("\n".join(lines) + "\n")
    print(f"  wrote {path}", flush=True)
    return path


def profile_key(key):
    return "memory"
