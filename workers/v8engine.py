"""V8 as the worker's engine (``Pool(engine="v8")``), through STPyV8.

The same bridge as QuickJS (workers/bridge.js, engine-neutral JavaScript with
captured primordials) is installed in every V8 context; every operation is a
bridge op whose request and reply cross as JSON text, as with QuickJS. What
differs is how control gets in and out:

- **Entries.** Two STPyV8 bugs shape them. A JS function *called from Python*
  that is terminated crashes the process (``ToLocalChecked`` on the empty
  result), while a script run through ``JSContext.eval`` returns cleanly; and
  any Python value converted into a context (an argument, a property set from
  Python) attaches a tracer to that context whose weak callback crashes when
  the context is collected. So a context only ever receives source text: each
  op is a script ``ENTRY.enter("<request JSON>", token)``, and the host hook is
  a function of one long-lived *hub* context (where the Python callable is
  converted, once), put on the entry object by the hub's own code. The entry
  object is a script-scope ``const`` with a random name per process: not a
  property of the global object, so no script can list it or guess it.
- **Text only.** STPyV8 mangles strings outside the BMP in both directions, so
  everything that crosses is ASCII JSON: the worker's requests are encoded with
  ``ensure_ascii``, and the bridge side escapes every UTF-16 surrogate.
- **Stops.** While JS runs, the main thread is inside V8, where Python's signal
  handlers cannot run. Python's C-level handler still writes the signal number
  to a wakeup pipe; a watchdog thread reads it and, when a stop is due (the
  worker's own check: a deadline expired, or an interrupt for a request that is
  executing), terminates V8's execution (uncatchable by JS). Back in Python,
  the worker's handler raises the stop as it does for QuickJS, so the worker's
  deadlines, interrupts, and the host's kill ladder behind them are shared.
- **Memory.** STPyV8 exposes no heap statistics or heap-limit callback. A
  context's ``memory_limit`` is enforced by the same watchdog: while an op of
  such a context runs, it samples the worker's resident memory every
  millisecond and terminates the op once the growth since the context was made
  passes the limit; the op then answers ``InternalError: out of memory``
  (the host's JSMemoryError). V8's own heap limit (and the pool's
  worker_memory_limit) stays behind it: reaching that kills the worker only.
- **Start.** Importing STPyV8 starts V8's platform threads, which must never
  cross a fork: :func:`start` runs in the worker, after the zygote's fork and
  before confinement (it reads V8's ICU data file), with the stop signals
  blocked so no V8 thread ever receives them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import select
import signal
import sys
import threading
import time
from typing import Any, Callable

from ..protocol.values import ErrorValue

from .bridgesource import bridge_with_parts
from .engine_api import EngineKind, HostCall
from .fastjson import request_text

__all__ = ["V8Context", "EngineError", "KIND", "start", "available"]

# The bridge with its parts handed over at installation (V8 compiles from source).
_BRIDGE_SOURCE = bridge_with_parts()
_OWN_FILE = "<isolate-bridge>"   # bridge.js leaves frames of this file out of stacks
_STOP_SIGNALS = {signal.SIGALRM, signal.SIGUSR1}
# How often a context under memory_limit has its growth sampled while it runs (s).
_MEMORY_POLL_S = 0.001
# The reply of a host call that was stopped (see bridge.js: the bridge spins
# until the engine stops it).
_ABORTED_REPLY = '{"abort": true}'

# V8 flags for every V8 worker, then those of the pool's environment (Pool(env=...)),
# given to V8 before it starts: STPyV8 starts V8 when it is imported, and V8 freezes
# its flags then (setting one after that stops the process with SIGTRAP).
V8_FLAGS = ""
FLAGS_ENV = "ISOLATE_V8_FLAGS"

_V: Any = None                 # the STPyV8 module, once started
_entry_name = ""               # the script-scope name of each context's entry object
_install_source = ""           # the script that installs the bridge and the entry object
_running_ops = 0               # engine ops on the stack (nested ops come from host calls)
_in_js = 0                     # entries into V8 on the stack
_terminations = 0              # how many times the watchdog terminated V8's execution
_flush_needed = False          # a termination may be pending in V8 with no JS left to stop
_stop_due: Callable[[], bool] = lambda: False   # set by the worker: whether a stop is due now
_limited: list = []            # contexts under memory_limit whose ops are on the stack
_statm_fd = -1                 # /proc/self/statm, opened before confinement
_wake_fd = -1                  # the watchdog's pipe (signal numbers; 0: a memory-limited op began)
_watch_fd = -1                 # the watchdog's end of that pipe
_watchdog_started = False
_hub: Any = None               # the context where the host hook lives (never collected)
_install_hook: Any = None      # the hub's function that puts the hook on a context's entry object
_current: list = []            # V8Contexts whose ops are on the stack, innermost last
_PAGE = os.sysconf("SC_PAGE_SIZE")


def available() -> bool:
    """Whether the V8 binding is installed (without importing it: that starts V8)."""
    import importlib.util

    return importlib.util.find_spec("STPyV8") is not None


class EngineError(Exception):
    """V8 failed outside the bridge's own error handling."""

    def __init__(self, message: str, unusable: bool = False):
        super().__init__(message)
        self.unusable = unusable


def start() -> None:
    """Start V8 in this process: once, in a worker, after the fork, before confinement."""
    global _V, _entry_name, _install_source, _statm_fd, _wake_fd
    if _V is not None:
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        # V8's platform threads inherit this mask: the stop signals
        # go to the main thread only (which blocks them while it writes a frame).
        # STPyV8's platform start reads $HOME (its ICU data may be under ~/.local/share)
        # and fails without one; the workers' environment is the pool's, often empty.
        home = os.environ.get("HOME")
        if home is None:
            os.environ["HOME"] = "/nonexistent"
        try:
            import _STPyV8  # the binding alone: V8 is not started yet

            flags = " ".join(f for f in (V8_FLAGS, os.environ.get(FLAGS_ENV, "").strip()) if f)
            if flags:
                _STPyV8.JSEngine.setFlags(flags)
            import STPyV8
        finally:
            if home is None:
                del os.environ["HOME"]

        _V = STPyV8
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    global _watch_fd
    _watch_fd, write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    _wake_fd = write_fd
    global _hub, _install_hook
    _hub = _V.JSContext()
    _hub.enter()
    try:
        _install_hook = _hub.eval(_HUB, _OWN_FILE)(_host_hook)
    finally:
        _hub.leave()
    _entry_name = "__isolate_entry_" + secrets.token_hex(16)
    # One script per context: the bridge's completion value (its stash, which the
    # global never holds) goes straight into the hooks as an argument.
    _install_source = _HOOKS.replace("NAME", _entry_name).replace(
        "BRIDGE", _BRIDGE_SOURCE.rstrip().removesuffix(";"))
    try:
        _statm_fd = os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        _statm_fd = -1


def _ensure_watchdog() -> None:
    """Start the watchdog thread with the first context: after confinement (threads
    started later are confined as the worker is), with the stop signals blocked."""
    global _watchdog_started
    if _watchdog_started:
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        threading.Thread(target=_watch, args=(_watch_fd,), name="isolate-v8-watchdog", daemon=True).start()
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)
    _watchdog_started = True


def set_stop_check(check: Callable[[], bool]) -> None:
    """The worker's test of whether a stop signal just received is due (see worker.py)."""
    global _stop_due
    _stop_due = check


# The hub's code: a host hook on an entry object, whose calls run in the hub (so what
# STPyV8 converts for them is converted there, never in the caller's context).
_HUB = "(function (py) { return function (entry) { entry.hook = function (t) { return py(t); }; }; })"


def _host_hook(text: str) -> str:
    """JS called a host function: the context whose op runs innermost made the call."""
    return _current[-1]._call_python(text)


def _resident() -> int:
    if _statm_fd < 0:
        return 0
    fields = os.pread(_statm_fd, 128, 0).split()
    return int(fields[1]) * _PAGE


def _terminate() -> None:
    """Stop the JS running now (the watchdog, holding the GIL, only while JS is on the stack)."""
    global _terminations, _flush_needed
    isolate = _V.v8_default_isolate
    isolate.enter()
    try:
        _V.JSEngine.terminateAllThreads()
    finally:
        isolate.leave()
    _terminations += 1
    _flush_needed = True


def _watch(read_fd: int) -> None:
    """The watchdog thread: stop signals and memory limits, while JS runs."""
    while True:
        timeout = _MEMORY_POLL_S if _limited else None
        try:
            readable, _, _ = select.select([read_fd], [], [], timeout)
        except InterruptedError:
            continue
        signalled = False
        if readable:
            try:
                signalled = any(os.read(read_fd, 512))  # 0 only wakes the memory sampling
            except BlockingIOError:
                pass
        # The GIL is held from here to the terminate: the main thread (in V8 without
        # it) cannot leave V8's accounting half-done meanwhile.
        if not _in_js:
            continue
        if signalled and _stop_due():
            _terminate()
            continue
        limited = _limited[-1:]
        if limited and limited[0]._limit and _resident() - limited[0]._base > limited[0]._limit and _in_js:
            limited[0]._oom = True
            _terminate()


def engine_running() -> bool:
    return _running_ops > 0


def in_abort_tail(frame) -> bool:
    """True while a host call that was aborted is still returning into V8 (the stop
    is raised once V8 is left: see bridge.js's spin)."""
    code = V8Context._call_python.__code__
    while frame is not None:
        if frame.f_code is code:
            return not frame.f_locals.get("waiting", False)
        frame = frame.f_back
    return False


# Installed after the bridge in every context: the entry object, named at random.
# Only ASCII leaves: every UTF-16 surrogate is escaped (JSON.stringify escapes lone
# ones already; pairs it writes raw, and STPyV8 would mangle them).
_HOOKS = r"""
const NAME = (function (G, stash) {
  'use strict';
  const JSONStringify = JSON.stringify, JSONParse = JSON.parse;
  const ObjectSetPrototypeOf = Object.setPrototypeOf, ReflectApply = Reflect.apply;
  const charCodeAt = String.prototype.charCodeAt, slice = String.prototype.slice;
  const numberToString = Number.prototype.toString;
  const enter = stash.enter;
  // The global's prototype is Object.prototype, as in a QuickJS context (V8's API
  // contexts put an empty object from the global template in between).
  try { ObjectSetPrototypeOf(G, Object.prototype); } catch (e) { /* leave it */ }
  function ascii(s) {
    let out = '', from = 0;
    const n = s.length;
    for (let i = 0; i < n; i++) {
      const c = ReflectApply(charCodeAt, s, [i]);
      if (c >= 0xD800 && c <= 0xDFFF) {
        out += ReflectApply(slice, s, [from, i]) + '\\u' + ReflectApply(numberToString, c, [16]);
        from = i + 1;
      }
    }
    return from === 0 ? s : out + ReflectApply(slice, s, [from]);
  }
  const entry = { __proto__: null, reply: undefined, hook: undefined,
    enter(request, token) {
      entry.reply = enter(request, token);
    },
    serialize() {
      const r = entry.reply;
      entry.reply = undefined;
      return ascii(JSONStringify(r));
    },
  };
  stash.callPython = function (name, id, v, t) {
    const args = [id, v, t];
    ObjectSetPrototypeOf(args, null);
    const reply = JSONParse(entry.hook(ascii(JSONStringify(args))));
    if (reply !== null && typeof reply === 'object') ObjectSetPrototypeOf(reply, null);
    return reply;
  };
  return entry;
})(globalThis, BRIDGE);
NAME
"""


class V8Context:
    """A V8 context with the bridge installed."""

    def __init__(self, on_host_call: HostCall, on_abort: Callable[[BaseException], None] | None = None):
        if _V is None:
            start()
        _ensure_watchdog()
        self._on_host_call = on_host_call
        self._on_abort = on_abort
        self._ended_by: dict | None = None  # see _call_python
        self.usable = True
        self._limit = 0
        self._base = 0
        self._oom = False
        self._calls = 0
        self._ctx = _V.JSContext()
        self._ctx.enter()
        try:
            self._entry = self._ctx.eval(_install_source, _OWN_FILE)
        finally:
            self._ctx.leave()
        _hub.enter()
        try:
            _install_hook(self._entry)  # converted in the hub: nothing of Python in this context
        finally:
            _hub.leave()
        self._serialize_source = _entry_name + ".serialize()"

    def rebind(self, on_host_call: HostCall, on_abort: Callable[[BaseException], None] | None = None) -> None:
        self._on_host_call = on_host_call
        self._on_abort = on_abort

    # -- host calls ------------------------------------------------------------
    def _call_python(self, text: str) -> str:
        terminations = _terminations
        # `waiting`: as in workers/engine.py (read by in_abort_tail).
        try:
            waiting = True
            function_id, tagged_args, tagged = json.loads(text)
            reply = self._on_host_call(function_id, tagged_args, tagged)
            waiting = False
            if _terminations != terminations:
                # A nested op on this thread was terminated (its own timeout or
                # interrupt): V8 stops every script on the thread with it, this one
                # too as the reply returns (STPyV8 has no CancelTerminateExecution).
                # The op reports the host function's outcome as what ended it.
                self._ended_by = reply
            return json.dumps(reply, allow_nan=False)
        except BaseException as exc:
            waiting = False  # noqa: F841 (in_abort_tail reads it through the frame)
            # A stop that landed during the host call: JS must not be able to catch
            # it. The worker delivers it again; the bridge spins until V8 is stopped.
            if self._on_abort is None:
                raise
            self._on_abort(exc)
            return _ABORTED_REPLY

    # -- operations --------------------------------------------------------------
    def op(self, *request: Any, drain: bool = True) -> dict:
        """One bridge op; its reply. (V8 runs the promise jobs an op queued when the
        outermost entry returns: ``drain`` cannot hold them back, and need not: none
        are left between ops.)

        A stop (the worker's signal handlers) may be raised at any call boundary here,
        so the bookkeeping that must be undone is undone by plain statements (no call
        between them, where Python runs a pending handler) and the one call last."""
        if not self.usable:
            raise EngineError("the context is unusable", unusable=True)
        global _running_ops
        self._calls = (self._calls + 1) & 0x3FFFFFFF
        text = request_text(request).decode("utf-8", "surrogatepass")  # JSON text values spliced in
        limited = bool(self._limit)
        self._ctx.enter()
        _running_ops += 1
        _current.append(self)
        if limited:
            _limited.append(self)
        try:
            if limited:
                try:
                    os.write(_wake_fd, b"\0")  # the watchdog starts sampling
                except OSError:
                    pass
            if _flush_needed:
                _flush(self._ctx)
            done = self._run(f"{_entry_name}.enter({json.dumps(text)}, {self._calls})")
            text = self._run(self._serialize_source) if done else None
        finally:
            _running_ops -= 1
            del _current[-1]
            if limited:
                del _limited[-1]
            self._ctx.leave()
        if self._oom:
            self._oom = False
            self._recover_memory()
            return _oom_reply()
        ended_by, self._ended_by = self._ended_by, None
        if text is None and ended_by is not None:
            if not ended_by.get("ok"):
                return {"ok": False, "e": ended_by["e"]}  # as if the host's error went uncaught
            raise EngineError("the script was terminated: a nested call on this worker was stopped, "
                              "and V8 stops every script on the thread with it")
        if text is None:
            _await_stop()
            raise EngineError("the script was terminated")
        if "<isolate-bridge>" in text or "at eval (" in text:
            text = _node_frames(text)
        return json.loads(text)

    def _run(self, source: str):
        """Run one entry script; its value, or None when V8 was terminated.

        No lock with the watchdog: it reads and terminates holding the GIL, which this
        thread holds between the statements here (V8 runs without it). A termination
        that lands as the script returns is left pending in V8: _flush clears it."""
        global _in_js
        before = _terminations
        _in_js += 1
        try:
            value = self._ctx.eval(source, _OWN_FILE)
        finally:
            _in_js -= 1
        if _terminations != before:
            return None
        return True if value is None else value

    def _recover_memory(self) -> None:
        """After an op stopped at the memory limit: measure from closer to here (V8 frees
        the op's garbage by itself, and resident pages lag behind)."""
        self._base = max(self._base, _resident() - self._limit // 2)

    def compile_script(self, *args, **kwargs):
        raise EngineError("V8 contexts run scripts from source (the bridge's run op)")

    def run_compiled(self, compiled, mirror: bool) -> dict:
        raise EngineError("V8 contexts run scripts from source (the bridge's run op)")

    def memory_usage(self, raw: bool = False) -> dict[str, int] | None:
        """The worker's resident growth since this context was made (V8's binding has
        no per-context heap figures), and the context's limit."""
        used = max(_resident() - self._base, 0) if self._base else 0
        return {"memory_used_size": used, "malloc_size": used, "malloc_limit": self._limit,
                "obj_count": 0, "resident_size": _resident()}

    def set_memory_limit(self, nbytes: int) -> bool:
        if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 0:
            raise EngineError(f"memory limit must be a number of bytes, got {nbytes!r}")
        if _statm_fd < 0:
            raise EngineError("the worker's memory cannot be sampled (/proc/self/statm)")
        self._limit = nbytes
        self._base = _resident()
        return True

    def run_gc(self) -> bool:
        """False: STPyV8 cannot ask V8 to collect (its lowMemory binding is broken, and
        V8's flags are frozen once it runs); V8 collects on its own."""
        return False

    def close(self) -> None:
        """Drop the context (V8 collects it; nothing of Python was converted into it)."""
        self._ctx = self._entry = None
        self.usable = False


# Frames of the machinery in V8's stacks (the JSON text of a reply, where a newline is
# "\\n"): the entry script's, the indirect eval's own; and V8's "at eval (FILE:L:C)" for
# a script's top-level code, which Node writes "at FILE:L:C".
_OWN_FRAMES = re.compile(r"\\n    at (?:<isolate-bridge>:\d+:\d+|eval \(<anonymous>\))")
_EVAL_FRAME = re.compile(r"\\n    at eval \(([^()\\]*:\d+:\d+)\)")


def _node_frames(text: str) -> str:
    text = _OWN_FRAMES.sub("", text)
    return _EVAL_FRAME.sub(lambda m: "\\n    at " + m.group(1), text)


def _flush(ctx) -> None:
    """Consume a termination the watchdog requested after the JS it meant had
    returned (V8 would stop the next entry with it)."""
    global _flush_needed, _in_js
    for _ in range(3):
        before = _terminations
        _in_js += 1
        try:
            ctx.eval("0", _OWN_FILE)
        finally:
            _in_js -= 1
        if _terminations == before:
            break
    _flush_needed = False


def _await_stop() -> None:
    """V8 was terminated for a stop the worker's handler has not raised yet (it was
    deferred, or is delivered again in a moment): wait here, as an engine op, for it."""
    global _running_ops
    _running_ops += 1
    try:
        end = time.monotonic() + 0.25
        while time.monotonic() < end:
            time.sleep(0.0002)
    finally:
        _running_ops -= 1


def _oom_reply() -> dict:
    from .tagged import to_tagged

    error = ErrorValue("InternalError", "out of memory", "InternalError: out of memory")
    return {"ok": False, "e": to_tagged(error)[0], "t": True}


def check_script(code: str, filename: str) -> dict:
    """Whether ``code`` compiles as a script, none of it run: the bridge's reply (ok, or
    the SyntaxError). Evaluated after ``throw 0;`` in a fresh context, dropped after: a
    script that parses only instantiates its declarations there, then throws 0."""
    context = V8Context(lambda *a: {"ok": False, "e": None})
    try:
        reply = context.op("run", "throw 0;\n" + code, filename, False, -1, 0, True)
    finally:
        context.close()
    if not reply.get("ok") and reply.get("e") == 0:
        return {"ok": True, "v": True, "t": False}
    return reply


def function_body_compiles(code: str, params: list | None) -> bool:
    """Whether ``code`` is a function body taking ``params`` (none of it runs): the
    bridge's check_syntax op in a fresh context, dropped after."""
    context = V8Context(lambda *a: {"ok": False, "e": None})
    try:
        return bool(context.op("check_syntax", code, "<isolate-check>", 0, 0, False, params).get("ok"))
    finally:
        context.close()


def _description() -> str:
    try:
        from importlib.metadata import version

        binding = f"STPyV8 {version('stpyv8')}"
    except Exception:
        binding = "STPyV8"
    return f"V8 via {binding}"


KIND = EngineKind(
    name="v8", description=_description(), new_context=V8Context, running=engine_running,
    in_abort_tail=in_abort_tail, function_body_compiles=function_body_compiles, error_type=EngineError,
    native_scripts=False, cached_data=False, modules=False, start=start, check_script=check_script)
