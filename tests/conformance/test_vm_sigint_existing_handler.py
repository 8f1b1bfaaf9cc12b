# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-sigint-existing-handler.js
#
# Node's child installs a SIGINT listener and a once-listener, runs a
# breakOnSigint script that a SIGINT interrupts (neither listener may run),
# then checks that later SIGINTs reach the listeners again. Here the host is
# this process: Python's SIGINT handler (with a once-handler chained in front
# of it) plays the listeners.
import os
import signal
import threading

import pytest

import isolate

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("method", ["runInThisContext", "runInContext"])
def test_existing_handlers_survive_an_interrupted_script(method):
    counts = {"first": 0, "once": 0}
    previous = signal.getsignal(signal.SIGINT)

    def first(signum, frame):
        counts["first"] += 1

    def once(signum, frame):
        counts["once"] += 1
        signal.signal(signal.SIGINT, first)
        first(signum, frame)

    signal.signal(signal.SIGINT, once)
    try:
        ready = threading.Event()
        threading.Thread(target=lambda: ready.wait(30) and os.kill(os.getpid(), signal.SIGINT),
                         daemon=True).start()
        script = "ready(); while(true) {}"
        with pytest.raises(isolate.ScriptInterruptedError) as info:
            if method == "runInContext":
                isolate.run_in_context(script, isolate.create_context({"ready": ready.set}),
                                       {"breakOnSigint": True})
            else:
                main = isolate.default_pool().main_context
                main["ready"] = ready.set
                try:
                    isolate.run_in_this_context(script, {"breakOnSigint": True})
                finally:
                    del main["ready"]
        assert info.value.code == "ERR_SCRIPT_EXECUTION_INTERRUPTED"
        assert str(info.value) == "Script execution was interrupted by `SIGINT`"
        assert counts == {"first": 0, "once": 0}

        # Later SIGINTs go to the handlers attached before the execution.
        signal.raise_signal(signal.SIGINT)
        assert counts == {"first": 1, "once": 1}
        signal.raise_signal(signal.SIGINT)
        assert counts == {"first": 2, "once": 1}
    finally:
        signal.signal(signal.SIGINT, previous)
