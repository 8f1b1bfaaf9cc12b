"""The `isolate` command's exit codes tell a script error (1) from bad usage (2) from isolate's
own failure (6), as --help and the README document (issue 15)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from isolate import errors
from isolate.cli import EXIT_CRASHED, EXIT_INFRA, EXIT_JS_ERROR, EXIT_USAGE, _exit_code_of


def cli(*args, cwd, stdin=None, prelude: str = ""):
    """The command in a fresh interpreter; ``prelude`` runs first (to break isolate on purpose)."""
    code = textwrap.dedent(prelude) + "\nfrom isolate.cli import main\nmain(prog_name='isolate')\n"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=cwd, input=stdin,
                          capture_output=True, timeout=60)


# No zygote can start: the Python it would run does not exist.
NO_WORKERS = "import sys\nsys.executable = '/nonexistent/python'\n"


@pytest.mark.timeout(90)
def test_run_exit_codes(tmp_path):
    (tmp_path / "ok.js").write_text("1\n")
    (tmp_path / "throws.js").write_text("throw new Error('x')\n")
    (tmp_path / "rejects.js").write_text("Promise.reject(new Error('later'))\n")
    (tmp_path / "latin1.js").write_bytes("'caf\xe9'\n".encode("latin-1"))
    assert cli("run", "ok.js", cwd=tmp_path).returncode == 0
    assert cli("run", "throws.js", cwd=tmp_path).returncode == EXIT_JS_ERROR
    rejected = cli("run", "rejects.js", cwd=tmp_path)
    assert rejected.returncode == EXIT_JS_ERROR and b"Error: later" in rejected.stderr
    # A file that is not UTF-8 is bad usage, not a script that threw.
    latin1 = cli("run", "latin1.js", cwd=tmp_path)
    assert latin1.returncode == EXIT_USAGE and b"not UTF-8" in latin1.stderr, latin1.stderr
    assert cli("run", "-", cwd=tmp_path, stdin=b"'\xff'").returncode == EXIT_USAGE
    assert cli("run", tmp_path, cwd=tmp_path).returncode == EXIT_USAGE  # a directory
    # No worker can start: isolate failed, not the script.
    broken = cli("run", "ok.js", cwd=tmp_path, prelude=NO_WORKERS)
    assert broken.returncode == EXIT_INFRA, broken.stderr
    assert b"isolate: could not start a worker: WorkerStartError" in broken.stderr
    # A bug of isolate's own (here: the value printer breaks) is isolate's failure too.
    bug = cli("run", "ok.js", cwd=tmp_path, prelude="""
        import isolate.cli
        def broken(value):
            raise RuntimeError('printer bug')
        isolate.cli.jsonable = broken
    """)
    assert bug.returncode == EXIT_INFRA and b"internal error: RuntimeError: printer bug" in bug.stderr
    assert b"Traceback" not in bug.stderr
    assert b"Traceback" in cli("-v", "run", "ok.js", cwd=tmp_path, prelude="""
        import isolate.cli
        isolate.cli.jsonable = None
    """).stderr  # -v shows it


@pytest.mark.timeout(90)
def test_batch_exit_codes(tmp_path):
    (tmp_path / "jobs.jsonl").write_text('{"id": 1, "context": {}}\n')
    (tmp_path / "ok.js").write_text("1\n")
    (tmp_path / "broken.js").write_text("let = ;\n")
    (tmp_path / "latin1.js").write_bytes("'caf\xe9'\n".encode("latin-1"))
    base = ("batch", "jobs.jsonl", "--no-progress", "--workers", 1)
    assert cli(*base, "-o", "out.jsonl", "--script", "ok.js", cwd=tmp_path).returncode == 0
    assert cli(*base, "-o", "out.jsonl", "--script", "broken.js", cwd=tmp_path).returncode == EXIT_JS_ERROR
    latin1 = cli(*base, "-o", "out.jsonl", "--script", "latin1.js", cwd=tmp_path)
    assert latin1.returncode == EXIT_USAGE and b"not UTF-8" in latin1.stderr
    unwritable = cli(*base, "-o", tmp_path / "no" / "such" / "dir.jsonl", "--script", "ok.js", cwd=tmp_path)
    assert unwritable.returncode == EXIT_USAGE, unwritable.stderr
    broken = cli(*base, "-o", "out.jsonl", "--script", "ok.js", cwd=tmp_path, prelude=NO_WORKERS)
    assert broken.returncode == EXIT_INFRA and b"could not start the workers" in broken.stderr


def test_failures_map_to_their_codes():
    assert _exit_code_of(errors.JSError("x")) == EXIT_JS_ERROR
    assert _exit_code_of(errors.PromisePendingError("p")) == EXIT_JS_ERROR
    assert _exit_code_of(errors.WorkerCrashedError(1, -9)) == EXIT_CRASHED
    assert _exit_code_of(errors.WorkerStartError("no zygote")) == EXIT_INFRA
    assert _exit_code_of(errors.ProtocolViolationError("nonsense")) == EXIT_INFRA
    assert _exit_code_of(errors.UnsupportedError("no memory API")) == EXIT_INFRA


@pytest.mark.timeout(60)
def test_help_documents_the_codes(tmp_path):
    for command in ((), ("run",), ("batch",)):
        text = cli(*command, "--help", cwd=tmp_path).stdout.decode()
        assert "Exit codes" in text and "6 " in text and "isolate itself failed" in text
        assert "bad usage" in text
    assert "not UTF-8" in cli("run", "--help", cwd=tmp_path).stdout.decode()
    assert "duplicate" not in cli("run", "--help", cwd=tmp_path).stdout.decode()
    assert "is not run" in cli("batch", "--help", cwd=tmp_path).stdout.decode()
