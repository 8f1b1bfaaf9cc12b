"""Fresh-context jobs sent to a worker in groups: one message for up to GROUP_SIZE jobs.

``map`` and ``run_batch`` run many small jobs, each in a fresh context. Sent
one per request, each job costs the host a request, a reply and three thread
hand-offs, which cost more than the job. Here a :class:`JobGroup` goes to a
worker as one ``run_jobs`` request (workers/jobs.py); the worker answers each
job as its own msgid the moment it ends, and the reader thread resolves that
job's future with the raw answer at once; the consumer decodes it
(:func:`finish_job`), as ``Context._run_new`` would have.

Each job keeps what it had alone:

* its timeout: the group's kill deadline counts from the previous job's
  answer (the scheduler moves it on each answer), and the worker starts a job
  only if the previous one ended within its timeout plus half the kill grace;
* a worker lost mid-group: the jobs it answered keep their answers, the one
  it had started (the shared cell names it) fails as a lone call would (the
  overrun one with the kill's ScriptTimeoutError), and the ones it never
  started run on another worker: never twice;
* cancelling a job's future: never sent if the group has not gone yet,
  answered without running if the worker had not started it, else
  interrupted, then its worker killed after the grace, as any call.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

from .protocol import Response
from .protocol.codec import peek

from .context import Context, _reply, script_params
from .errors import (
    ContextLostError, IsolateError, JSError, PoolClosedError, ScriptInterruptedError, ScriptNotCached,
    ScriptTimeoutError, display_error,
)
from .scheduler import ANYWHERE, CallState
from .scripts import ScriptSource

if TYPE_CHECKING:
    from .futures import Future
    from .supervisor import WorkerHandle

__all__ = ["GROUP_SIZE", "Job", "JobGroup", "run_group", "finish_job"]

GROUP_SIZE = 16  # jobs per message: host CPU per job falls ~5x by 16; more only delays the first answer


class Job:
    """One fresh-context run: its Context (blank until answered) and its future."""

    __slots__ = ("future", "context", "context_params", "script", "options", "msgid", "answered",
                 "worker", "sent", "compile_opts", "wall_ms",
                 "group", "stop_asked")

    def __init__(self, future: "Future", context: Context, context_params: dict, script: ScriptSource,
                 options: dict, compile_opts):
        self.future = future
        self.context = context
        self.context_params = context_params
        self.script = script
        self.options = options
        self.compile_opts = compile_opts
        self.msgid = 0
        self.answered = False
        self.worker: "WorkerHandle | None" = None
        self.sent = False        # its future is RUNNING (set once, whatever the attempt)
        self.wall_ms: float | None = None  # from its start (the answer before it) to its answer
        self.group: "JobGroup | None" = None
        self.stop_asked = False  # its future was cancelled after it was sent


class JobGroup:
    """The jobs of one ``run_jobs`` request (the scheduler's hooks: reserve, owns, on_answer, lost)."""

    def __init__(self, jobs: list[Job]):
        self.jobs = jobs
        self.first = 0
        self.last = -1
        self.worker: "WorkerHandle | None" = None
        self.stopped_at: int | None = None   # the msgid the worker had started when it was lost
        self.overrun: Job | None = None      # the job whose deadline the kill ladder enforced
        self.lost = threading.Event()
        self._by_msgid: dict[int, Job] = {}
        self._clock = 0.0  # when the job running now started, as the host sees it

    # -- scheduler hooks (reserve runs under the scheduler's lock) --------------------------
    def reserve(self, worker: "WorkerHandle") -> None:
        """Give each job a msgid of its own on ``worker``, after the group's."""
        self.worker = worker
        self._by_msgid = {}
        for job in self.jobs:
            job.msgid = worker.next_msgid()
            job.worker = worker
            job.group = self
            self._by_msgid[job.msgid] = job
        self.first, self.last = self.jobs[0].msgid, self.jobs[-1].msgid
        self._clock = time.monotonic()

    def owns(self, msgid: int) -> bool:
        return self.first <= msgid <= self.last

    def on_answer(self, response: Response) -> None:
        """A job's answer (reader thread): its future gets it raw, decoded by whoever reads it."""
        job = self._by_msgid.get(response.msgid)
        if job is None or job.answered:
            return
        job.answered = True
        now = time.monotonic()
        job.wall_ms, self._clock = (now - self._clock) * 1000.0, now
        following = self._by_msgid.get(response.msgid + 1)  # msgids are consecutive in a group
        if following is not None and following.stop_asked and not following.answered:
            _signal_stop(following)  # its turn now: the worker answers it without running it
        if not job.future.done():
            try:
                job.future.set_result(response)
            except Exception:  # cancelled meanwhile: the answer goes nowhere
                pass

    def note_overrun(self) -> None:
        """The kill ladder fires for the job running now: the first one not answered."""
        self.overrun = next((j for j in self.jobs if not j.answered and j.sent), None)

    def on_lost(self, started_msgid: int) -> None:
        self.stopped_at = started_msgid
        self.lost.set()

    # -- the request ----------------------------------------------------------------------
    def params(self, worker: "WorkerHandle") -> list:
        jobs = []
        keys_sent: set = set()
        for job in self.jobs:
            if not job.sent:
                if not job.future.set_running_or_notify_cancel():
                    job.answered = True  # cancelled before it went: it never runs
                    continue
                job.sent = True
                job.future._stop_running = lambda job=job: _stop_job(job)
            elif job.future.done():
                job.answered = True
                continue
            code, options = script_params(worker, job.script, job.options)
            if code is not None and job.script.key in keys_sent and "bytecode" not in options:
                code = None  # the worker caches it by key from the job before (a failed compile:
                # the job after gets ScriptNotCached and runs alone, with the code)
            keys_sent.add(job.script.key)
            job.context._worker = worker
            jobs.append([job.msgid, job.context_params, code, options])
        slack_ms = worker.scheduler.limits.kill_grace_s * 500.0  # half the grace, in ms
        return [jobs, {"slack_ms": slack_ms}]


def _stop_job(job: Job) -> None:
    """A sent job's future was cancelled: stop it when its turn comes (or now, if it has).

    The shared cell names one request to stop, so it is written for the job
    running or next to run only; a later job is stopped when the one before
    it answers (JobGroup.on_answer), so cancelling many never un-names one.
    """
    job.stop_asked = True
    group = job.group
    if group is None or job.answered:
        return
    before = group._by_msgid.get(job.msgid - 1)
    if before is None or before.answered:
        _signal_stop(job)


def _signal_stop(job: Job) -> None:
    """Name ``job`` in the cell and signal; kill its worker if it still runs it after the grace."""
    worker = job.worker
    if worker is None or job.answered:
        return
    worker.cancel(job.msgid)
    grace = worker.scheduler.limits.kill_grace_s

    def kill_if_still_running():
        if not job.answered and worker.started_msgid() == job.msgid:
            worker.kill()

    timer = threading.Timer(grace, kill_if_still_running)
    timer.daemon = True
    timer.start()


def run_group(pool, jobs: list[Job], timeout_ms, queue_timeout_ms) -> None:
    """Run ``jobs`` (a dispatcher thread): every job's future resolves, whatever happens."""
    try:
        _run_group(pool, jobs, timeout_ms, queue_timeout_ms)
    except BaseException as exc:  # a bug here must not leave a future unresolved
        _fail([j for j in jobs if not j.future.done()], exc)
        raise
    finally:
        # Every job is answered: its group is of no more use to it. A job and its
        # group refer to each other, so left linked each job (its context, its
        # reply) would wait for the cyclic garbage collector instead of going
        # when the caller drops it.
        for job in jobs:
            job.group = None


def _run_group(pool, jobs: list[Job], timeout_ms, queue_timeout_ms) -> None:
    scheduler = pool._scheduler
    while jobs:
        group = JobGroup(jobs)
        try:
            call = scheduler.submit(ANYWHERE, "run_jobs", group.params, timeout_ms=timeout_ms,
                                    queue_timeout_ms=queue_timeout_ms, group=group)
        except BaseException as exc:  # the pool closed: nothing of this group ever ran
            _fail(jobs, exc)
            return
        error: BaseException | None = None
        try:
            scheduler.wait(call)
        except BaseException as exc:
            error = exc
        rest = [j for j in jobs if not j.answered and not j.future.done()]
        if error is None:
            jobs = rest  # the worker stopped early (a job ended late): these never started
            continue
        if call.state is CallState.DONE or group.worker is None or call.msgid == 0:
            _fail(rest, error)  # answered with an error, or never started: nothing to re-run
            return
        # The worker is gone: which job had it started? (Its answers are all in by then.)
        group.lost.wait(pool.limits.kill_grace_s + pool.limits.start_timeout_s + 5.0)
        stopped = group.stopped_at
        again = []
        for job in rest:
            if stopped is not None and job.msgid > stopped:
                again.append(job)  # never started: it runs elsewhere
            elif job is group.overrun:
                _fail([job], error)
            elif isinstance(error, (ScriptTimeoutError, ScriptInterruptedError)):
                _fail([job], ContextLostError(f"its worker {group.worker.pid} was killed: "
                                              "a script on it overran its timeout"))
            else:
                _fail([job], error)
        if isinstance(error, PoolClosedError):
            _fail(again, error)
            return
        jobs = again


def _fail(jobs: list[Job], error: BaseException) -> None:
    for job in jobs:
        job.answered = True
        if not job.future.done():
            try:
                job.future.set_exception(error)
            except Exception:
                pass


def finish_job(pool, job: Job, response: Response, stats: bool) -> tuple[Any, Context | None]:
    """A job's answer as ``Context._run_new`` gives it: ``(value, context or None)``."""
    context = job.context
    worker = job.worker
    assert worker is not None  # answered: it was sent to a worker
    scheduler = pool._scheduler

    def decode(raw, needs_finish):
        first = peek(raw, 0) if isinstance(raw, list) or hasattr(raw, "root") else None
        if isinstance(first, int) and not isinstance(first, bool):
            context._id = first
        return context._decode(raw, needs_finish)

    outcome = _Outcome(decode, worker, job.msgid)
    try:
        try:
            result = scheduler._outcome(outcome, response)
            context_id, value, globals_, *rest = _reply(result, "run_new", 3)
        except JSError as exc:
            context._apply_mirror(getattr(exc, "_mirror", None))
            context._last_stats = getattr(exc, "_stats", None)
            if job.compile_opts.display_errors and job.options.get("display_errors", True):
                script = job.script
                display_error(exc, {script.filename: (script.code, script.line_offset, script.column_offset)})
            raise
        except (ScriptTimeoutError, ScriptInterruptedError) as exc:
            kept = exc.__dict__.pop("_kept_context", None)
            if kept is not None:
                context._id = kept
                worker.live_contexts += 1
                context._adopt(worker)
                context._refresh_mirror()  # what the script did before it was stopped stays, as in Node
            elif "_mirror" in exc.__dict__:
                context._apply_mirror(exc.__dict__["_mirror"])
            raise
        except IsolateError as exc:
            context._apply_mirror(exc.__dict__.get("_mirror"))
            raise
        worker.scripts.add(job.script.key)
        context._apply_mirror(globals_)
        context._last_stats = rest[0] if rest else None
        if not context_id:
            return value, None
        worker.live_contexts += 1
        context._adopt(worker)
        return value, context
    finally:
        pool._after_call(worker)


class _Outcome:
    """What Scheduler._outcome reads of a call, for one job of a group."""

    __slots__ = ("decode", "worker", "msgid", "method")

    def __init__(self, decode, worker, msgid):
        self.decode, self.worker, self.msgid, self.method = decode, worker, msgid, "run_new"

