"""Malformed frames both ways, on real processes (issue 11).

(a) Host -> worker: a real ``python -m isolate.workers`` (the protocol on stdin/stdout,
    protocol/SPEC.md), the ``hello`` handshake done with
    ``protocol.MessageStream``, then garbage. The worker must either answer
    with an error response and keep serving, or -- when the stream cannot be
    decoded (SPEC section 1: no resync) -- exit promptly with status 0 and no
    traceback. Never hang, never spin.

(b) Worker -> host: a pool whose first worker is a *relay*: a process that
    starts a real worker (``workers.main``, forked, sharing the pool's cell)
    and passes every message through, except that it answers one marked
    request (or the ``hello``) badly. ``Zygote.spawn`` is monkeypatched
    to start it: the sanctioned substitute, on the worker's side of the wire
    only. The caller must get a typed error (``ProtocolViolationError``, code
    ``ERR_ISOLATE_PROTOCOL``: for a malformed answer the call fails and the
    worker goes on; for a malformed message the host kills the worker too),
    within a bound, and the pool must serve the next call.
"""

from __future__ import annotations

import concurrent.futures
import itertools
import mmap
import os
import random
import select
import signal
import subprocess
import sys
import threading
import time

import msgpack
import psutil
import pytest

import isolate
from isolate.zygote import Zygote
from isolate.protocol import (
    PROTOCOL_VERSION, ExtDecoder, MessageStream, Notification, Request, Response, WireError,
    unpack_message,
)

pytestmark = pytest.mark.timeout(60)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXIT_BOUND_S = 5.0      # an undecodable stream: the worker is gone within this
ANSWER_BOUND_S = 5.0    # a request the worker can answer: answered within this
CALL_BOUND_S = 5.0      # worker -> host: the caller has its outcome within this
WIRE_ERRORS = {e.value for e in WireError}


def packb(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


def ext(code: int, payload) -> msgpack.ExtType:
    return msgpack.ExtType(code, payload if isinstance(payload, bytes) else packb(payload))


# Protocol 2 writes Maps, Sets, Errors and GRAPHs as arrays headed by an empty marker ext
# (SPEC section 9); the ext(5, payload) forms below are protocol 1's, malformed now.
MARK_MAP, MARK_SET, MARK_ERROR, MARK_GRAPH = (msgpack.ExtType(code, b"") for code in (5, 6, 8, 13))


# =====================================================================================
# (a) host -> worker, on `python -m isolate.workers`
# =====================================================================================

class Served:
    """A real ``python -m isolate.workers`` process, after a successful handshake (unless ``hello=False``)."""

    def __init__(self, hello: bool = True):
        self.proc = subprocess.Popen([sys.executable, "-m", "isolate.workers"], cwd=ROOT, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stream = MessageStream(self.proc.stdout.fileno(), self.proc.stdin.fileno())
        self._decoder = ExtDecoder()
        self._unpacker = msgpack.Unpacker(ext_hook=self._decoder, raw=False, strict_map_key=False)
        self.eof = False
        self._ids = itertools.count(1000)
        if hello:
            self.send(Request(0, "hello", [PROTOCOL_VERSION]))
            reply = self.read()
            assert isinstance(reply, Response) and reply.error is None, reply

    def send(self, message) -> bool:
        """Write a message (or raw bytes); False if the worker had already closed its input."""
        data = message if isinstance(message, bytes) else None
        try:
            if data is None:
                self.stream.write(message)
            else:
                self.stream.write_bytes(data)
        except BrokenPipeError:
            return False
        return True

    def read(self, timeout: float = ANSWER_BOUND_S):
        """The next message; None at end of stream; raises TimeoutError if nothing comes in time."""
        deadline = time.monotonic() + timeout
        while True:
            self._decoder.needs_finish = False
            try:
                doc = next(self._unpacker)
            except StopIteration:
                pass
            else:
                return unpack_message(doc, self._decoder)
            if self.eof:
                return None
            remaining = deadline - time.monotonic()
            ready, _, _ = select.select([self.proc.stdout.fileno()], [], [], max(0.0, remaining))
            if not ready:
                raise TimeoutError(f"no message from the worker within {timeout} s")
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                self.eof = True
            else:
                self._unpacker.feed(chunk)

    def request(self, method: str, params: list, timeout: float = ANSWER_BOUND_S) -> Response:
        msgid = next(self._ids)
        assert self.send(Request(msgid, method, params)), "the worker closed its input"
        return self.answer_to(msgid, timeout)

    def answer_to(self, msgid, timeout: float = ANSWER_BOUND_S) -> Response:
        deadline = time.monotonic() + timeout
        while True:
            message = self.read(max(0.0, deadline - time.monotonic()))
            assert message is not None, f"the worker exited instead of answering {msgid}: {self.finish()[1]}"
            if isinstance(message, Response) and message.msgid == msgid:
                return message

    def assert_serving(self) -> None:
        """The worker answers a plain request, and a timed run in a new context."""
        reply = self.request("stats", [0])
        assert reply.error is None and reply.result["pid"] == self.proc.pid
        reply = self.request("run_new", [0, {}, "6 * 7", {"timeout": 2000}])
        assert reply.error is None, f"the worker no longer runs timed code: {reply.error[:2]}"
        assert reply.result[1] == 42

    def assert_quiet(self, window_s: float = 0.2) -> None:
        """Nothing comes back, and the worker does not spin meanwhile."""
        before = psutil.Process(self.proc.pid).cpu_times()
        try:
            message = self.read(window_s)
        except TimeoutError:
            message = None
        after = psutil.Process(self.proc.pid).cpu_times()
        assert message is None, f"unexpected message: {message!r:.200}"
        spent = (after.user + after.system) - (before.user + before.system)
        assert spent < window_s * 0.5, f"the worker spun: {spent:.3f} s of CPU in {window_s} s idle"

    def wait_exit(self, timeout: float = EXIT_BOUND_S):
        """The worker exits by itself (no EOF from us) within ``timeout``: (status, stderr)."""
        try:
            status = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"the worker did not exit within {timeout} s of an undecodable frame")
        return status, self.proc.stderr.read().decode("utf-8", "replace")

    def finish(self):
        """Close its input; it must exit promptly: (status, stderr)."""
        try:
            self.proc.stdin.close()
        except BrokenPipeError:
            pass
        try:
            status = self.proc.wait(EXIT_BOUND_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"the worker did not exit within {EXIT_BOUND_S} s of the end of its input")
        return status, self.proc.stderr.read().decode("utf-8", "replace")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                f.close()
            except OSError:
                pass


@pytest.fixture
def served():
    workers = []

    def start(hello: bool = True) -> Served:
        w = Served(hello)
        workers.append(w)
        return w

    yield start
    for w in workers:
        w.kill()


@pytest.fixture(scope="module")
def shared():
    """One worker for the error-response cases (each test then checks it still serves)."""
    w = Served()
    assert w.request("create_context", [0, {}]).result == 1  # context 1, which METHODS name
    yield w
    status, stderr = w.finish()
    assert status == 0, stderr[-2000:]
    w.kill()


def assert_clean_exit(status, stderr):
    assert status == 0, f"exit status {status}: {stderr[-1500:]}"
    assert "Traceback" not in stderr, f"a traceback on stderr:\n{stderr[-1500:]}"
    assert len(stderr.splitlines()) <= 2, f"more than a short line on stderr:\n{stderr[-1500:]}"


# -- fatal: the stream cannot be decoded (or is not a message); no resync ------------------------

UNDECODABLE = {
    "reserved-byte-c1": b"\xc1",
    "not-an-array-int": packb(5),
    "not-an-array-str": packb("run"),
    "not-an-array-map": packb({"kind": 0}),
    "not-an-array-nil": packb(None),
    "empty-array": packb([]),
    "unknown-kind-3": packb([3, 1, "stats", [0]]),
    "unknown-kind-negative": packb([-1, 1, "stats", [0]]),
    "kind-as-str": packb(["0", 1, "stats", [0]]),
    "request-arity-3": packb([0, 1, "stats"]),
    "request-arity-5": packb([0, 1, "stats", [0], None]),
    "msgid-str": packb([0, "1", "stats", [0]]),
    "msgid-float": packb([0, 1.0, "stats", [0]]),
    "msgid-nil": packb([0, None, "stats", [0]]),
    "msgid-negative": packb([0, -(2**63), "stats", [0]]),  # msgpack-RPC msgids are unsigned: no answer possible
    # Malformed values and message fields are refused while the frame is read
    # (protocol.messages): nothing can be answered, and the worker ends cleanly.
    "response-empty-error": packb([1, 57, [], None]),
    "method-int": packb([0, 1, 5, [0]]),
    "method-bin": packb([0, 1, b"stats", [0]]),
    "params-map": packb([0, 1, "stats", {"parent": 0}]),
    "params-nil": packb([0, 1, "stats", None]),
    "notification-method-int": packb([2, 5, []]),
    "notification-arity-2": packb([2, "release"]),
    "notification-params-map": packb([2, "release", {}]),
    "response-error-str": packb([1, 5, "boom", None]),
    "response-arity-5": packb([1, 5, None, None, None]),
    "invalid-utf8-method": b"\x94\x00\x01\xa3\xff\xfe\xfd\x91\x00",
    "unknown-ext-code": packb([0, 1, "run", [0, 1, ext(99, b""), {}]]),
    "ext-error-one-field": packb([0, 1, "run", [0, 1, ext(8, [1]), {}]]),
    "ext-date-short": packb([0, 1, "run", [0, 1, ext(3, b"\x00\x01"), {}]]),
    "ext-regexp-not-array": packb([0, 1, "run", [0, 1, ext(4, 5), {}]]),
    "nesting-100000": b"\x91" * 100_000 + b"\xc0",
    "nesting-1000": b"\x91" * 1000 + b"\xc0",
    "map32-count-over-limit": b"\xdf\x0f\xff\xff\xff",
    "array32-count-over-limit": b"\xdd\xff\xff\xff\xff",
}
@pytest.mark.parametrize("frame", [pytest.param(frame, id=id_) for id_, frame in UNDECODABLE.items()])
def test_undecodable_frame_ends_the_worker_cleanly(served, frame):
    worker = served()
    start = time.monotonic()
    worker.send(frame)
    worker.send(Request(7, "stats", [0]))  # never answered: nothing after a bad frame is trusted
    while True:
        message = worker.read(EXIT_BOUND_S)
        if message is None:
            break
        assert not (isinstance(message, Response) and message.msgid == 7), "the worker resynchronized"
    assert_clean_exit(*worker.wait_exit())
    assert time.monotonic() - start < EXIT_BOUND_S


@pytest.mark.parametrize("frame", [
    packb([0, 1, "stats", [0]])[:-2],
    b"\xdb\xff\xff\xff\xffpartial",               # str32 declaring 4 GiB
    b"\xc6\xff\xff\xff\xf0partial",               # bin32 declaring ~4 GiB
    b"\xc9\xff\xff\xff\xf0\x05partial",           # ext32 declaring ~4 GiB
    b"\xdd\x0f\xff\xff\xff",                      # array32 of 268M items (under the count limit)
    b"\x94\x00\x01",                              # a request cut after its msgid
], ids=["truncated-request", "str32-4GiB", "bin32-4GiB", "ext32-4GiB", "array32-268M", "cut-after-msgid"])
def test_incomplete_frame_then_end_of_input_exits_cleanly(served, frame):
    """The worker cannot know a frame is bad until more bytes come; at end of input it exits at once."""
    worker = served()
    worker.send(frame)
    assert_clean_exit(*worker.finish())


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes_never_hang_or_crash(served, seed):
    worker = served()
    rng = random.Random(seed)
    worker.send(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 4096))))
    worker.send(Request(9, "stats", [0]))
    # Random bytes may happen to be a complete message (then it is answered, or refused with an exit), or
    # an incomplete one (then it waits for more): end of input must then end it, cleanly.
    status, stderr = worker.finish()
    assert_clean_exit(status, stderr)


@pytest.mark.parametrize("first", [
    Request(0, "stats", [0]), Notification("release", [1, [1]]), Response(0, None, 1),
    Request(0, "hello", []), Request(0, "hello", [PROTOCOL_VERSION + 1]), Request(0, "hello", ["1"]),
    Request(0, "hello", [[PROTOCOL_VERSION]]),
], ids=["stats-first", "notification-first", "response-first", "hello-no-version", "hello-version-2",
        "hello-version-str", "hello-version-list"])
def test_bad_handshake_ends_the_worker(served, first):
    worker = served(hello=False)
    worker.send(first)
    replies = []
    while True:
        message = worker.read(EXIT_BOUND_S)
        if message is None:
            break
        replies.append(message)
    if isinstance(first, Request) and first.method == "hello":
        assert len(replies) == 1 and replies[0].error[0] == "PROTOCOL_VERSION", replies
    else:
        assert replies == [], "the worker answered before any hello"
    assert_clean_exit(*worker.wait_exit())


# -- not fatal: an error response (or a result), and the worker keeps serving ---------------------

UNKNOWN_METHODS = ["nope", "", "hello", "release", "release_context", "module_release", "__init__", "_dispatch",
                   "serve", "call_host", "x" * 10_000, "run\0", "RUN"]


@pytest.mark.parametrize("method", UNKNOWN_METHODS, ids=[m[:20].replace("\0", "NUL") or "empty"
                                                         for m in UNKNOWN_METHODS])
def test_unknown_method_is_answered(shared, method):
    reply = shared.request(method, [0])
    assert reply.error is not None and reply.error[0] == "UNKNOWN_METHOD"
    assert len(reply.error[1]) < 20_000
    shared.assert_serving()


# Each method, with its own params after the parent (as the Python host sends them).
METHODS = {
    "create_context": [{}],
    "run": [1, "1", {}],
    "run_new": [{}, "1", {}],
    "compile": [0, "1", {}],
    "check_syntax": [0, "1", {}],
    "call": [1, 1, [], {}],
    "compile_function": [1, "return 1", [], {}],
    "get": [1, 0, "x", {}],
    "has": [1, 0, "x", {}],
    "set": [1, 0, "x", 1, {}],
    "delete": [1, 0, "x", {}],
    "keys": [1, 0, {}],
    "promise_state": [1, 1, {}],
    "stats": [],
    "memory": [False],
    "context_stats": [1],
    "module_compile": [1, "export default 1", {}],
    "module_synthetic": [1, ["a"], {}],
    "module_link": [1, 1, []],
    "module_evaluate": [1, 1, {}],
    "module_status": [1, [1]],
    "module_error": [1, 1],
    "module_namespace": [1, 1],
    "module_import_meta": [1, 1],
    "module_set_export": [1, 1, "a", 1],
    "module_referrer": [1, None, None],
}
WRONG_VALUES = {
    "str": "x", "neg": -1, "nil": None, "array": [], "map": {}, "u64": 2**64 - 1, "float": 1.5, "nan": float("nan"),
    "true": True, "bin": b"\xff\x00", "nested": [[[[[]]]]], "undefined": ext(1, b""), "handle": ext(10, ["function", 1, "F", "f"]),
    "host-function": ext(11, [1, "f"]),
}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_wrong_arity_is_invalid_params(shared, method):
    arity = len(METHODS[method])
    for params in ([], [0, *METHODS[method], None, None]) if arity else ([0, 1, 2],):
        reply = shared.request(method, params)
        assert reply.error is not None and reply.error[0] == "INVALID_PARAMS", (params, reply.error[:2])
    shared.assert_serving()


@pytest.mark.parametrize("method", sorted(m for m in METHODS if METHODS[m]))
@pytest.mark.parametrize("wrong", list(WRONG_VALUES), ids=list(WRONG_VALUES))
def test_wrong_param_types_are_answered(shared, method, wrong):
    """Every param in turn replaced by a wrong value: a response (usually an error), then more service."""
    for i in range(len(METHODS[method])):
        params = list(METHODS[method])
        params[i] = WRONG_VALUES[wrong]
        reply = shared.request(method, [0, *params])
        if reply.error is not None:
            assert reply.error[0] in WIRE_ERRORS, reply.error[:2]
    shared.assert_serving()


def test_wrong_parent_is_served_as_top_level(shared):
    for parent in ("x", None, -1, 2**64 - 1, [1], {}):
        reply = shared.request("stats", [parent])
        assert reply.error is None
    shared.assert_serving()


@pytest.mark.parametrize("msgid", [
    pytest.param(0, id="zero"),
    pytest.param(2**64 - 1, id="u64-max"), pytest.param(2**31, id="2**31")])
def test_any_int_msgid_is_echoed(shared, msgid):
    shared.send(Request(msgid, "stats", [0]))
    reply = shared.answer_to(msgid)
    assert reply.error is None
    shared.assert_serving()


@pytest.mark.parametrize("params", [
    ["x"], [1, "x"], [1, [[1]]], [], [1, 2, 3, 4], [1, [ext(1, b"")]], [1, list(range(100_000))],
    [ext(12, 5), []], [2**64 - 1, [1]],
], ids=["ctx-str", "ids-str", "ids-nested", "none", "too-many", "ids-undefined", "100k-ids", "bad-ref",
        "ctx-u64"])
@pytest.mark.parametrize("method", ["release", "release_context", "module_release", "bogus"])
def test_garbage_notifications_are_dropped(shared, method, params):
    """No reply to a notification (SPEC 6: dropped, logged); the worker serves on and does not spin."""
    shared.request("create_context", [0, {}])
    shared.send(Notification(method, params))
    shared.assert_quiet()
    shared.assert_serving()


@pytest.mark.parametrize("response", [
    [1, 55, None, 1], [1, 56, ["X", "y", None], None], [1, 2**64 - 1, None, None],
], ids=["result", "error", "u64-msgid"])
def test_stray_responses_are_dropped(shared, response):
    shared.send(packb(response))
    shared.assert_quiet()
    shared.assert_serving()


# A value the codec refuses inside params: "answered" (an error response, or a decoded value) when the
# refusal comes once the message is whole; "fatal" when the ext hook refuses it while the stream decodes
# (SPEC section 1: no resync), then a clean exit.
MALFORMED_VALUES = {
    "ref-outside-graph": (ext(12, 5), "answered"),
    "ref-past-end": (ext(13, [ext(12, 9)]), "fatal"),
    "map-odd": (ext(5, [1, 2, 3]), "fatal"),
    "map-not-array": (ext(5, 7), "fatal"),
    "set-not-array": (ext(6, 5), "fatal"),
    "graph-in-graph": (ext(13, ext(13, [ext(12, 0)])), "fatal"),
    "error-props-int": (ext(8, ["E", "m", "s", 5]), "fatal"),
    "handle-id-str": (ext(10, ["function", "x", "F", "f"]), "fatal"),
    "host-fn-id-str": (ext(11, ["x", 5]), "fatal"),
    "symbol-desc-int": (ext(9, [5, "x"]), "fatal"),
    "surrogate-ok": (ext(14, b"\xed\xa0\x80"), "answered"),
    "typed-array-kind": (ext(7, ["NoSuchArray", b"\x00"]), "fatal"),
    "typed-array-misaligned": (ext(7, ["Float64Array", b"\x00\x01\x02"]), "answered"),
    "surrogate-bad-utf8": (ext(14, b"\xff"), "fatal"),
    "date-nan-bytes": (ext(3, b"\x7f\xf8\x00\x00\x00\x00\x00\x00"), "answered"),
    # Protocol 2's forms, malformed: refused once the message is whole (decode_value), answered.
    "marked-map-odd": ([MARK_MAP, 1, 2, 3], "answered"),
    "marker-not-at-head": ([1, MARK_MAP], "answered"),
    "marked-graph-ref-past-end": ([MARK_GRAPH, [ext(12, 9)]], "answered"),
    "marked-error-short": ([MARK_ERROR, "E"], "answered"),
}


@pytest.mark.parametrize("name", list(MALFORMED_VALUES))
def test_malformed_values_in_params(served, name):
    value, expected = MALFORMED_VALUES[name]
    worker = served()
    ctx = worker.request("create_context", [0, {}]).result
    worker.send(Request(4242, "set", [0, ctx, 0, "v", value, {"timeout": 1000}]))
    if expected == "fatal":
        assert worker.read(EXIT_BOUND_S) is None, "the worker went on after an undecodable value"
        assert_clean_exit(*worker.wait_exit())
        return
    reply = worker.answer_to(4242)
    assert reply.error is None or reply.error[0] in WIRE_ERRORS
    worker.assert_serving()


@pytest.mark.parametrize("depth", [100, 500, 900, 1015])
def test_deeply_nested_params_are_answered(shared, depth):
    value = [MARK_MAP]  # an empty Map (protocol 2: a marked array): the params need the finishing walk
    for _ in range(depth):
        value = [value]
    reply = shared.request("run_new", [0, {}, "1", {"deep": value}])
    assert reply.error is None or reply.error[0] in WIRE_ERRORS
    shared.assert_serving()


@pytest.mark.parametrize("timeout", [
    pytest.param(float("nan"), id="nan"),
    pytest.param(float("inf"), id="inf"),
    pytest.param(1e308, id="1e308"),
    pytest.param(float("-inf"), id="-inf"),
    pytest.param(-1, id="neg"),
    pytest.param(0, id="zero"),
    pytest.param("100", id="str"),
    pytest.param([100], id="array"),
    pytest.param(2**64 - 1, id="u64-max"),
])
def test_bad_timeout_does_not_poison_the_worker(served, timeout):
    worker = served()
    reply = worker.request("run_new", [0, {}, "1", {"timeout": timeout}])
    assert reply.error is None or reply.error[0] in WIRE_ERRORS
    worker.assert_serving()
    reply = worker.request("create_context", [0, {}])
    reply = worker.request("get", [0, reply.result, 0, "Object", {"timeout": 1000}])
    assert reply.error is None, f"a property access with a timeout fails after it: {reply.error[:2]}"


@pytest.mark.parametrize("limit", ["x", -1, 1.5, 2**64 - 1, [1], float("nan"), True],
                         ids=["str", "neg", "float", "u64-max", "array", "nan", "true"])
def test_bad_memory_limit_is_answered(shared, limit):
    reply = shared.request("create_context", [0, {"memory_limit": limit}])
    assert reply.error is None or reply.error[0] in WIRE_ERRORS
    shared.assert_serving()


def test_the_worker_survives_all_of_it_and_exits_cleanly(served):
    """Everything non-fatal above, back to back on one fresh worker; then end of input: status 0."""
    worker = served()
    worker.request("create_context", [0, {}])
    for method in UNKNOWN_METHODS[:5]:
        worker.request(method, [0])
    for method, params in METHODS.items():
        worker.request(method, [0, *[WRONG_VALUES["str"]] * len(params)])
        worker.send(Notification("release", [method, params]))
    worker.assert_serving()
    status, stderr = worker.finish()
    assert status == 0, stderr[-1500:]


# =====================================================================================
# (b) worker -> host: a relay in place of the pool's first worker
# =====================================================================================

MARK = "/*POISON*/"


def _relay_main(host_r: int, host_w: int, host_pid: int, env: dict, memory_limit, cell, action: str,
                record: str | None) -> None:
    """The fake worker: a real worker behind it, every message passed through, except the answer to
    the marked request (or to ``hello``), which ``action`` replaces."""
    from isolate.workers.worker import _close_inherited_fds, _die_with_parent

    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _close_inherited_fds({host_r, host_w})
    to_worker_r, to_worker_w = os.pipe()
    from_worker_r, from_worker_w = os.pipe()
    relay_pid = os.getpid()
    pid = os.fork()
    if pid == 0:
        os.close(to_worker_w)
        os.close(from_worker_r)
        os.close(host_r)
        os.close(host_w)
        from isolate import workers

        workers.main(to_worker_r, from_worker_w, relay_pid, env, memory_limit, cell)
        os._exit(0)
    os.close(to_worker_r)
    os.close(from_worker_w)

    poisoned: set = set()
    host_replies: list = []
    host_replied = threading.Event()

    def docs(fd):
        unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, ext_hook=lambda c, d: msgpack.ExtType(c, d))
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                return
            unpacker.feed(chunk)
            yield from unpacker

    def write(fd, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    def upward():  # host -> worker
        try:
            for doc in docs(host_r):
                if isinstance(doc, list) and len(doc) == 4 and doc[0] == 0:
                    method, params = doc[2], doc[3]
                    if action.startswith("hello-") and method == "hello":
                        poisoned.add(doc[1])
                    elif method in ("run", "run_new") and len(params) > 2 and isinstance(params[2], str) \
                            and MARK in params[2]:
                        poisoned.add(doc[1])
                elif isinstance(doc, list) and len(doc) == 4 and doc[0] == 1 and doc[1] >= 7000:
                    host_replies.append(doc)  # the host's answer to a call_host the relay made up
                    if record:
                        with open(record, "a") as f:
                            f.write(repr(doc[2]) + "\n")
                    host_replied.set()
                    continue
                write(to_worker_w, packb(doc))
        except OSError:
            pass
        os.close(to_worker_w)

    threading.Thread(target=upward, daemon=True).start()

    def hostile(resp) -> bytes:
        msgid, result = resp[1], resp[3]
        ok = packb(resp)
        table = {
            "garbage": lambda: b"\xc1\xc1 garbage",
            "not-a-list": lambda: packb({"jsonrpc": "2.0", "id": msgid}),
            "wrong-arity": lambda: packb([1, msgid, None]),
            "msgid-str": lambda: packb([1, str(msgid), None, result]),
            "unknown-kind": lambda: packb([7, msgid, None, result]),
            "error-str": lambda: packb([1, msgid, "boom", None]),
            "unknown-msgid-then-answer": lambda: packb([1, msgid + 1000, None, 99]) + ok,
            "stale-msgid-then-answer": lambda: packb([1, msgid - 1, None, 99]) + ok,
            "unknown-msgid-only": lambda: packb([1, msgid + 1000, None, 99]),
            "unknown-ext": lambda: packb([1, msgid, None, [ext(99, b""), None]]),
            "malformed-ext": lambda: packb([1, msgid, None, [ext(8, [1]), None]]),
            "array32-over-limit": lambda: b"\xdd\xff\xff\xff\xff",
            "notification-unknown": lambda: packb([2, "bogus", []]) + ok,
            "notification-started": lambda: packb([2, "started", [msgid]]) + ok,
            "call-host-unhashable-parent": lambda: packb([0, 7001, "call_host", [[msgid], 1, 1, []]]) + ok,
            "hello-garbage": lambda: b"\xc1",
            "hello-error": lambda: packb([1, msgid, ["PROTOCOL_VERSION", "no", None], None]),
            "hello-not-a-message": lambda: packb("hello"),
            "truncated-then-exit": lambda: ok[:max(1, len(ok) // 2)],
        }
        if action.startswith("error:"):
            return packb([1, msgid, ERROR_TRIPLES[action[6:]], None])
        if action.startswith("result:"):
            return packb([1, msgid, None, _RESULTS[action[7:]]()])
        return table[action]()

    try:
        for doc in docs(from_worker_r):
            if isinstance(doc, list) and len(doc) == 4 and doc[0] == 1 and doc[1] in poisoned:
                poisoned.discard(doc[1])
                if action == "hello-silent":
                    continue
                if action in ("call-host-unknown-parent", "call-host-short-params") or \
                        action.startswith("call-host-forged:"):
                    if action == "call-host-unknown-parent":
                        params = [999_999, 1, 1, []]
                    elif action == "call-host-short-params":
                        params = [doc[1]]
                    else:  # "call-host-forged:CONTEXT,FUNCTION": a call_host the bridge would never make
                        context_id, function_id = (int(x) for x in action.split(":")[1].split(","))
                        params = [doc[1], context_id, function_id, []]
                    # ``doc[1]`` is the host's msgid of the poisoned request: the parent the host knows.
                    write(host_w, packb([0, 7000, "call_host", params]))
                    host_replied.wait(10)
                    write(host_w, packb(doc))
                    continue
                if action == "endless-unknown-responses":
                    for n in itertools.count():
                        write(host_w, packb([1, doc[1] + 1000 + n, None, n]))
                if action == "endless-nils":
                    while True:
                        write(host_w, b"\xc0" * 65536)
                write(host_w, hostile(doc))
                if action == "truncated-then-exit":
                    os._exit(0)
                continue
            write(host_w, packb(doc))
    except OSError:
        pass
    os._exit(0)


def _deep_result(depth=1015):  # msgpack decodes up to 1024 levels
    value = [MARK_MAP]  # an empty Map (protocol 2: a marked array): the value needs decode_value's walk
    for _ in range(depth):
        value = [value]
    return [value, None]


_RESULTS = {
    "not-a-pair": lambda: 5,
    "empty-array": lambda: [],
    "pair-of-map": lambda: {"value": 1},
    "ref-outside-graph": lambda: [ext(12, 0), None],
    "ref-past-end": lambda: ext(13, [ext(12, 7), None]),
    "map-odd": lambda: [ext(5, [1, 2, 3]), None],
    "map-not-array": lambda: [ext(5, 7), None],
    "error-props-not-map": lambda: [ext(8, ["Error", "m", "s", 5]), None],
    "globals-not-map": lambda: [1, 5],
    "deep-1015": _deep_result,
}


class _RelayProcess:
    """What ``Zygote.spawn`` returns (isolate.zygote.WorkerProcess), for a relay
    forked from this test process instead of a worker forked by the zygote."""

    def __init__(self, action, record, memory_limit):
        import multiprocessing

        from isolate import workers  # noqa: F401 - loaded before the fork: the relay's real worker needs the engine

        self.cell = mmap.mmap(-1, 16)  # shared with the relay and its worker (they are forked)
        to_worker_r, self.write_fd = os.pipe()
        self.read_fd, from_worker_w = os.pipe()
        ctx = multiprocessing.get_context("fork")
        self._process = ctx.Process(target=_relay_main, name="isolate-fake-worker", daemon=True,
                                    args=(to_worker_r, from_worker_w, os.getpid(), {}, memory_limit, self.cell,
                                          action, record))
        try:
            self._process.start()
        finally:
            os.close(to_worker_r)
            os.close(from_worker_w)
        self.pid = self._process.pid
        self.pidfd = os.pidfd_open(self.pid)

    @property
    def exitcode(self):
        return self._process.exitcode

    def send_signal(self, sig) -> bool:
        try:
            os.kill(self.pid, sig)
        except ProcessLookupError:
            return False
        return self._process.exitcode is None

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout):
        self._process.join(timeout)
        return self._process.exitcode

    def close(self) -> None:
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1


def _children() -> set:
    return {c.pid for c in psutil.Process().children(recursive=True) if c.status() != psutil.STATUS_ZOMBIE}


@pytest.fixture
def fake_pool(monkeypatch, tmp_path):
    """``fake_pool(action)``: a Pool(size=1, spare_workers=1) whose slot worker is the relay with
    ``action`` (every later worker is real). Yields (pool, record_path)."""
    pools = []
    before = _children()

    def make(action: str, **kwargs):
        original = Zygote.spawn
        spawns = itertools.count()
        record = str(tmp_path / "relay.log")

        def spawn(self, name=""):
            if next(spawns) == 0:
                return _RelayProcess(action, record, self._memory_limit)
            return original(self, name)

        monkeypatch.setattr(Zygote, "spawn", spawn)
        kwargs.setdefault("size", 1)
        kwargs.setdefault("spare_workers", 1)
        pool = isolate.Pool(**kwargs)
        pools.append(pool)
        return pool, record

    yield make
    for pool in pools:
        pool.close()
    # A replacement spare that a dead worker's reader thread is still starting (pool._refill) can outlive
    # close() by a few ms (PR_SET_PDEATHSIG ends it when the spawner thread exits): wait for it, bounded.
    psutil.wait_procs([psutil.Process(p) for p in _children() - before if psutil.pid_exists(p)], timeout=10)
    assert _children() <= before, "processes left behind"


def _bounded(future, bound=CALL_BOUND_S):
    """The outcome of a Future within ``bound``: (value, exception, seconds)."""
    start = time.monotonic()
    done, _ = concurrent.futures.wait([future], timeout=bound)
    if not done:
        pytest.fail(f"the call did not return within {bound} s")
    try:
        value = future.result()
    except BaseException as exc:  # judged by the caller
        return None, exc, time.monotonic() - start
    return value, None, time.monotonic() - start


def _assert_recovers(pool, ctx=None, ctx_survives=False):
    """The pool serves the next call (on a replacement worker if the fake was killed)."""
    value, exc, _ = _bounded(pool.submit("1+1"))
    assert exc is None, f"the pool does not serve after it: {type(exc).__name__}: {exc}"
    assert value == 2
    if ctx is not None:
        value, exc, _ = _bounded(pool.arun_in_context("2+2", ctx))
        if ctx_survives:
            assert exc is None and value == 4, f"the worker's context broke: {exc!r}"
        else:
            assert isinstance(exc, isolate.ContextLostError), f"{type(exc).__name__}: {exc}"


def _poisoned_call(pool, ctx, **options):
    return _bounded(pool.arun_in_context(f"{MARK} 1+1", ctx, **options),
                    bound=CALL_BOUND_S + options.get("timeout", 0) / 1000.0)


# -- the host kills a worker whose stream is undecodable or not a message ------------------------------

@pytest.mark.parametrize("action", [
    "garbage", "not-a-list", "wrong-arity", "msgid-str", "unknown-kind", "error-str", "unknown-ext",
    "malformed-ext", "array32-over-limit", "notification-unknown", "call-host-unhashable-parent",
])
def test_nonsense_from_the_worker_kills_it(fake_pool, action):
    pool, _ = fake_pool(action)
    ctx = pool.create_context()
    fake_pid = ctx.worker_pid
    value, exc, seconds = _poisoned_call(pool, ctx)
    assert isinstance(exc, isolate.ProtocolViolationError), f"{type(exc).__name__}: {exc!r}"
    assert exc.code == "ERR_ISOLATE_PROTOCOL" and "malformed message" in str(exc), str(exc)
    assert seconds < CALL_BOUND_S
    assert not psutil.pid_exists(fake_pid) or psutil.Process(fake_pid).status() == psutil.STATUS_ZOMBIE
    _assert_recovers(pool, ctx)


def test_worker_that_closes_mid_frame_is_a_crash(fake_pool):
    pool, _ = fake_pool("truncated-then-exit")
    ctx = pool.create_context()
    value, exc, seconds = _poisoned_call(pool, ctx)
    assert isinstance(exc, isolate.WorkerCrashedError), f"{type(exc).__name__}: {exc!r}"
    _assert_recovers(pool, ctx)


def test_endless_garbage_is_cut_off(fake_pool):
    pool, _ = fake_pool("endless-nils")
    ctx = pool.create_context()
    value, exc, seconds = _poisoned_call(pool, ctx)
    assert isinstance(exc, isolate.ProtocolViolationError), f"{type(exc).__name__}: {exc!r}"
    _assert_recovers(pool, ctx)


# -- a malformed answer fails that call, typed; the worker goes on --------------------------------------

ERROR_TRIPLES = {
    "empty": [],
    "code-only": ["JS_EXCEPTION"],
    "js-data-int": ["JS_EXCEPTION", "m", 5],
    "js-data-empty": ["JS_EXCEPTION", "m", []],
    "js-data-map": ["JS_EXCEPTION", "m", {"a": 1}],
    "too-long": [5, 6, 7, 8, 9],
    "code-map": [{"a": 1}, [1], None],
    "code-unknown": ["NO_SUCH_CODE", "m", None],
    "message-huge": ["INTERNAL", "m" * 1_000_000, None],
    "internal": ["INTERNAL", "boom", "Traceback..."],
}


@pytest.mark.parametrize("triple", list(ERROR_TRIPLES))
def test_malformed_error_triple_is_a_protocol_violation(fake_pool, triple):
    pool, _ = fake_pool(f"error:{triple}")
    ctx = pool.create_context()
    value, exc, seconds = _poisoned_call(pool, ctx)
    assert isinstance(exc, isolate.ProtocolViolationError), f"{type(exc).__name__}: {exc!r}"
    assert exc.code == "ERR_ISOLATE_PROTOCOL"
    assert seconds < CALL_BOUND_S
    # A triple of the wrong shape is refused as the message is read: the worker
    # that sent it is killed. One of the right shape with bad data fails the call only.
    _assert_recovers(pool, ctx, ctx_survives=triple not in _MALFORMED_MESSAGES)


# Refused while the frame is read (protocol.messages / the codec's ext hook): the worker is killed.
_MALFORMED_MESSAGES = {"empty", "code-only", "too-long", "code-map",
                       "ref-past-end", "map-odd", "map-not-array", "error-props-not-map"}


@pytest.mark.parametrize("result", list(_RESULTS))
def test_malformed_result_is_a_protocol_violation(fake_pool, result):
    pool, _ = fake_pool(f"result:{result}")
    ctx = pool.create_context({})  # contextified: the run asks for the mirror (globals)
    value, exc, seconds = _poisoned_call(pool, ctx)
    assert isinstance(exc, isolate.ProtocolViolationError), f"{type(exc).__name__}: {exc!r:.300}"
    assert exc.code == "ERR_ISOLATE_PROTOCOL"
    assert seconds < CALL_BOUND_S
    _assert_recovers(pool, ctx, ctx_survives=result not in _MALFORMED_MESSAGES)


# -- responses to other msgids ----------------------------------------------------------------------

def test_a_stale_response_before_the_answer_is_dropped(fake_pool):
    # An answer to an earlier msgid (a call abandoned or claimed) is dropped.
    pool, _ = fake_pool("stale-msgid-then-answer")
    ctx = pool.create_context()
    value, exc, seconds = _poisoned_call(pool, ctx)
    assert exc is None and value == 2, f"{type(exc).__name__}: {exc!r}"
    _assert_recovers(pool, ctx, ctx_survives=True)


@pytest.mark.parametrize("action", ["unknown-msgid-then-answer", "endless-unknown-responses"])
def test_answers_to_msgids_never_sent_kill_the_worker_at_once(fake_pool, action):
    # Not a stale answer: one to a request this host never made. The worker
    # is killed at once (not at the call's deadline), the call fails typed.
    pool, _ = fake_pool(action)
    ctx = pool.create_context()
    value, exc, seconds = _poisoned_call(pool, ctx, timeout=3000)
    assert isinstance(exc, isolate.ProtocolViolationError), f"{type(exc).__name__}: {exc!r}"
    assert seconds < 1.0
    _assert_recovers(pool, ctx)


def test_response_to_a_msgid_never_issued_kills_the_worker(fake_pool):
    # An untimed call would otherwise wait forever for an answer that never comes.
    pool, _ = fake_pool("unknown-msgid-only")
    ctx = pool.create_context()
    value, exc, seconds = _poisoned_call(pool, ctx)
    assert isinstance(exc, isolate.ProtocolViolationError), f"{type(exc).__name__}: {exc!r}"
    assert "never sent" in str(exc)
    _assert_recovers(pool, ctx)


# -- requests from the worker ---------------------------------------------------------------------------

def test_call_host_nested_in_an_unknown_call_is_refused(fake_pool):
    pool, record = fake_pool("call-host-unknown-parent")
    ctx = pool.create_context()
    value, exc, seconds = _poisoned_call(pool, ctx)
    assert exc is None and value == 2, f"{type(exc).__name__}: {exc!r}"
    with open(record) as f:
        assert "INVALID_PARAMS" in f.read()
    _assert_recovers(pool, ctx, ctx_survives=True)


def test_call_host_with_short_params_is_answered_with_an_error(fake_pool):
    pool, record = fake_pool("call-host-short-params")
    ctx = pool.create_context()
    value, exc, seconds = _poisoned_call(pool, ctx)
    assert exc is None and value == 2, f"{type(exc).__name__}: {exc!r}"
    with open(record) as f:
        answer = f.read()
    assert any(code in answer for code in WIRE_ERRORS), answer
    _assert_recovers(pool, ctx, ctx_survives=True)


def test_a_started_notification_of_protocol_1_is_nonsense_now(fake_pool):
    # Protocol 2 workers send no notifications at all (SPEC sections 2 and 6).
    pool, _ = fake_pool("notification-started")
    ctx = pool.create_context()
    value, exc, seconds = _poisoned_call(pool, ctx, timeout=2000)
    assert isinstance(exc, isolate.ProtocolViolationError), f"{type(exc).__name__}: {exc!r}"
    _assert_recovers(pool, ctx)


# -- the handshake -------------------------------------------------------------------------------

@pytest.mark.parametrize("action", ["hello-garbage", "hello-error", "hello-not-a-message", "hello-silent"])
def test_bad_handshake_fails_the_constructor_and_leaks_nothing(fake_pool, action):
    before = _children()
    start = time.monotonic()
    limits = isolate.Limits(handshake_timeout_s=1.0)
    with pytest.raises(isolate.WorkerCrashedError) as info:
        fake_pool(action, limits=limits)
    assert "handshake" in str(info.value)
    assert time.monotonic() - start < limits.handshake_timeout_s + 2 * limits.reap_timeout_s + 2.0
    assert _children() <= before, "a Pool constructor that failed left a process behind"



# -- capabilities: a worker reaches only what was given to the context it runs code for -----------------

@pytest.mark.parametrize("forged,served", [
    ((1, 1), True),     # control: context 1's own function 1 (given to it below)
    ((2, 1), False),    # context 2's function 1: another context on the same worker
    ((1, 99), False),   # no function 99 was ever given to context 1
    ((0, 1), False),    # no context 0
])
def test_a_worker_cannot_call_another_contexts_host_function(fake_pool, forged, served):
    pool, record = fake_pool("call-host-forged:%d,%d" % forged)
    calls = []
    mine = pool.create_context({"mine": lambda *a: calls.append("mine") or "mine"})        # context 1
    pool.create_context({"theirs": lambda *a: calls.append("theirs") or "theirs"})        # context 2
    assert mine._id == 1
    value, exc, seconds = _poisoned_call(pool, mine)
    assert exc is None and value == 2, f"{type(exc).__name__}: {exc!r}"   # the real answer follows
    with open(record) as f:
        answer = f.read()  # the error field of the host's answer to the forged call_host
    if served:
        assert calls == ["mine"] and answer.strip() == "None", answer
    else:
        assert calls == [] and "INVALID_PARAMS" in answer, answer
        assert "theirs" not in answer
    _assert_recovers(pool, mine, ctx_survives=True)
