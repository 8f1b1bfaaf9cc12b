"""Guarantees under adversity, checked on real worker processes driven over their pipes.

Each test forks a worker (``workers.worker.main``, as the supervisor does) with a
shared cancel cell and plays the host itself with ``protocol.MessageStream``:
no isolate.Pool in between, so what is checked is the worker's side of the
interface (protocol/SPEC.md). Nothing sleeps to synchronize: every wait is a
read of the worker's next message, bounded by the test's timeout.
"""

from __future__ import annotations

import mmap
import os
import signal
import struct
import time

import pytest

from isolate.protocol import (
    PROTOCOL_VERSION, ErrorValue, HostFunctionRef, MessageStream, Notification, Request, Response, WireError,
    encode_value, error_triple, finish_values,
)
from isolate.workers.worker import SYNTAX_CHECK_TIMEOUT_MS

MiB = 1024 * 1024
BLOW_UP = "var a = []; while (true) a.push('x'.repeat(1000) + a.length)"


class Failed(Exception):
    """An error response: ``code``, ``message``, ``data`` (decoded)."""

    def __init__(self, code, message, data):
        super().__init__(f"{code}: {message}")
        self.code, self.message, self.data = code, message, data


class WorkerProcess:
    """A forked worker and the host's end of its pipes."""

    def __init__(self, env: dict | None = None, cell_size: int = 16):
        self.cell = mmap.mmap(-1, cell_size)
        to_worker_r, to_worker_w = os.pipe()
        to_host_r, to_host_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the worker
            try:
                from isolate.workers.worker import main

                main(to_worker_r, to_host_w, None, dict(env or {}), None, self.cell)
            finally:
                os._exit(0)
        os.close(to_worker_r)
        os.close(to_host_w)
        self.pid = pid
        self.stream = MessageStream(to_host_r, to_worker_w)
        self.fds = (to_host_r, to_worker_w)
        self.functions: dict = {}   # host function id -> callable(call_msgid, *args)
        self.messages: list = []    # every message read, in order
        self._msgid = 0
        self.stream.write(Request(self.next_msgid(), "hello", [PROTOCOL_VERSION]))
        assert self.read().error is None

    def next_msgid(self) -> int:
        self._msgid += 1
        return self._msgid

    def read(self):
        message = self.stream.read()
        self.messages.append(message)
        return message

    def request(self, method: str, *params, parent: int = 0, msgid: int | None = None):
        """Send a request and wait for its response, serving call_host meanwhile."""
        msgid = self.next_msgid() if msgid is None else msgid
        self.stream.write(Request(msgid, method, [parent, *params]))
        while True:
            message = self.read()
            if isinstance(message, Request) and message.method == "call_host":
                self._serve(message)
                continue
            assert isinstance(message, Response), message  # the worker sends no notifications
            assert message.msgid == msgid, (message, msgid)
            if message.error is not None:
                code, text, data = message.error
                raise Failed(code, text, finish_values(data, message.needs_finish))
            return finish_values(message.result, message.needs_finish)

    def _serve(self, call: Request) -> None:
        _, ctx, function_id, args = call.params
        try:
            result = self.functions[function_id](call.msgid, *finish_values(args, call.needs_finish))
        except Failed as exc:  # a nested request threw in JS: throw it on in the caller's JS
            thrown = exc.data[0] if exc.data else ErrorValue("Error", exc.message)
            self.stream.write(Response(call.msgid, error_triple(
                WireError.HOST_EXCEPTION, exc.message, encode_value(thrown)), None))
            return
        self.stream.write(Response(call.msgid, None, encode_value(result)))

    def notify(self, method: str, *params) -> None:
        self.stream.write(Notification(method, list(params)))

    def started_cell(self) -> int:
        return struct.unpack_from("<q", self.cell, 8)[0]

    def close(self) -> None:
        for fd in self.fds:
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(self.pid, 0)


@pytest.fixture
def worker():
    w = WorkerProcess()
    yield w
    w.close()


def run(w, ctx, code, **options):
    return w.request("run", ctx, code, options)[0]


def assert_out_of_memory(exc: Failed):
    assert exc.code == WireError.JS_EXCEPTION.value, exc
    thrown = exc.data[0]
    assert isinstance(thrown, ErrorValue), thrown
    assert (thrown.name, thrown.message) == ("InternalError", "out of memory"), thrown


def timed(fn):
    start = time.monotonic()
    try:
        fn()
    except Failed as exc:
        return exc, time.monotonic() - start
    raise AssertionError("the request succeeded")


# -- 1. memory limit -------------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_memory_blow_up_then_free_then_blow_up_again(worker):
    ctx = worker.request("create_context", {"memory_limit": 32 * MiB})
    for _ in range(2):
        with pytest.raises(Failed) as info:
            run(worker, ctx, BLOW_UP)
        assert_out_of_memory(info.value)
        assert run(worker, ctx, "a = null; 1") == 1
        assert run(worker, ctx, "[1, 2].map(x => x * 2)") == [2, 4]
    assert worker.request("memory", False)[str(ctx)]["malloc_limit"] == 32 * MiB  # the reserve was given back


@pytest.mark.timeout(60)
def test_memory_blow_up_in_a_getter_read_by_get(worker):
    ctx = worker.request("create_context", {"memory_limit": 32 * MiB})
    run(worker, ctx, "Object.defineProperty(globalThis, 'big', { get() { %s } })" % BLOW_UP)
    with pytest.raises(Failed) as info:
        worker.request("get", ctx, 0, "big", {"timeout": 10_000})
    assert_out_of_memory(info.value)
    assert run(worker, ctx, "a = null; 1") == 1


@pytest.mark.timeout(60)
def test_without_the_c_api_no_context_is_made():
    """There is no second, weaker path (dukpy's own eval left the bridge's entry on the
    global): a worker whose C API is switched off refuses every context, saying why."""
    w = WorkerProcess(env={"ISOLATE_DISABLE_QUICKJS_CTYPES": "1"})
    try:
        for _ in range(2):
            with pytest.raises(Failed) as info:
                w.request("create_context", {})
            assert "cannot run scripts here" in info.value.message, info.value
            assert "ISOLATE_DISABLE_QUICKJS_CTYPES" in info.value.message, info.value
        with pytest.raises(Failed) as info:  # syntax checks need the C API (and a bridge) too
            w.request("check_syntax", 0, "return 1", {})
        assert "ISOLATE_DISABLE_QUICKJS_CTYPES" in info.value.message, info.value
    finally:
        w.close()


@pytest.mark.timeout(60)
def test_throw_null_stays_null_without_a_limit(worker):
    ctx = worker.request("create_context", {})
    with pytest.raises(Failed) as info:
        run(worker, ctx, "throw null")
    assert info.value.data[0] is None


# -- 2a. accessors run under the request's timeout -----------------------------------------

# Traps that loop once `armed` (the handles have to leave the context first).
TRAPS = """
var armed = false;
var trap = (v) => function () { if (armed) for (;;) {} return v; };
Object.defineProperty(globalThis, 'loops', { get: trap(1), set: trap(), configurable: true });
var p = new Proxy(new (class Box {})(), { get: trap(undefined), has: trap(false), set: trap(true), deleteProperty: trap(true),
                        ownKeys: trap([]), getOwnPropertyDescriptor: trap(undefined) });
var thenable = Promise.resolve(1);
Object.defineProperty(thenable, 'constructor', { get: trap(Promise) });
[p, thenable]
"""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method, target, args", [
    ("get", "global", ["loops"]),
    ("set", "global", ["loops", 1]),
    ("get", "proxy", ["x"]),
    ("has", "proxy", ["x"]),
    ("set", "proxy", ["x", 1]),
    ("delete", "proxy", ["x"]),
    ("keys", "proxy", []),
    ("promise_state", "thenable", []),
])
def test_accessors_are_bounded_by_their_timeout(worker, method, target, args):
    ctx = worker.request("create_context", {})
    proxy, thenable = run(worker, ctx, TRAPS)
    run(worker, ctx, "armed = true")
    handle = {"global": 0, "proxy": proxy.handle_id, "thenable": thenable.handle_id}[target]
    error, elapsed = timed(lambda: worker.request(method, ctx, handle, *args, {"timeout": 100}))
    assert error.code == WireError.SCRIPT_TIMEOUT.value, error
    assert elapsed < 2.0, elapsed
    assert run(worker, ctx, "1 + 1") == 2  # the context still answers
    # The old arity (no options) is still accepted.
    assert worker.request("get", ctx, 0, "Math") is not None


# -- 2b. syntax checks run nothing, share nothing --------------------------------------------

@pytest.mark.timeout(60)
def test_syntax_checks_share_no_state_and_never_touch_the_context(worker):
    ctx = worker.request("create_context", {})
    first = "}); globalThis.leak = 1; (function () {"
    second = "}); if (globalThis.leak === 1) for (;;) {} globalThis.touched = 1; (function () {"
    for body in (first, second):
        error, elapsed = timed(lambda: worker.request("check_syntax", ctx, body, {"filename": "c.js"}))
        assert error.code == WireError.JS_EXCEPTION.value
        assert error.data[0].name == "SyntaxError"
        assert elapsed < SYNTAX_CHECK_TIMEOUT_MS / 2000, elapsed  # nothing ran: no loop to wait out
    for body in (first, second):
        with pytest.raises(Failed) as info:
            worker.request("compile_function", ctx, body, [], {"filename": "f.js", "timeout": 5000})
        assert info.value.data[0].name == "SyntaxError"
    assert run(worker, ctx, "[typeof leak, typeof touched]") == ["undefined", "undefined"]


@pytest.mark.timeout(60)
def test_a_wrapper_closing_loop_is_a_syntax_error_in_time(worker):
    ctx = worker.request("create_context", {})
    body = "}); for (;;) {} (function () {"
    error, elapsed = timed(lambda: worker.request("compile_function", ctx, body, ["a"], {"timeout": 5000}))
    assert error.code == WireError.JS_EXCEPTION.value
    thrown = error.data[0]
    assert (thrown.name, thrown.message) == ("SyntaxError", "Unexpected token '}'")
    assert elapsed < SYNTAX_CHECK_TIMEOUT_MS / 1000 + 1, elapsed
    assert run(worker, ctx, "1 + 1") == 2


@pytest.mark.timeout(60)
def test_proper_bodies_still_compile(worker):
    ctx = worker.request("create_context", {})
    fn = worker.request("compile_function", ctx, "return a + b", ["a", "b"], {"timeout": 5000})
    assert worker.request("call", ctx, fn.handle_id, [2, 3], {})[0] == 5
    assert worker.request("check_syntax", ctx, "var x = 1; return x", {}) is True


# -- 2c. the worker's own engine work is bounded too -----------------------------------------

@pytest.mark.timeout(60)
def test_release_and_stats_run_no_user_code(worker):
    """Builtins a script can hook, which release and stats (run on the worker's own
    behalf, with no timeout from the host) used to call: no longer."""
    ctx = worker.request("create_context", {})
    fns = run(worker, ctx, "[function f() {}, function g() {}]")
    run(worker, ctx, """
        Object.defineProperty(Map.prototype, 'size', { get() { for (;;) {} } });
        Array.prototype.slice = function () { for (;;) {} };
        Array.prototype.filter = function () { for (;;) {} };
        0
    """)
    start = time.monotonic()
    worker.notify("release", ctx, [fns[0].handle_id])
    assert worker.request("context_stats", ctx) == {"handles": 1, "hostFunctions": 0}
    assert time.monotonic() - start < 2.0
    run(worker, ctx, "Array.prototype[Symbol.iterator] = function () { for (;;) {} }; 0")
    start = time.monotonic()
    worker.notify("release", ctx, [fns[1].handle_id])
    assert run(worker, ctx, "1 + 1", timeout=1000) == 2
    assert time.monotonic() - start < 2.0


# -- 3. nesting ------------------------------------------------------------------------------

@pytest.mark.timeout(60)
def test_nesting_too_deep_is_a_range_error_with_a_code(worker):
    ctx = worker.request("create_context", {"globals": encode_value({"h": HostFunctionRef(1, "h")})})
    f = run(worker, ctx, "var depth = 0; (function f() { depth++; return h(); })")
    # h calls f back (a request nested in the call_host), which calls h, and so on.
    worker.functions[1] = lambda call, *args: worker.request("call", ctx, f.handle_id, [], {}, parent=call)[0]
    with pytest.raises(Failed) as info:
        worker.request("call", ctx, f.handle_id, [], {})
    thrown = info.value.data[0]
    assert thrown.name == "RangeError" and "nested deeper" in thrown.message
    assert thrown.props.get("code") == "ERR_ISOLATE_NESTING_TOO_DEEP"
    # Catchable in JS, like a stack overflow, with the code visible there.
    caught = run(worker, ctx, "depth = 0; try { h() } catch (e) { [e.name, e.code, e instanceof RangeError] }")
    assert caught == ["RangeError", "ERR_ISOLATE_NESTING_TOO_DEEP", True]


# -- 4. the supervisor interface --------------------------------------------------------------

@pytest.mark.timeout(60)
def test_the_started_cell_names_the_running_top_level_request(worker):
    # peek() returns what the cell says while the script runs; nested() runs peek()
    # in a request nested in its call_host.
    worker.functions[1] = lambda call, *args: worker.started_cell()
    worker.functions[2] = lambda call, *args: worker.request("run", ctx, "peek()", {}, parent=call)[0]
    ctx = worker.request("create_context", {"globals": encode_value({
        "peek": HostFunctionRef(1, "peek"), "nested": HostFunctionRef(2, "nested")})})
    for options in ({"timeout": 5000}, {}):
        msgid = worker.next_msgid()
        assert worker.request("run", ctx, "peek()", options, msgid=msgid)[0] == msgid
    # A nested request does not replace it: the top-level one is still running.
    outer = worker.next_msgid()
    assert worker.request("run", ctx, "nested()", {"timeout": 5000}, msgid=outer)[0] == outer
    assert worker.started_cell() == outer
    # Timed or not, no acknowledgement was ever sent: only responses and call_host requests.
    assert all(isinstance(m, Response) or (isinstance(m, Request) and m.method == "call_host")
               for m in worker.messages)


@pytest.mark.timeout(60)
def test_a_cancelled_request_is_answered_without_running():
    w = WorkerProcess()
    try:
        ctx = w.request("create_context", {})
        before = w.started_cell()
        msgid = w.next_msgid()
        struct.pack_into("<q", w.cell, 0, msgid)  # cancelled before it was even sent
        with pytest.raises(Failed) as info:
            w.request("run", ctx, "globalThis.ran = 1", {}, msgid=msgid)
        assert info.value.code == WireError.SCRIPT_INTERRUPTED.value
        assert w.started_cell() == before  # never started
        struct.pack_into("<q", w.cell, 0, 0)
        assert run(w, ctx, "typeof ran") == "undefined"
    finally:
        w.close()


@pytest.mark.timeout(60)
def test_an_eight_byte_cell_still_works():
    w = WorkerProcess(cell_size=8)
    try:
        ctx = w.request("create_context", {})
        assert run(w, ctx, "1 + 1", timeout=1000) == 2
        assert w.cell[:] == b"\0" * 8
    finally:
        w.close()
