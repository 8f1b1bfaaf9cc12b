"""The shared harness: timing, percentiles, Node baselines, the results model and its table.

Every benchmark module has ``run(suite)``, which adds rows (one measured
variant each), targets (an issue goal with its measured ratio) and plot data
to the :class:`Suite`; optionally ``profile(suite, key, out_dir)`` explains a
missed target. Variants that are compared are measured in the same run,
interleaved round by round (see :func:`interleave`), so a noisy machine
shifts them together and their ratios hold.
"""

from __future__ import annotations

import gc
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
NODE_SCRIPT = HERE / "node_baselines.js"

now_ns = time.perf_counter_ns


# -- statistics ----------------------------------------------------------------

def percentile(values, p: float) -> float:
    """Linear-interpolated percentile (p in 0..100), like numpy's default."""
    xs = sorted(values)
    if not xs:
        return math.nan
    k = (len(xs) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summarize(values) -> dict:
    xs = list(values)
    if not xs:
        return {"n": 0}
    return {"n": len(xs), "median": percentile(xs, 50), "p95": percentile(xs, 95),
            "p99": percentile(xs, 99), "min": min(xs), "max": max(xs), "mean": sum(xs) / len(xs)}


def interleave(variants: dict[str, Callable[[int], list[float]]], total: int, rounds: int) -> dict[str, list[float]]:
    """Run each variant ``total`` times in ``rounds`` chunks, rotating the order each round.

    A variant is ``fn(n) -> list of samples``. Rotating means no variant always
    runs first (or right after a heavy one), and drift hits all of them alike.
    """
    names = list(variants)
    out: dict[str, list[float]] = {name: [] for name in names}
    per = max(1, total // rounds)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            gc.collect()
            out[name].extend(variants[name](per))
    return out


# -- Node ----------------------------------------------------------------------

def node_path() -> str | None:
    return shutil.which("node")


def node_version() -> str | None:
    node = node_path()
    if not node:
        return None
    return subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()


def run_node(mode: str, **params) -> dict:
    """Run one mode of node_baselines.js (in one node process) and return its JSON."""
    node = node_path()
    params["mode"] = mode
    proc = subprocess.run([node, str(NODE_SCRIPT), json.dumps(params)], capture_output=True, text=True,
                          timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"node baseline {mode} failed: {proc.stderr.strip()[-2000:]}")
    return json.loads(proc.stdout)


# -- results -------------------------------------------------------------------

@dataclass
class Row:
    section: str
    variant: str
    unit: str               # "ms", "µs", "jobs/s", "MB/s", "MB", "KB", "s"
    median: float
    p95: float | None = None
    n: int | None = None
    ref: bool = False       # the isolate row the section's ratios are taken against
    note: str = ""
    ratio: float | None = None  # this median ÷ the section's reference median (filled by Suite)


@dataclass
class Target:
    key: str
    section: str
    goal: str               # human text, e.g. "≤ 1.0× Node runInContext"
    measured: float | None  # the ratio or value compared with the threshold
    threshold: float
    op: str                 # "<=" or ">="
    unit: str = "×"
    detail: str = ""
    met: bool | None = None  # None: not measurable here (e.g. no node)
    profile: str = ""        # file name of the profile written for a missed target

    def __post_init__(self):
        if self.measured is not None and self.met is None and not math.isnan(self.measured):
            self.met = self.measured <= self.threshold if self.op == "<=" else self.measured >= self.threshold


@dataclass
class Suite:
    quick: bool
    out_dir: Path
    rows: list[Row] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    plots: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    messages: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    checkpoint_path: Path | None = None  # set in a benchmark's child process

    def checkpoint(self) -> None:
        """Save what was measured so far (a child that gets stuck keeps its earlier results)."""
        if self.checkpoint_path is None:
            return
        data = {"rows": [asdict(r) for r in self.rows], "targets": [asdict(t) for t in self.targets],
                "plots": self.plots, "raw": self.raw, "messages": self.messages, "failed": False}
        tmp = self.checkpoint_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, default=_json_default))
        os.replace(tmp, self.checkpoint_path)

    def guard(self, label: str, limit_s: float, on_stuck: Callable[[], None] | None = None):
        """A context manager: if the block runs past ``limit_s``, it is stuck.

        Then every host thread's stack and (with py-spy) every child process's
        stack go to ``stuck_<label>.txt`` in the output directory, ``on_stuck``
        records what could not be measured, and the process exits, keeping what
        was measured before (the runner goes on with the next benchmark).
        """
        import contextlib
        import threading

        @contextlib.contextmanager
        def block():
            def expire():
                path = self.out_dir / f"stuck_{label}.txt"
                _dump_stacks(path, f"{label}: still running after {limit_s:.0f} s")
                self.messages.append(f"{label} was stuck after {limit_s:.0f} s (a hang, not slowness: "
                                     f"stacks in {path.name}); its remaining measurements are missing")
                if on_stuck:
                    on_stuck()
                self.checkpoint()
                print(f"  STUCK: {label} after {limit_s:.0f} s; stacks in {path}", flush=True)
                os._exit(3)

            timer = threading.Timer(limit_s, expire)
            timer.daemon = True
            timer.start()
            try:
                yield
            finally:
                timer.cancel()
        return block()

    def scale(self, full: int, quick: int) -> int:
        return quick if self.quick else full

    def say(self, text: str) -> None:
        print(text, flush=True)

    def skip(self, text: str) -> None:
        self.messages.append(text)
        print(f"  SKIPPED: {text}", flush=True)

    def add(self, section: str, variant: str, unit: str, samples=None, *, median=None, p95=None,
            n=None, ref=False, note="") -> Row:
        if samples is not None:
            s = summarize(samples)
            median, p95, n = s.get("median", math.nan), s.get("p95"), s.get("n")
        row = Row(section, variant, unit, median, p95, n, ref, note)
        self.rows.append(row)
        self.checkpoint()
        p95_text = "" if row.p95 is None else f"  p95 {fmt(row.p95)}"
        print(f"  {variant:<58} {fmt(row.median):>10} {unit}{p95_text}", flush=True)
        return row

    def target(self, *args, **kwargs) -> Target:
        t = Target(*args, **kwargs)
        self.targets.append(t)
        self.checkpoint()
        return t

    def finish(self) -> None:
        for section in dict.fromkeys(r.section for r in self.rows):
            rows = [r for r in self.rows if r.section == section]
            refs = [r for r in rows if r.ref]
            if not refs:
                continue
            for r in rows:
                if r.unit == refs[0].unit and refs[0].median:
                    r.ratio = r.median / refs[0].median

    # -- output ------------------------------------------------------------------
    def table_md(self) -> str:
        lines = ["| Benchmark | Variant | Median | p95 | Unit | ÷ isolate |", "|---|---|---:|---:|---|---:|"]
        for r in self.rows:
            ratio = "ref" if r.ref else ("" if r.ratio is None else f"{r.ratio:.2f}×")
            variant = r.variant + (f" ({r.note})" if r.note else "")
            lines.append(f"| {r.section} | {variant} | {fmt(r.median)} | "
                         f"{'' if r.p95 is None else fmt(r.p95)} | {r.unit} | {ratio} |")
        return "\n".join(lines)

    def targets_md(self) -> str:
        lines = ["| Target | Goal | Measured | Met | How |", "|---|---|---:|:---:|---|"]
        for t in self.targets:
            measured = "n/a" if t.measured is None else f"{fmt(t.measured)}{t.unit}"
            met = {True: "met", False: "**not met**", None: "n/a"}[t.met]
            how = t.detail + (f"; profile: [{t.profile}]({t.profile})" if t.profile else "")
            lines.append(f"| {t.section} | {t.goal} | {measured} | {met} | {how} |")
        return "\n".join(lines)

    def environment(self) -> dict:
        import psutil
        from importlib import metadata
        try:
            dukpy_version = metadata.version("dukpy")
        except metadata.PackageNotFoundError:  # pragma: no cover
            dukpy_version = None
        return {"python": sys.version.split()[0], "platform": platform.platform(),
                "cpus": os.cpu_count(), "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
                "node": node_version(), "dukpy": dukpy_version, "quick": self.quick}

    def write(self, total_s: float) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        env = self.environment()
        met = sum(1 for t in self.targets if t.met)
        missed = [t for t in self.targets if t.met is False]
        md = [
            "# isolate benchmarks", "",
            f"Run: {time.strftime('%Y-%m-%d %H:%M:%S')}, {'--quick' if self.quick else 'full'} suite, "
            f"{total_s:.0f} s. Machine: {env['cpus']} CPUs, {env['memory_gb']} GB, {env['platform']}; "
            f"Python {env['python']}, node {env['node'] or 'absent'}, dukpy {env['dukpy']}. "
            f"Machine state: **{self.raw.get('machine_state', 'idle')}** (`--busy-core` keeps one core busy).",
            "", "All variants of a benchmark ran side by side in this one run (interleaved rounds). "
            "`÷ isolate` is the variant's median divided by the isolate reference row's median "
            "(same unit): below 1 for a latency or above 1 for a throughput means the variant is "
            "faster than isolate.", "",
            f"## Targets: {met} of {len(self.targets)} met", "", self.targets_md(), "",
            "## Measurements", "", self.table_md(), "",
        ]
        if self.messages:
            md += ["## Skipped", ""] + [f"- {m}" for m in self.messages] + [""]
        if any(t.profile for t in missed):
            md += ["## Profiles of missed targets", ""]
            md += [f"- {t.section}, {t.goal}: [{t.profile}]({t.profile})" for t in missed if t.profile]
            md.append("")
        md += ["## Plots", "", "![throughput vs pool size](throughput_vs_pool_size.png)",
               "![round-trip latency](round_trip_latency.png)", "![timeout overshoot](timeout_overshoot.png)", ""]
        foreign = self.raw.get("foreign_cpu_cores", {})
        md += ["## Time per benchmark", "",
               "Other processes' CPU: average CPU cores used machine-wide by processes outside this run while "
               "the benchmark ran (above ~0.15 on this 2-core machine, its figures are disturbed).", "",
               "| Benchmark | s | other processes' CPU (cores) |", "|---|---:|---:|"]
        md += [f"| {k} | {v:.1f} | {foreign[k]:.2f} |" if k in foreign else f"| {k} | {v:.1f} | |"
               for k, v in self.timings.items()] + [""]
        (self.out_dir / "results.md").write_text("\n".join(md))
        data = {"environment": env, "total_s": total_s, "timings_s": self.timings,
                "rows": [asdict(r) for r in self.rows], "targets": [asdict(t) for t in self.targets],
                "skipped": self.messages, "raw": self.raw}
        (self.out_dir / "results.json").write_text(json.dumps(data, indent=1, default=_json_default))


def _dump_stacks(path: Path, title: str) -> None:
    """Every thread of this process (faulthandler) and every child process (py-spy, non-blocking)."""
    import faulthandler

    import psutil

    with open(path, "w") as f:
        f.write(f"{title}\n\nHost process {os.getpid()}, all threads:\n")
        f.flush()
        faulthandler.dump_traceback(file=f, all_threads=True)
        spy = Path(sys.executable).with_name("py-spy")
        for child in psutil.Process().children(recursive=True):
            f.write(f"\nChild process {child.pid}:\n")
            if spy.exists():
                out = subprocess.run([str(spy), "dump", "--nonblocking", "--pid", str(child.pid)],
                                     capture_output=True, text=True, timeout=20)
                f.write(out.stdout + out.stderr)
            else:
                f.write("  (py-spy not installed)\n")


def _json_default(obj):
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(type(obj).__name__)


def fmt(x: float | None) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    a = abs(x)
    if a >= 1000:
        return f"{x:,.0f}"
    if a >= 100:
        return f"{x:.0f}"
    if a >= 10:
        return f"{x:.1f}"
    if a >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}"


# -- process memory --------------------------------------------------------------

def rss_uss(pid: int) -> tuple[int, int]:
    import psutil
    info = psutil.Process(pid).memory_full_info()
    return info.rss, info.uss


def host_rss() -> int:
    import psutil
    return psutil.Process().memory_info().rss


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (0.0 once it is gone)."""
    import psutil
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return t.user + t.system


class DukpyHost:
    """The minimal object ``dukpy._dukpy.eval_string`` needs, for in-process baselines
    (see workers/engine.py): a fresh QuickJS context and no host functions."""

    def __init__(self):
        from dukpy import _dukpy
        self._ctx = _dukpy.create_context()

    def _check_exported_function_exists(self, name):
        return False

    def _call_python(self, name, args):
        raise RuntimeError("no host functions")
