"""``python -m benchmarks [--quick] [--out DIR] [--only NAMES] [--no-profile] [--busy-core]``.

Runs every benchmark (each compares isolate with its baselines side by side
in this one run), prints the tables, writes ``results.md``, ``results.json``
and PNG plots to ``--out`` (default ``benchmarks/results/``), and, for each
missed target, a text profile of the isolate side (``profile_*.txt``).
"""

from __future__ import annotations

import argparse
import importlib
import json
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path

from .harness import HERE, Row, Suite, Target, node_path

BENCHMARKS = ["fresh", "batch", "round_trip", "cpu", "timeouts", "memory", "cold_start", "transfer", "compile",
              "engines"]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[1])
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (< 1 minute), fewer samples")
    parser.add_argument("--out", type=Path, default=HERE / "results", help="output directory (default %(default)s)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--no-profile", action="store_true", help="do not profile missed targets")
    parser.add_argument("--profile", action="store_true", help="profile missed targets even with --quick")
    parser.add_argument("--busy-core", action="store_true",
                        help="keep one CPU core busy (a spinning process pinned to it) for the whole run: "
                             "the machine's other state; a change can win idle and lose here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--child-profile", help=argparse.SUPPRESS)
    parser.add_argument("--child-out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child or args.child_profile:
        return _child(args)

    names = [n.strip() for n in args.only.split(",") if n.strip()] or BENCHMARKS
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    suite = Suite(quick=args.quick, out_dir=out)
    suite.raw["machine_state"] = "one core busy" if args.busy_core else "idle"
    spinner = _spin_one_core() if args.busy_core else None
    try:
        return _run_all(suite, names, args, out)
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()


def _spin_one_core() -> subprocess.Popen:
    """A process that keeps the last CPU busy (pinned, so the other cores stay free)."""
    import os

    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    os.sched_setaffinity(spinner.pid, {max(os.sched_getaffinity(0))})
    return spinner


def _run_all(suite: Suite, names: list[str], args, out: Path) -> int:
    # The spinner of --busy-core is expected load, not disturbance.
    expected_foreign = 1.0 if args.busy_core else 0.0
    if not node_path():
        suite.skip("node not on PATH: every Node baseline is skipped (targets against Node show n/a)")

    start = time.perf_counter()
    owners = {}
    for name in names:
        module = importlib.import_module(f"benchmarks.bench_{name}")
        print(f"\n== {name}: {module.__doc__.strip().splitlines()[0]}", flush=True)
        before = len(suite.targets)
        t0 = time.perf_counter()
        busy0 = _foreign_cpu()
        _in_child(suite, ["--child", name], args)
        suite.timings[name] = time.perf_counter() - t0
        foreign = max(0.0, (_foreign_cpu() - busy0) / suite.timings[name])  # ticks: tiny negatives are noise
        suite.raw.setdefault("foreign_cpu_cores", {})[name] = foreign
        if foreign - expected_foreign > 0.15:
            suite.messages.append(f"{name}: other processes on this machine used {foreign:.2f} of a CPU core on "
                                  f"average while it ran: its absolute figures (and CPU-scaling ratios) are "
                                  f"disturbed; re-run on a quiet machine")
        for t in suite.targets[before:]:
            owners[t.key] = name
    measured = time.perf_counter() - start
    suite.finish()

    missed = [t for t in suite.targets if t.met is False and t.measured is not None]  # a hang has its stacks
    if missed and not args.no_profile and (not args.quick or args.profile):
        print("\n== profiling missed targets", flush=True)
        t0 = time.perf_counter()
        done = {}
        for t in missed:
            module = importlib.import_module(f"benchmarks.bench_{owners[t.key]}")
            canon = getattr(module, "profile_key", lambda k: k)(t.key)
            if canon not in done and hasattr(module, "profile"):
                ok = _in_child(suite, ["--child-profile", f"{owners[t.key]}:{canon}"], args)
                path = out / f"profile_{canon}.txt"
                done[canon] = path.name if ok and path.exists() else ""
            t.profile = done.get(canon, "")
        suite.timings["profiling missed targets"] = time.perf_counter() - t0

    from .plots import draw
    draw(suite, out)
    total = time.perf_counter() - start
    suite.write(total)
    print("\n## Targets\n")
    print(suite.targets_md())
    print("\n## Measurements\n")
    print(suite.table_md())
    met = sum(1 for t in suite.targets if t.met)
    print(f"\n{met} of {len(suite.targets)} targets met. Benchmarks {measured:.0f} s, total {total:.0f} s. "
          f"Wrote {out / 'results.md'}, results.json and plots.", flush=True)
    for m in suite.messages:
        print(f"note: {m}")
    return 0


def _foreign_cpu() -> float:
    """CPU seconds used machine-wide so far by processes outside this run.

    Machine-wide busy time minus this process and its reaped descendants (each
    benchmark child, its workers and node processes are waited for, so their
    CPU time is in ``os.times()``'s children fields once they end).
    """
    import os

    import psutil

    t = psutil.cpu_times()
    busy = t.user + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0) + getattr(t, "nice", 0)
    own = os.times()
    return busy - (own.user + own.system + own.children_user + own.children_system)


def _in_child(suite: Suite, extra: list[str], args) -> bool:
    """Run one benchmark (or profile) in a fresh interpreter and merge what it measured.

    Every benchmark gets a process of its own, so none is measured in a host
    that earlier ones bloated (imported V8 through mini-racer, grew the heap):
    workers are forked from the host, and their RSS and fork time depend on it.
    """
    with tempfile.TemporaryDirectory(prefix="isolate-bench-") as tmp:
        result = Path(tmp) / "suite.json"
        argv = [sys.executable, "-m", "benchmarks", *extra, "--out", str(suite.out_dir), "--child-out", str(result)]
        if args.quick:
            argv.append("--quick")
        try:
            proc = subprocess.run(argv, cwd=str(HERE.parent), timeout=_limit(extra, args.quick) + 30)
            code = proc.returncode
        except subprocess.TimeoutExpired:
            code = "killed after the time limit"
        if not result.exists():
            suite.messages.append(f"{' '.join(extra)}: the child process failed ({code}; a stuck child "
                                  f"prints every thread's stack above)")
            return False
        data = json.loads(result.read_text())
        if code != 0 and not data.get("failed"):
            data["failed"] = True  # stopped early (stuck): what it measured before still counts
    suite.rows += [Row(**r) for r in data["rows"]]
    suite.targets += [Target(**t) for t in data["targets"]]
    for key, value in data["plots"].items():
        if isinstance(value, dict) and isinstance(suite.plots.get(key), dict):
            suite.plots[key].update(value)   # e.g. "throughput": fresh and cpu panels
        else:
            suite.plots[key] = value
    suite.raw.update(data["raw"])
    suite.messages += data["messages"]
    return not data.get("failed")


# A benchmark child that runs longer than this is stuck (a full child takes < 90 s):
# it dumps every thread's stack to stderr and exits, and the suite goes on.
CHILD_LIMIT_S = {False: 300, True: 90}
PROFILE_LIMIT_S = 120


def _limit(extra: list[str], quick: bool) -> int:
    return PROFILE_LIMIT_S if "--child-profile" in extra else CHILD_LIMIT_S[bool(quick)]


def _child(args) -> int:
    import faulthandler

    faulthandler.dump_traceback_later(_limit(["--child-profile"] if args.child_profile else [], args.quick),
                                      exit=True)
    suite = Suite(quick=args.quick, out_dir=args.out.resolve(), checkpoint_path=args.child_out)
    failed = False
    try:
        if args.child:
            importlib.import_module(f"benchmarks.bench_{args.child}").run(suite)
        else:
            name, key = args.child_profile.split(":", 1)
            importlib.import_module(f"benchmarks.bench_{name}").profile(suite, key, suite.out_dir)
    except Exception as exc:  # one broken benchmark must not hide the others
        traceback.print_exc()
        suite.messages.append(f"{args.child or args.child_profile} failed: {type(exc).__name__}: {exc}")
        failed = True
    data = {"rows": [asdict(r) for r in suite.rows], "targets": [asdict(t) for t in suite.targets],
            "plots": suite.plots, "raw": suite.raw, "messages": suite.messages, "failed": failed}
    args.child_out.write_text(json.dumps(data))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
