# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-sigint.js
#
# Node spawns a child per method and number of SIGINT listeners, and the
# parent sends SIGINT once the script runs. Here the host is this process:
# a thread sends SIGINT once the script has called ready(); the host's own
# SIGINT handlers (0, 1 or 2 "listeners", chained) must not be called, and
# the call ends with ERR_SCRIPT_EXECUTION_INTERRUPTED.
import os
import signal
import threading

import pytest

import isolate

pytestmark = pytest.mark.timeout(60)


def _run(method, ready, options):
    script = "ready(); while(true) {}"
    if method == "runInContext":
        isolate.run_in_context(script, isolate.create_context({"ready": ready.set}), options)
    else:
        main = isolate.default_pool().main_context
        main["ready"] = ready.set
        try:
            isolate.run_in_this_context(script, options)
        finally:
            del main["ready"]


@pytest.mark.parametrize("listeners", [0, 1, 2])
@pytest.mark.parametrize("method", ["runInThisContext", "runInContext"])
def test_break_on_sigint(method, listeners):
    called = []
    previous = signal.getsignal(signal.SIGINT)
    handler = previous
    for _ in range(listeners):
        handler = (lambda inner: lambda signum, frame: called.append(inner))(handler)
        signal.signal(signal.SIGINT, handler)
    try:
        ready = threading.Event()
        threading.Thread(target=lambda: ready.wait(30) and os.kill(os.getpid(), signal.SIGINT),
                         daemon=True).start()
        with pytest.raises(isolate.ScriptInterruptedError) as info:
            _run(method, ready, {"breakOnSigint": True})
        assert info.value.code == "ERR_SCRIPT_EXECUTION_INTERRUPTED"
        assert str(info.value) == "Script execution was interrupted by `SIGINT`"
        assert called == []
        assert signal.getsignal(signal.SIGINT) is handler
    finally:
        signal.signal(signal.SIGINT, previous)
