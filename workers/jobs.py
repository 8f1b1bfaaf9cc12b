"""Groups of fresh-context jobs in one request (``run_jobs``).

The host sends a bounded group of ``run_new`` jobs in one message; each job
carries a msgid of its own (the host reserved them after the group's), and
its answer is written as its own Response the moment it ends, so a result
never waits for the rest of its group and a worker that dies mid-group has
already reported every job it finished.

What keeps each job's guarantees:

* A job starts only after the shared cell names it (``note_started``), so
  when the worker dies the host knows which job was running: the ones after
  it never ran and are run elsewhere, never twice.
* Each job runs under its own deadline (``run_new`` as alone), and the next
  job starts only if this one ended in time (within its timeout plus half the
  host's kill grace): past that the host may be killing this worker for it,
  and a job started then could run twice. The rest of the group is left
  unstarted, and the host sends it again.
* A job the host cancelled before it started is answered without running.
"""

from __future__ import annotations

import time
import traceback

from ..protocol import Response, WireError, error_triple

__all__ = ["JobMethods"]

_INTERRUPTED = "Script execution was interrupted by `SIGINT`"


class JobMethods:
    """Mixed into the Worker: the ``run_jobs`` method."""

    def _on_run_jobs(self, jobs: list, options: dict) -> int:
        """Run ``jobs`` (``[[msgid, context_options, code, options], ...]``) one after
        another, answering each as its own msgid; the answer to the group is how
        many jobs were answered (the host sends the rest again)."""
        from .worker import ScriptInterrupted, ScriptTimeout, WorkerError

        group = self._executing[-1]
        slack_ms = float(options.get("slack_ms", 0.0))
        answered = 0
        for job in jobs:
            msgid, context_options, code, run_options = job
            if not isinstance(msgid, int) or msgid <= group:
                raise WorkerError(WireError.INVALID_PARAMS, f"run_jobs: bad job msgid {msgid!r}")
            if self._interrupts.targets(msgid):
                self._respond(Response(msgid, error_triple(WireError.SCRIPT_INTERRUPTED, _INTERRUPTED), None))
                answered += 1
                continue
            self._interrupts.note_started(msgid)
            self._executing[-1] = msgid  # a stop aimed at this job reaches it (see Interrupts)
            start = time.monotonic()
            try:
                response = Response(msgid, None, self._on_run_new(context_options, code, run_options))
            except WorkerError as exc:
                response = Response(msgid, error_triple(exc.code, str(exc), exc.data), None)
            except (ScriptTimeout, ScriptInterrupted) as exc:
                # A stop that reached past run_new (while it set up its context).
                if isinstance(exc, ScriptInterrupted) and exc.target != msgid:
                    raise  # not this job's (cannot happen at top level; kept honest)
                code_ = WireError.SCRIPT_TIMEOUT if isinstance(exc, ScriptTimeout) else WireError.SCRIPT_INTERRUPTED
                text = _INTERRUPTED if code_ is WireError.SCRIPT_INTERRUPTED else "Script execution timed out"
                response = Response(msgid, error_triple(code_, text, None), None)
            except Exception as exc:  # a bug in the worker: this job's answer, the group goes on
                response = Response(msgid, error_triple(
                    WireError.INTERNAL, f"{type(exc).__name__}: {exc}", traceback.format_exc()), None)
            finally:
                self._executing[-1] = group
            self._respond(response)
            self._dropped.clear()  # free the job's runtime now: a group holds one at a time
            answered += 1
            timeout = run_options.get("timeout") if isinstance(run_options, dict) else None
            if timeout is not None and (time.monotonic() - start) * 1000.0 > timeout + slack_ms:
                break  # it ended late: the host may be killing us, start nothing more
        return answered
