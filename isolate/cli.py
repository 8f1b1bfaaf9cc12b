"""The ``isolate`` command: run one script, or many jobs from a JSONL file.

``isolate run FILE.js`` runs a file in a fresh context and prints its
completion value as JSON. ``isolate batch JOBS.jsonl -o RESULTS.jsonl`` runs
one job per input line on a pool of workers and writes one record per line
as each job completes (see :func:`isolate.batch.run_batch`), with progress,
a summary, ``--resume`` and a clean Ctrl+C.

Output files are written whole lines at a time (one ``write`` per line, on
an unbuffered descriptor), so an interrupted run leaves complete lines only;
after a SIGKILL at most the last line can be torn, and ``--resume`` drops it.

Exit codes tell a script's failure (1, 3, 4, 5) from bad usage (2: an unknown
option, a file that cannot be read or is not UTF-8) and from isolate's own
failure (6: the workers could not start, a worker broke the protocol, a bug).
``-v`` shows the pool's log (workers started, replaced, recycled), ``-vv``
debug records too; without it only warnings (a worker killed or crashed).
"""

from __future__ import annotations

import array
import json
import logging
import os
import queue
import signal
import stat
import sys
import threading
import time
from typing import Any, Iterator

import click

from .batch import JOB_STATUSES, jsonable

__all__ = ["main"]

# Exit codes (documented in each command's --help and in the README).
EXIT_JS_ERROR = 1      # the script failed: it threw, its promise rejected or never settled, it does not compile
EXIT_USAGE = 2         # bad usage: an option, a file that cannot be read or decoded (click's own code)
EXIT_TIMEOUT = 3
EXIT_MEMORY = 4
EXIT_CRASHED = 5       # the worker running the script died
EXIT_INFRA = 6         # isolate failed: no worker could start, a worker broke the protocol, a bug
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

_EXIT_CODES_HELP = """\
  1    the script failed: it threw (its JavaScript stack is on stderr),
       its promise rejected or never settled, or it does not compile
  2    bad usage: an unknown option or bad value, a missing file, a file
       that cannot be read or is not UTF-8
  3    the script ran past --timeout
  4    the script went over --memory-limit
  5    the worker process running the script crashed
  6    isolate itself failed: the workers could not start, a worker broke
       the protocol, or an internal error (-v shows the traceback)
  130  interrupted (Ctrl+C)"""

log = logging.getLogger("isolate.cli")

# After Ctrl+C, how long jobs already running get to finish (and be recorded)
# before they are abandoned. A second Ctrl+C abandons them at once.
STOP_GRACE_S = 5.0
# Plain (non-terminal) progress: a line per 10 % of the jobs (not more often
# than MIN, so a short batch prints only its summary), or every EVERY seconds.
PLAIN_PROGRESS_EVERY_S = 5.0
PLAIN_PROGRESS_MIN_S = 1.0


# -- shared helpers -----------------------------------------------------------------

def _dumps(obj: Any) -> str:
    """One line of JSON: UTF-8 text where possible, escapes where it must (lone surrogates)."""
    text = json.dumps(obj, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(obj)
    return text


def _size(ctx, param, value):
    if value is None:
        return None
    from .errors import IsolateError
    from .options import parse_size

    try:
        return parse_size(value, param.name)
    except (IsolateError, ValueError, TypeError) as exc:
        raise click.BadParameter(str(exc)) from None


def _worker_size(ctx, param, value):
    if value is None:
        return None
    from .errors import IsolateError
    from .options import parse_size

    try:
        return parse_size(value, param.name, minimum=64 * 1024 * 1024)
    except (IsolateError, ValueError, TypeError) as exc:
        raise click.BadParameter(str(exc)) from None


class _BadFile(click.FileError):
    """A file named on the command line cannot be read or decoded: bad usage, not a script error."""

    exit_code = EXIT_USAGE


def _read_source(path: str) -> str:
    try:
        if path == "-":
            return sys.stdin.buffer.read().decode("utf-8")
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError as exc:
        raise _BadFile(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise _BadFile(path, exc.strerror or str(exc)) from None


def _exit_code_of(exc: BaseException) -> int:
    """The exit code for a failure of the script's run (see _EXIT_CODES_HELP)."""
    from . import errors

    if isinstance(exc, (errors.JSError, errors.PromisePendingError, errors.NestingTooDeepError)):
        return EXIT_MEMORY if isinstance(exc, errors.JSMemoryError) else EXIT_JS_ERROR
    if isinstance(exc, errors.ScriptTimeoutError):
        return EXIT_TIMEOUT
    if isinstance(exc, errors.WorkerMemoryError):
        return EXIT_MEMORY
    if isinstance(exc, errors.WorkerStartError):
        return EXIT_INFRA  # (a WorkerCrashedError with no worker: none could start)
    if isinstance(exc, (errors.WorkerCrashedError, errors.ContextLostError)):
        return EXIT_CRASHED
    if isinstance(exc, (errors.ScriptInterruptedError, KeyboardInterrupt)):
        return EXIT_INTERRUPTED
    return EXIT_INFRA


def _infra_failure(what: str, exc: BaseException) -> None:
    """Say that isolate itself failed; the traceback goes to the log (shown with -v)."""
    click.echo(f"isolate: {what}: {type(exc).__name__}: {exc}", err=True)
    log.info("the traceback of that failure:", exc_info=exc)


def _error_text(exc: BaseException) -> str:
    """What to print for a failure: the JS stack for a JS error, else the message."""
    from .errors import JSError

    if isinstance(exc, JSError):
        return exc.stack or f"{exc.name}: {exc.message}"
    return f"{type(exc).__name__}: {exc}"


TIMEOUT = click.option("--timeout", type=click.IntRange(1, 4294967295), metavar="MS",
                       help="Stop a script that runs longer than MS milliseconds.")
MEMORY_LIMIT = click.option("--memory-limit", callback=_size, metavar="SIZE",
                            help="Cap each context's JavaScript heap, e.g. 64MB (binary units; "
                                 "at least 1MB).")


# -- logging and failures of isolate itself ----------------------------------------------

class _LogToStderr(logging.Handler):
    """The isolate loggers' records on stderr, through the progress bar when one is drawn."""

    def __init__(self):
        super().__init__()
        self.setFormatter(logging.Formatter("%(name)s: %(levelname)s: %(message)s"))
        self.write = lambda text: click.echo(text, err=True)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.write(self.format(record))
        except Exception:  # logging must never take the command down
            self.handleError(record)


_log_handler = _LogToStderr()


def _verbosity(ctx, param, count):
    """-v: INFO records of the isolate loggers (workers started, replaced, recycled);
    -vv: DEBUG too. Without it, warnings only: nothing unless something went wrong."""
    root = logging.getLogger("isolate")
    if _log_handler not in root.handlers:
        root.addHandler(_log_handler)
        if root.level == logging.NOTSET:
            root.setLevel(logging.WARNING)
    if count:
        level = logging.INFO if count == 1 else logging.DEBUG
        root.setLevel(min(root.level, level))


VERBOSE = click.option("-v", "--verbose", count=True, expose_value=False, is_eager=True, callback=_verbosity,
                       help="Log what the pool does on stderr: -v workers started, replaced, recycled; "
                            "-vv debug records too.")


class _Main(click.Group):
    """The command group: an unexpected exception is isolate's failure (exit 6), not the script's."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort,
                KeyboardInterrupt, SystemExit):
            raise
        except Exception as exc:
            _infra_failure("internal error", exc)
            ctx.exit(EXIT_INFRA)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog="""\b
Exit codes (each command's --help has the details):
  0    success          1  the script failed        2  bad usage
  3-5  the script ran out of time or memory, or its worker crashed
  6    isolate itself failed                        130  interrupted""")
@click.version_option(package_name="isolate-vm", prog_name="isolate")
@VERBOSE
def main():
    """Run JavaScript in isolated QuickJS worker processes (Node's vm, for Python).

    Every script runs in a fresh context on a supervised worker process: it
    sees only the standard JavaScript globals and what you pass in, a
    timeout always returns control, and a crash or a memory blow-up costs
    only that worker.
    """


# -- isolate run ----------------------------------------------------------------------

@main.command(short_help="Run one file and print its value as JSON.", epilog="""\b
Examples:
  isolate run script.js
  isolate run script.js --context '{"x": 2}' --timeout 1000
  echo '[1, 2, 3].map(n => n * n)' | isolate run -

\b
Exit codes:
  0    the script completed; its value was printed as JSON
""" + _EXIT_CODES_HELP + "\n")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("--context", "context_json", metavar="JSON", default=None,
              help="A JSON object whose properties become the script's globals.")
@TIMEOUT
@MEMORY_LIMIT
@VERBOSE
def run(file, context_json, timeout, memory_limit):
    """Run FILE (- for stdin) in a fresh context and print its completion value as JSON.

    The completion value is the value of the last expression statement, as
    with eval. undefined, NaN and Infinity print as null; a promise prints
    the value it settled with (a rejected one is an error).
    """
    from . import errors
    from .handles import JSPromise
    from .pool import Pool

    sandbox: dict = {}
    if context_json is not None:
        try:
            sandbox = json.loads(context_json)
        except (ValueError, RecursionError) as exc:  # RecursionError: nested past Python's limit
            raise click.BadParameter(f"not JSON: {exc}", param_hint="'--context'") from None
        if not isinstance(sandbox, dict):
            raise click.BadParameter(f"must be a JSON object, got {type(sandbox).__name__}",
                                     param_hint="'--context'")
    code = _read_source(file)
    filename = "stdin" if file == "-" else file
    options: dict = {"filename": filename}
    if timeout is not None:
        options["timeout"] = timeout
    if memory_limit is not None:
        options["memory_limit"] = memory_limit
    # Ctrl+C stops the script (ScriptInterruptedError) instead of raising in Python.
    options["break_on_sigint"] = threading.current_thread() is threading.main_thread()

    code_out = 0
    try:
        pool = Pool(size=1, spare_workers=0)
    except errors.IsolateError as exc:
        _infra_failure("could not start a worker", exc)
        sys.exit(EXIT_INFRA)
    with pool:
        try:
            value = pool.run_in_new_context(code, sandbox, **options)
            if isinstance(value, JSPromise):
                value = value.result()
            line = _dumps(jsonable(value))
        except (errors.IsolateError, KeyboardInterrupt) as exc:
            code_out = _exit_code_of(exc)
            if isinstance(exc, errors.PromisePendingError):
                click.echo("isolate: the script's promise never settled", err=True)
            elif isinstance(exc, (errors.JSMemoryError, errors.WorkerMemoryError)):
                click.echo(_error_text(exc), err=True)
                click.echo("isolate: the script went over its memory limit", err=True)
            elif code_out == EXIT_JS_ERROR:
                click.echo(_error_text(exc), err=True)
            elif code_out == EXIT_INFRA:
                _infra_failure("the run failed", exc)
            elif not isinstance(exc, KeyboardInterrupt):
                click.echo(f"isolate: {exc}", err=True)
        else:
            click.echo(line)
    sys.exit(code_out)


# -- isolate batch --------------------------------------------------------------------

def _id_key(job_id: Any) -> str:
    return json.dumps(job_id, sort_keys=True)


def _scan_results(path: str) -> tuple[set[str], int, int]:
    """Ids recorded in an existing results file; drops a torn last line.

    Returns (ids, torn bytes dropped, corrupt complete lines seen).
    """
    done: set[str] = set()
    good_end = 0
    corrupt = 0
    torn = 0
    with open(path, "rb") as f:
        for line in f:
            if not line.endswith(b"\n"):
                torn = len(line)  # the last line, cut short (e.g. by SIGKILL)
                break
            good_end += len(line)
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                corrupt += 1
                continue
            if isinstance(record, dict) and "id" in record:
                done.add(_id_key(record["id"]))
            else:
                corrupt += 1
    if torn:
        os.truncate(path, good_end)
    return done, torn, corrupt


def _count_lines(path: str) -> int | None:
    """Non-blank lines of a regular file (streamed), or None for a pipe or stdin."""
    if path == "-":
        return None
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None
        n = 0
        with open(path, "rb") as f:
            for line in f:
                if line.strip():
                    n += 1
        return n
    except OSError:
        return None


def _percentile(sorted_values, q: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, int(round(q * len(sorted_values) + 0.5)) - 1))
    return sorted_values[index]


def _fmt_duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m:02d}:{s:02d}"


class _Progress:
    """A tqdm bar on a terminal; plain periodic lines otherwise."""

    def __init__(self, total: int | None, counts: dict, enabled: bool):
        self.total = total
        self.counts = counts
        self.done = 0
        self.start = time.monotonic()
        self.bar = None
        self.enabled = enabled
        self.last_line = self.start
        self.last_decile = 0
        self.last_postfix = 0.0
        if enabled and sys.stderr.isatty():
            from tqdm import tqdm

            try:
                sized = os.get_terminal_size(sys.stderr.fileno()).columns > 0
            except OSError:
                sized = False
            # A terminal that reports no size (a bare pty) gets a fixed one:
            # tqdm would otherwise draw nothing.
            self.bar = tqdm(total=total, unit="job", file=sys.stderr, dynamic_ncols=sized,
                            ncols=None if sized else 80, nrows=None if sized else 24,
                            smoothing=0.05, mininterval=0.2, desc="isolate batch")
            _log_handler.write = self.write  # log records above the bar, not through it

    def _status_text(self) -> str:
        return " ".join(f"{s} {n}" for s, n in self.counts.items() if n or s == "ok")

    def update(self) -> None:
        self.done += 1
        if not self.enabled:
            return
        now = time.monotonic()
        if self.bar is not None:
            self.bar.update(1)
            if now - self.last_postfix >= 0.2:
                self.last_postfix = now
                self.bar.set_postfix_str(self._status_text(), refresh=False)
            return
        decile = (10 * self.done // self.total) if self.total else 0
        since = now - self.last_line
        if (decile > self.last_decile and since >= PLAIN_PROGRESS_MIN_S) or since >= PLAIN_PROGRESS_EVERY_S:
            self.last_decile = decile
            self.plain_line(now)

    def tick(self) -> None:
        """Called while waiting: keeps plain lines coming on a slow batch."""
        if self.enabled and self.bar is None and time.monotonic() - self.last_line >= PLAIN_PROGRESS_EVERY_S:
            self.plain_line(time.monotonic())
        elif self.bar is not None:
            self.bar.refresh()

    def plain_line(self, now: float) -> None:
        self.last_line = now
        elapsed = max(now - self.start, 1e-9)
        rate = self.done / elapsed
        if self.total:
            pct = min(100.0, 100.0 * self.done / self.total)
            eta = (self.total - self.done) / rate if rate > 0 else float("inf")
            eta_text = _fmt_duration(eta) if eta != float("inf") else "?"
            head = f"[{pct:3.0f}%] {self.done}/{self.total} jobs"
            tail = f", ETA {eta_text}"
        else:
            head, tail = f"{self.done} jobs", ""
        self.write(f"isolate batch: {head}, {rate:.0f} jobs/s{tail} ({self._status_text()})")

    def write(self, text: str) -> None:
        if self.bar is not None:
            self.bar.write(text, file=sys.stderr)
        else:
            click.echo(text, err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(self._status_text(), refresh=False)
            self.bar.close()
            self.bar = None
            _log_handler.write = lambda text: click.echo(text, err=True)


class _Output:
    """The results file: one unbuffered write per line, so lines are never split by us."""

    def __init__(self, path: str, append: bool):
        self.path = path
        try:
            self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | (os.O_APPEND if append else os.O_TRUNC), 0o644)
        except OSError as exc:
            raise _BadFile(path, exc.strerror or str(exc)) from None

    def write_record(self, record: dict) -> None:
        if "value" in record:
            record = dict(record, value=jsonable(record["value"]))
        data = (_dumps(record) + "\n").encode("utf-8")
        view = memoryview(data)
        while view:
            written = os.write(self.fd, view)
            view = view[written:]

    def close(self) -> None:
        os.close(self.fd)


class _Signals:
    """SIGINT/SIGTERM set flags instead of raising, so nothing is torn mid-write.

    The first signal asks to stop (no new jobs; running ones get a grace),
    the second to abandon the running jobs at once.
    """

    def __init__(self):
        self.stop = threading.Event()
        self.abandon = threading.Event()
        self.signum: int | None = None
        self._previous: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.stop.is_set():
            self.abandon.set()
        else:
            self.signum = signum
            self.stop.set()

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


_DONE = object()


class _Failed:
    def __init__(self, exc: BaseException):
        self.exc = exc


@main.command(short_help="Run many jobs from a JSONL file, one record per job.", epilog="""\b
Examples:
  # one job per line: {"id": 1, "code": "6 * 7"}
  isolate batch jobs.jsonl -o results.jsonl --timeout 1000
  # the same script over many inputs: {"id": 1, "context": {"order": {...}}}
  isolate batch orders.jsonl --script transform.js -o out.jsonl --workers 4
  # continue an interrupted run where it stopped
  isolate batch orders.jsonl --script transform.js -o out.jsonl --resume

\b
Each output line is a record:
  {"id": ..., "status": "ok", "value": ..., "wall_ms": 1.2, "cpu_ms": 0.9,
   "memory": 160234, "pid": 4242}
status is one of ok, error (the script threw; "error" holds name, message
and stack), timeout, memory, crashed (the worker died), invalid (the line
is not JSON or lacks a field; its id is "line N" when it has none).

\b
A line whose id an earlier line already has is not run: it gets an
"invalid" record (id "line N") naming the first line with that id, so that
every id has exactly one record.

\b
Exit codes:
  0    every job has a record (whatever its status)
  1    --script does not compile (no job ran)
  2    bad usage: an unknown option or bad value, a file that cannot be read
       or is not UTF-8, an output that cannot be written
  6    isolate itself failed: the workers could not start, or the run broke
       off (-v shows the traceback)
  130  interrupted by Ctrl+C (143 for SIGTERM): the output holds complete
       lines only; run again with --resume to finish
""")
@click.argument("jobs_file", metavar="JOBS.jsonl", type=click.Path(exists=True, dir_okay=False, allow_dash=True))
@click.option("-o", "--output", required=True, metavar="RESULTS.jsonl",
              type=click.Path(dir_okay=False, writable=True),
              help="Where the records go, one JSON line per job, in completion order.")
@click.option("--script", "script_path", metavar="FILE.js", type=click.Path(exists=True, dir_okay=False),
              help='Run this script for every job; each job is {"id", "context"} and its context '
                   "becomes the script's globals.")
@click.option("-w", "--workers", type=click.IntRange(1, 1024), metavar="N",
              help="Worker processes (default: one per CPU).")
@TIMEOUT
@MEMORY_LIMIT
@click.option("--worker-memory-limit", callback=_worker_size, metavar="SIZE",
              help="Kill a worker whose RSS passes SIZE (its job is recorded as memory); at least 64MB.")
@click.option("--retries", type=click.IntRange(0, 100), default=0, show_default=True, metavar="N",
              help="Run a job again when its worker crashed, up to N times.")
@click.option("--resume", is_flag=True,
              help="Keep the records already in the output and skip their ids "
                   "(without it the output is overwritten).")
@click.option("--progress/--no-progress", default=True, show_default=True,
              help="Progress on stderr: a bar on a terminal, a line per 10% otherwise.")
@click.option("--cluster", metavar="ADDRESS",
              help="Run on a Dask cluster: a scheduler address (tcp://host:8786), or local:N for a "
                   "local cluster of N processes; --workers is then per Dask worker. Needs the "
                   "extra isolate-vm[dask].")
@VERBOSE
@click.pass_context
def batch(click_ctx, jobs_file, output, script_path, workers, timeout, memory_limit,
          worker_memory_limit, retries, resume, progress, cluster):
    """Run every job of JOBS.jsonl (- for stdin) and write one record per job to RESULTS.jsonl.

    Each job runs in a fresh context on a pool of worker processes. The input
    is read as the jobs are started (it is never loaded whole); records are
    written and flushed as the jobs complete. A job's failure never stops the
    batch. At the end a summary goes to stderr: counts per status, p50/p95
    wall time, jobs per second.

    Ctrl+C stops cleanly: no new job starts, running jobs get a few seconds
    to finish (Ctrl+C again abandons them), and the output keeps complete
    lines only. --resume then finishes the work, each id exactly once.
    """
    from .errors import IsolateError
    from .pool import Pool

    started = time.monotonic()
    if jobs_file != "-" and os.path.exists(output) and os.path.samefile(jobs_file, output):
        raise click.BadParameter("the output would overwrite the jobs file", param_hint="'-o'")
    source = _read_source(script_path) if script_path else None

    done: set[str] = set()
    if resume and os.path.exists(output):
        try:
            done, torn, corrupt = _scan_results(output)
        except OSError as exc:
            raise _BadFile(output, exc.strerror or str(exc)) from None
        note = f"isolate batch: resuming: {len(done)} ids already in {output}"
        if torn:
            note += f"; dropped a torn last line ({torn} bytes)"
        if corrupt:
            note += f"; {corrupt} unreadable lines kept as they are"
        click.echo(note, err=True)
    lines = _count_lines(jobs_file)
    total = max(0, lines - len(done)) if lines is not None else None

    counts = {status: 0 for status in JOB_STATUSES}
    walls = array.array("d")
    skipped = 0
    retried = 0
    interrupted = False
    abandoned = False  # stopped waiting for jobs still running (they get no record)

    with _Signals() as signals:
        try:
            pool = (_cluster_pool(cluster, workers, worker_memory_limit) if cluster is not None
                    else Pool(size=workers, worker_memory_limit=worker_memory_limit))
        except IsolateError as exc:
            _infra_failure("could not start the workers", exc)
            click_ctx.exit(EXIT_INFRA)
        records: queue.Queue = queue.Queue(maxsize=10_000)
        with pool:
            if source is not None:
                problem, exit_code = _check_script(pool, source, script_path)
                if problem:
                    click.echo(problem, err=True)
                    click_ctx.exit(exit_code)
            # Opened (and, without --resume, emptied) only once the run can start.
            out = _Output(output, append=resume)

            def invalid(line_no: int, message: str) -> dict:
                return {"id": f"line {line_no}", "status": "invalid", "line": line_no,
                        "error": {"name": "InvalidJob", "message": message, "stack": ""}}

            # The first line of each id: a later line with the same id is reported, never run.
            first_line: dict[str, int] = {}

            def jobs() -> Iterator[dict]:
                nonlocal skipped
                stream = sys.stdin.buffer if jobs_file == "-" else open(jobs_file, "rb")
                try:
                    for line_no, raw in enumerate(stream, 1):
                        if signals.stop.is_set():
                            return
                        if not raw.strip():
                            continue
                        try:
                            job = json.loads(raw)
                        except (ValueError, RecursionError) as exc:
                            if _id_key(f"line {line_no}") in done:
                                skipped += 1
                            else:
                                records.put(invalid(line_no, f"line {line_no} is not JSON: {exc}"))
                            continue
                        if not isinstance(job, dict) or "id" not in job:
                            if _id_key(f"line {line_no}") in done:
                                skipped += 1
                            elif not isinstance(job, dict):
                                records.put(invalid(line_no, f"a job must be a JSON object, got {type(job).__name__}"))
                            else:
                                records.put(invalid(line_no, 'a job needs an "id"'))
                            continue
                        key = _id_key(job["id"])
                        first = first_line.setdefault(key, line_no)
                        if first != line_no:
                            if _id_key(f"line {line_no}") in done:
                                skipped += 1
                            else:
                                records.put(invalid(line_no, f"duplicate id {_dumps(job['id'])[:200]}: line "
                                                             f"{first} has it; this line is not run"))
                            continue
                        if done and key in done:
                            skipped += 1
                            continue
                        if source is not None:
                            job = {"id": job["id"], "code": source, "context": job.get("context")}
                            if job["context"] is None:
                                del job["context"]
                        yield job
                finally:
                    if stream is not sys.stdin.buffer:
                        stream.close()

            def produce() -> None:
                try:
                    for record in pool.run_batch(jobs(), timeout=timeout, memory_limit=memory_limit,
                                                 retries=retries, ordered=False, filename=script_path):
                        records.put(record)
                except BaseException as exc:  # reported by the main thread
                    records.put(_Failed(exc))
                else:
                    records.put(_DONE)

            prog = _Progress(total, counts, progress)
            producer = threading.Thread(target=produce, name="isolate-batch-producer", daemon=True)
            producer.start()
            stop_deadline = None
            failure = None
            while True:
                if signals.abandon.is_set():
                    abandoned = True
                    break
                if signals.stop.is_set():
                    if stop_deadline is None:
                        interrupted = True
                        stop_deadline = time.monotonic() + STOP_GRACE_S
                        prog.write("isolate batch: stopping: no new jobs; waiting for running jobs "
                                   f"(up to {STOP_GRACE_S:.0f} s; Ctrl+C again to abandon them)")
                    elif time.monotonic() >= stop_deadline:
                        abandoned = True
                        break
                try:
                    item = records.get(timeout=0.1)
                except queue.Empty:
                    prog.tick()
                    continue
                if item is _DONE:
                    break
                if isinstance(item, _Failed):
                    failure = item.exc
                    break
                out.write_record(item)
                counts[item.get("status", "invalid")] = counts.get(item.get("status", "invalid"), 0) + 1
                if item.get("retried"):
                    retried += 1
                if isinstance(item.get("wall_ms"), (int, float)):
                    walls.append(item["wall_ms"])
                prog.update()
            interrupted = signals.stop.is_set()
            prog.close()
            out.close()
            # Leaving `with pool` closes it: running jobs are abandoned, workers end.
        if failure is not None:
            _infra_failure("isolate batch: the run failed", failure)

    elapsed = time.monotonic() - started
    _summary(counts, walls, elapsed, skipped, output, interrupted, abandoned, retried)
    if failure is not None:
        click_ctx.exit(EXIT_INFRA)
    if interrupted:
        click_ctx.exit(EXIT_TERMINATED if signals.signum == signal.SIGTERM else EXIT_INTERRUPTED)


def _cluster_pool(address: str, workers, worker_memory_limit):
    """A DaskPool for --cluster (isolate.dask); a missing extra is a usage error."""
    try:
        from .dask import open_for_cli
    except ImportError as exc:
        raise click.UsageError(f"--cluster: {exc}") from None
    from .errors import InvalidArgTypeError, InvalidArgValueError, OutOfRangeError

    try:
        return open_for_cli(address, size=workers, worker_memory_limit=worker_memory_limit)
    except (InvalidArgTypeError, InvalidArgValueError, OutOfRangeError) as exc:  # local:0: bad usage
        raise click.UsageError(f"--cluster: {exc}") from None


def _check_script(pool, source: str, path: str) -> tuple[str | None, int]:
    """A syntax check of the batch script on the batch's own pool, without running it
    (``Script`` compiles only; the workers keep the compiled script for the jobs).
    Returns (what to say, exit code), or (None, 0)."""
    from .api import Script
    from .errors import IsolateError, JSSyntaxError

    try:
        if hasattr(pool, "check_script"):  # a DaskPool (--cluster): checked on a Dask worker
            pool.check_script(source, path)
        else:
            Script(source, filename=path, pool=pool)
    except JSSyntaxError as exc:
        return f"isolate batch: {path} does not compile:\n{_error_text(exc)}", EXIT_JS_ERROR
    except IsolateError as exc:
        log.info("the traceback of that failure:", exc_info=exc)
        return f"isolate batch: could not check {path}: {type(exc).__name__}: {exc}", _exit_code_of(exc)
    return None, 0


def _summary(counts, walls, elapsed, skipped, output, interrupted, abandoned, retried) -> None:
    n = sum(counts.values())
    rate = n / elapsed if elapsed > 0 else 0.0
    state = "interrupted after" if interrupted else "done:"
    lines = [f"isolate batch: {state} {n} jobs in {elapsed:.1f} s ({rate:.0f} jobs/s)"]
    lines.append("  status   " + "  ".join(f"{s} {c}" for s, c in counts.items()))
    if walls:
        ordered = sorted(walls)
        lines.append(f"  wall_ms  p50 {_percentile(ordered, 0.5):.1f}  p95 {_percentile(ordered, 0.95):.1f}"
                     f"  max {ordered[-1]:.1f}")
    if retried:
        lines.append(f"  retried  {retried} jobs after a worker crash")
    if skipped:
        lines.append(f"  skipped  {skipped} ids already in the output")
    if interrupted:
        note = "running jobs were abandoned; " if abandoned else ""
        lines.append(f"  {note}run again with --resume to finish")
    lines.append(f"  output   {output}")
    click.echo("\n".join(lines), err=True)


if __name__ == "__main__":  # pragma: no cover
    main()
