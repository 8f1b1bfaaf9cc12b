"""The wheel holds one top-level package, and works installed (not only as an editable checkout)."""

import glob
import os
import subprocess
import sys
import zipfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), REPO],
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    [path] = glob.glob(str(out / "*.whl"))
    return path


@pytest.mark.timeout(300)
def test_the_wheel_has_one_top_level_package(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"isolate"}, tops
    for needed in ("isolate/py.typed", "isolate/workers/bridge.js",
                   "isolate/workers/bridge_stack.js", "isolate/workers/bridge_ops.js",
                   "isolate/protocol/SPEC.md",
                   "isolate/workers/zygote.py", "isolate/protocol/codec.py"):
        assert needed in names, needed


@pytest.mark.timeout(300)
def test_the_installed_package_runs_scripts(wheel, tmp_path):
    # A pure-Python wheel installed is its files unpacked: run from there, away
    # from the repository, with the dependencies this interpreter already has.
    zipfile.ZipFile(wheel).extractall(tmp_path)
    code = ("import sys; sys.path.insert(0, %r); import isolate, isolate.workers; "
            "assert isolate.__file__.startswith(%r), isolate.__file__; "
            "assert isolate.workers.__file__.startswith(%r); "
            "print(isolate.__version__, isolate.run_in_new_context('6 * 7'))") % (
        str(tmp_path), str(tmp_path), str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    version, answer = proc.stdout.split()
    assert answer == "42"
    import isolate

    assert version == isolate.__version__


def test_the_readme_test_command_is_what_ci_runs():
    """The README says its test command is exactly what .ci/run runs: keep them one."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    with open(os.path.join(REPO, ".ci", "run"), encoding="utf-8") as f:
        ci_lines = [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]
    command = ci_lines[-1]
    assert command.startswith("python3 -m venv .venv && "), command
    section = readme.split("Run the tests (this is exactly what `.ci/run` runs):", 1)[1]
    assert section.split("```sh\n", 1)[1].split("\n", 1)[0] == command
