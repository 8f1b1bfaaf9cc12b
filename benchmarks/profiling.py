"""Where the time goes, for a missed target: CPU accounting, py-spy and cProfile.

``profile_workload`` runs a workload three times:

1. alone, reading the OS's CPU time of the host and of each worker before and
   after: CPU per call on each side of the pipe, and the time nobody was on a
   CPU (the wait for the pipe and the scheduler);
2. with py-spy sampling the host and every worker (``--nonblocking``, so the
   processes are not paused): where that CPU goes, by function;
3. under cProfile, the calling thread only, for exact call counts.

The summary (text) goes to ``path``. Without py-spy, or when it cannot attach
(it needs ptrace, i.e. root here), the py-spy part says so and the rest stands.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from .harness import cpu_seconds

PY_SPY_RATE = 2000


def _py_spy() -> str | None:
    candidate = Path(sys.executable).with_name("py-spy")
    return str(candidate) if candidate.exists() else shutil.which("py-spy")


def _start_py_spy(pid: int, out: Path):
    exe = _py_spy()
    if exe is None:
        return None
    return subprocess.Popen([exe, "record", "--pid", str(pid), "--rate", str(PY_SPY_RATE), "--nonblocking",
                             "--format", "raw", "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _stop_py_spy(proc) -> str:
    if proc is None:
        return "py-spy not installed"
    if proc.poll() is not None:
        return f"py-spy exited early: {proc.stderr.read().decode(errors='replace').strip()[-300:]}"
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        return "py-spy did not stop"
    return ""


PROJECT_DIRS = ("isolate/", "workers/", "protocol/", "dukpy/", "msgpack/", "json/")


def _short(frame: str) -> str:
    # "function (path/to/file.py:123)" -> "function (file.py)": grouped by function
    if "(" in frame and frame.endswith(")"):
        name, _, where = frame.rpartition(" (")
        return f"{name} ({os.path.basename(where[:-1].rsplit(':', 1)[0])})"
    return frame


def _ours(frame: str) -> bool:
    # py-spy names files relative to sys.path: "run (isolate/pool.py:12)"
    where = frame.rpartition(" (")[2]
    return where.startswith(PROJECT_DIRS) or any("/" + d in where for d in PROJECT_DIRS)


# Leaf frames that block (the pipe, a queue, a condition). py-spy cannot always tell
# a thread blocked in read() from a running one, so they are marked and set apart.
WAIT_LEAVES = ("MessageStream.read ", "WorkerHandle._await ", "Condition.wait ", "Event.wait ",
               "Dispatcher._run ", "SimpleQueue.get ", "_Spawner._run ", "select ", "poll ", "Queue.get ")


def _is_wait(frame: str) -> bool:
    return frame.startswith(WAIT_LEAVES)


def summarize_collapsed(path: Path, top: int = 12) -> tuple[int, list[str]]:
    """(total samples, text lines) from a py-spy raw (collapsed stacks) file."""
    if not path.exists():
        return 0, ["  (no samples)"]
    own: Counter = Counter()
    incl: Counter = Counter()
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        raw = [f for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not raw:
            continue
        total += n
        own[_short(raw[-1])] += n
        for f in {_short(f) for f in raw if _ours(f)}:
            incl[f] += n
    if not total:
        return 0, ["  (no samples)"]
    waiting = sum(c for f, c in own.items() if _is_wait(f))
    active = total - waiting
    lines = [f"  self (leaf) time, % of samples ({100 * waiting / total:.0f}% are [wait] leaves: blocked on the "
             f"pipe, a queue or a condition); second column: % of the other {active} samples:"]
    lines += [f"    {100 * c / total:5.1f}%  " + ("   [wait]" if _is_wait(f) else f"{100 * c / max(active, 1):8.1f}%")
              + f"  {f}" for f, c in own.most_common(top)]
    lines += ["  inclusive time (isolate, workers, protocol, dukpy, msgpack, json frames):"]
    lines += [f"    {100 * c / total:5.1f}%  {f}" for f, c in incl.most_common(top)]
    return total, lines


def profile_workload(path: Path, title: str, work, calls: int, pool=None, worker_pids=None,
                     extra: list[str] | None = None) -> Path:
    if worker_pids is None:
        worker_pids = pool.worker_pids() if pool is not None else []
    pids = list(worker_pids)
    lines = [f"Profile: {title}", f"calls: {calls}", ""]
    if extra:
        lines += extra + [""]

    # Pass 1: CPU accounting alone (nothing else running: py-spy itself needs a CPU).
    def cpu_now():
        return {"host": cpu_seconds(os.getpid()), **{pid: cpu_seconds(pid) for pid in pids}}

    cpu0 = cpu_now()
    t0 = time.perf_counter()
    work()
    wall = time.perf_counter() - t0
    cpu1 = cpu_now()
    per_call = lambda s: 1e6 * s / calls  # noqa: E731
    host_cpu = cpu1["host"] - cpu0["host"]
    worker_cpu = sum(cpu1[p] - cpu0[p] for p in pids)
    lines += ["CPU accounting (OS figures, first pass, no profiler attached):",
              f"  wall per call:          {per_call(wall):9.1f} µs",
              f"  host CPU per call:      {per_call(host_cpu):9.1f} µs  (all host threads)",
              f"  worker CPU per call:    {per_call(worker_cpu):9.1f} µs  ({len(pids)} worker(s), summed)",
              "  For a sequential workload, wall − host CPU − worker CPU is time no process of the call was"
              " on a CPU (pipe wake-ups, scheduling). These OS figures are the reliable split; py-spy's"
              " shares below are of samples, and py-spy cannot always tell a blocked read() from work"
              " (hence the [wait] marks).", ""]

    # Pass 2: py-spy on host and workers.
    tmp = Path(tempfile.mkdtemp(prefix="isolate-prof-"))
    spies = {"host": (_start_py_spy(os.getpid(), tmp / "host.txt"), tmp / "host.txt")}
    for pid in pids:
        spies[f"worker {pid}"] = (_start_py_spy(pid, tmp / f"w{pid}.txt"), tmp / f"w{pid}.txt")
    time.sleep(0.5)  # py-spy attaches
    work()
    problems = {name: _stop_py_spy(proc) for name, (proc, _) in spies.items()}
    for name, (_, out) in spies.items():
        total, summary = summarize_collapsed(out)
        note = f" — {problems[name]}" if problems[name] else ""
        lines += [f"py-spy, {name}: {total} samples at {PY_SPY_RATE} Hz (threads py-spy saw as idle excluded){note}"]
        lines += summary + [""]
    shutil.rmtree(tmp, ignore_errors=True)

    # Pass 3: cProfile of the calling thread.
    prof = cProfile.Profile()
    prof.enable()
    work()
    prof.disable()
    stream = io.StringIO()
    stats = pstats.Stats(prof, stream=stream).strip_dirs()
    stats.sort_stats("tottime").print_stats(18)
    stats.sort_stats("cumulative").print_stats(18)
    lines += ["cProfile, calling thread only (third pass):", stream.getvalue()]
    path.write_text("\n".join(lines))
    print(f"  wrote {path}", flush=True)
    return path
