"""PNG plots of a suite's results (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

from .harness import percentile


def draw(suite, out_dir: Path) -> list[Path]:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        suite.skip("matplotlib not installed (pip install -e '.[bench]'): no plots")
        return []
    written = []
    for name, fn in (("throughput_vs_pool_size.png", _throughput), ("round_trip_latency.png", _round_trip),
                     ("timeout_overshoot.png", _overshoot)):
        fig = fn(plt, suite)
        if fig is None:
            continue
        path = out_dir / name
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(path)
    return written


def _throughput(plt, suite):
    data = suite.plots.get("throughput")
    if not data:
        return None
    panels = []
    if "fresh" in data:
        panels.append(("Fresh contexts: x + 1", data["fresh"]))
    for workload, d in data.get("cpu", {}).items():
        panels.append((f"CPU-bound: {workload}", d))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.2), squeeze=False)
    for ax, (title, d) in zip(axes[0], panels):
        sizes = sorted(int(k) for k in d["sizes"])
        values = [d["sizes"][k] if k in d["sizes"] else d["sizes"][str(k)] for k in sizes]
        ax.plot(sizes, values, "o-", color="C0", lw=2, label="isolate Pool(size=k).map")
        cpus = suite.environment()["cpus"] or 1
        ideal = [values[0] * min(k, cpus) for k in sizes]
        ax.plot(sizes, ideal, ":", color="C0", alpha=0.5, label=f"1 worker × min(k, {cpus} CPUs)")
        for i, (label, value) in enumerate(d.get("baselines", {}).items()):
            ax.axhline(value, ls="--", color=f"C{i + 1}", label=label[:60])
        ax.set_xticks(sizes)
        ax.set_xlabel("pool size (workers)")
        ax.set_ylabel("jobs/s")
        ax.set_title(title)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6.5, loc="best")
    fig.suptitle("Throughput vs pool size (machine has %s CPUs)" % (suite.environment()["cpus"]), y=1.03)
    return fig


def _round_trip(plt, suite):
    samples = suite.plots.get("round_trip")
    if not samples:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for i, (name, xs) in enumerate(samples.items()):
        xs = sorted(xs)
        n = len(xs)
        ax.plot(xs, [(k + 1) / n for k in range(n)], color=f"C{i}", lw=1.6,
                label=f"{name} (p50 {percentile(xs, 50):.0f} µs, p95 {percentile(xs, 95):.0f})")
    ax.set_xscale("log")
    ax.set_xlabel("latency per call (µs, log scale)")
    ax.set_ylabel("fraction of calls ≤ x")
    ax.set_title("Round trip: 1+1 on an existing context (ECDF)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper left")
    return fig


def _overshoot(plt, suite):
    samples = suite.plots.get("overshoot")
    if not samples:
        return None
    fig, ax = plt.subplots(figsize=(8, 4.5))
    hi = max(percentile(xs, 99.5) for xs in samples.values())
    lo = min(min(xs) for xs in samples.values())
    bins = [lo + (hi - lo) * k / 60 for k in range(61)]
    for i, (name, xs) in enumerate(samples.items()):
        ax.hist([min(x, hi) for x in xs], bins=bins, alpha=0.55, color=f"C{i}",
                label=f"{name}: p50 {percentile(xs, 50):.2f}, p99 {percentile(xs, 99):.2f} ms")
    ax.axvline(2.0, color="red", ls="--", label="target: p99 ≤ 2 ms")
    ax.set_xlabel("overshoot = wall time − 20 ms timeout (ms; clipped at p99.5)")
    ax.set_ylabel("calls")
    ax.set_title("Soft-stop timeout overshoot: while (true) {} with timeout 20 ms")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig
