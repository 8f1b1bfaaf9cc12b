"""1. Round trip: ``1+1`` on an existing context, per-call latency.

- isolate: ``isolate.run_in_context('1+1', ctx, timeout=1000)`` (the code string
  each time, as ``vm.runInContext`` takes it; and without a timeout) on a
  started pool, the context created once.
- Node: ``script.runInContext(ctx, {timeout: 1000})`` in a node process
  (``new vm.Script('1+1')`` compiled once, as node's docs show), timed per call
  with ``process.hrtime.bigint()``; also without a timeout.
- dukpy in-process: ``_dukpy.eval_string`` on an existing context with the
  minimal host object dukpy expects (what ``workers/engine.py`` does), result
  decoded with ``json.loads`` as ``dukpy.evaljs`` does. No timeout: dukpy has none.
- mini-racer (V8 in-process), ``ctx.eval('1+1', timeout_sec=1)``, if installed.
- The transport floor: a 16-byte ping-pong over two pipes with a forked Python
  child (``os.write``/``os.read``, blocking): what any process-per-context design
  pays per call on this machine before doing any work.

Both CPU states: the target pair (isolate and Node, with a timeout) is measured
again with one core kept busy by a spinning process pinned to it. A round trip
crosses processes, so the state of the other cores shapes it (a wake-up on an
idle core is slow; a busy core leaves host and worker one CPU between them):
an optimisation counts only if it pays in both.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys

import isolate

from .harness import DukpyHost, interleave, node_path, now_ns, run_node

SECTION = "Round trip 1+1"




def _isolate_variant(pool, ctx, timeout):
    def run(n):
        out = []
        call = isolate.run_in_context
        for _ in range(n):
            t0 = now_ns()
            if timeout:
                call("1+1", ctx, timeout=timeout)
            else:
                call("1+1", ctx)
            out.append((now_ns() - t0) / 1e3)
        return out
    return run


def _dukpy_variant():
    from dukpy import _dukpy
    host = DukpyHost()
    code, jsvars = b"1+1", b"null"

    def run(n):
        out = []
        ev, loads = _dukpy.eval_string, json.loads
        for _ in range(n):
            t0 = now_ns()
            loads(ev(host, code, jsvars, False, "<bench>"))
            out.append((now_ns() - t0) / 1e3)
        return out
    return run


def _mini_racer_variant():
    try:
        from py_mini_racer import MiniRacer
    except ImportError:
        return None
    ctx = MiniRacer()

    def run(n):
        out = []
        for _ in range(n):
            t0 = now_ns()
            ctx.eval("1+1", timeout_sec=1)
            out.append((now_ns() - t0) / 1e3)
        return out
    return run


class _PingPong:
    """A forked child that echoes 16-byte messages over a pair of pipes."""

    def __init__(self):
        import os
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:  # child: echo until EOF
            try:
                os.close(self.to_child)
                os.close(self.from_child)
                while True:
                    data = os.read(to_child_r, 16)
                    if not data:
                        break
                    os.write(from_child_w, data)
            finally:
                os._exit(0)
        os.close(to_child_r)
        os.close(from_child_w)

    def variant(self):
        import os

        def run(n):
            out = []
            write, read, w, r, msg = os.write, os.read, self.to_child, self.from_child, b"x" * 16
            for _ in range(n):
                t0 = now_ns()
                write(w, msg)
                read(r, 16)
                out.append((now_ns() - t0) / 1e3)
            return out
        return run

    def close(self):
        import os
        os.close(self.to_child)
        os.close(self.from_child)
        os.waitpid(self.pid, 0)


@contextlib.contextmanager
def _one_core_busy():
    """A process spinning on the last CPU for the duration (none on a 1-CPU machine)."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        yield False
        return
    hog = subprocess.Popen([sys.executable, "-c", f"import os\nos.sched_setaffinity(0, {{{cpus[-1]}}})\nwhile 1: pass"])
    try:
        yield True
    finally:
        hog.kill()
        hog.wait()


def _node_variant(timeout):
    def run(n):
        return run_node("roundTrip", n=n, timeout=timeout)["samples_us"]
    return run


def run(suite):
    n = suite.scale(6000, 600)
    rounds = suite.scale(6, 3)
    ping = _PingPong()  # forked before any pool thread exists
    with isolate.Pool(size=2) as pool:
        ctx = pool.create_context()
        for _ in range(300):  # warm-up: code paths, allocator, page cache
            pool.run_in_context("1+1", ctx, timeout=1000)
            pool.run_in_context("1+1", ctx)
        variants = {
            "isolate run_in_context, timeout=1000": _isolate_variant(pool, ctx, 1000),
            "isolate run_in_context, no timeout": _isolate_variant(pool, ctx, None),
            "dukpy in-process eval_string (no timeout possible)": _dukpy_variant(),
        }
        variants["pipe ping-pong floor (forked Python child, 16 B)"] = ping.variant()
        racer = _mini_racer_variant()
        if racer:
            variants["mini-racer (V8 in-process) eval, timeout_sec=1"] = racer
        else:
            suite.skip("mini-racer not installed: its round-trip baseline is skipped")
        if node_path():
            variants["Node script.runInContext, {timeout: 1000}"] = _node_variant(1000)
            variants["Node script.runInContext, no timeout"] = _node_variant(None)
        else:
            suite.skip("node not on PATH: Node round-trip baselines skipped")
        samples = interleave(variants, n, rounds)
        busy = {}
        if node_path():
            with _one_core_busy() as hogged:
                if hogged:
                    busy = interleave({
                        "isolate run_in_context, timeout=1000, one core busy": _isolate_variant(pool, ctx, 1000),
                        "Node script.runInContext, {timeout: 1000}, one core busy": _node_variant(1000),
                    }, n, rounds)
    ping.close()

    unit = "µs"
    for name, xs in samples.items():
        suite.add(SECTION, name, unit, xs, ref=name.endswith("timeout=1000") and name.startswith("isolate"))
    for name, xs in busy.items():
        suite.add(SECTION, name, unit, xs)
    suite.raw["round_trip_us"] = {**samples, **busy}
    suite.plots["round_trip"] = samples

    from .harness import percentile
    iso = samples["isolate run_in_context, timeout=1000"]
    node_key = "Node script.runInContext, {timeout: 1000}"
    goal = "isolate with timeout ≤ 0.7× Node runInContext with timeout (p50)"
    if node_key in samples:
        node = samples[node_key]
        ratio = percentile(iso, 50) / percentile(node, 50)
        detail = (f"p50 {percentile(iso, 50):.0f} µs vs {percentile(node, 50):.0f} µs; "
                  f"p95 {percentile(iso, 95):.0f} vs {percentile(node, 95):.0f} µs")
        if busy:
            iso_b, node_b = busy.values()
            detail += (f"; one core busy: {percentile(iso_b, 50) / percentile(node_b, 50):.2f}× "
                       f"(p50 {percentile(iso_b, 50):.0f} vs {percentile(node_b, 50):.0f} µs)")
        suite.target("round_trip", SECTION, goal, ratio, 0.7, "<=", detail=detail)
    else:
        suite.target("round_trip", SECTION, goal, None, 0.7, "<=", detail="node absent")


def profile(suite, key, out_dir):
    from .profiling import profile_workload

    with isolate.Pool(size=2) as pool:
        ctx = pool.create_context()
        for _ in range(200):
            pool.run_in_context("1+1", ctx, timeout=1000)
        calls = 4000 if not suite.quick else 1000

        def work():
            for _ in range(calls):
                pool.run_in_context("1+1", ctx, timeout=1000)

        return profile_workload(out_dir / f"profile_{key}.txt",
                                "round trip: run_in_context('1+1', ctx, timeout=1000)",
                                work, calls, pool, [ctx.worker_pid])
