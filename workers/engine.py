"""Engine adapter: the only module that touches dukpy (QuickJS-ng).

One :class:`EngineContext` is one QuickJS runtime + context from
``dukpy._dukpy.create_context()`` with the JS bridge (``bridge.js``)
installed. dukpy's ``JSInterpreter`` is deliberately not used: it copies the
host environment into ``process.env`` and defines ``require``/``console``.

Everything runs through QuickJS-ng's C API, which dukpy's extension exports
(workers/quickjs.py, bound with ctypes and verified at start): the bridge is
loaded from bytecode into each new context, hands its entry function to this
module through a stash object no script can reach, and every operation is a
call of that entry with the request as JSON text. There is no fallback through
dukpy's own eval: where the C API cannot be verified, contexts are refused
(:func:`refusal` says why) and the pool reports it when it starts.
"""

from __future__ import annotations

import ctypes
import json
import math
import struct
from typing import Any, Callable

from ..protocol.plainjson import loads as _json_loads
from ..protocol.values import ErrorValue, JSONText, undefined

from .quickjs import (
    FALSE, GPN_ENUM_ONLY, GPN_STRING_MASK, PROP_C_W_E, PROP_GETSET, TRUE, UNDEFINED, WRITE_OBJ_BYTECODE,
    WRITE_OBJ_STRIP_DEBUG, WRITE_OBJ_STRIP_SOURCE, EvalFlag, JSPropertyDescriptor, JSPropertyEnum, JSValue, Tag,
    quickjs,
)
from .bridgesource import BRIDGE_PARTS, bridge_source, part_source
from .fastjson import RAW_REPLY_MIN_BYTES, raw_reply, request_text, value_text
from .tagged import TAG
from .quickjs import dukpy_extension
from .quickjs import reset_for_new_process as _reset_quickjs
from .quickjs import status as quickjs_status

__all__ = ["EngineContext", "EngineError", "ENGINE_NAME", "in_abort_tail", "engine_running"]

# dukpy's package has no __version__ (it is >= 0.6, the first on QuickJS-ng); its
# package is not imported here either (see quickjs.dukpy_extension).
ENGINE_NAME = "QuickJS-ng via dukpy 0.6"
_dukpy = dukpy_extension()
_BRIDGE_SOURCE = bridge_source().encode("utf-8")

# The reply of a host function: {"ok": bool, "v"/"e": tagged value}.
HostCall = Callable[[int, Any, bool], dict]


# The bridge answers this reply by spinning until the engine's interrupt hook
# stops the script: no JS `catch` or `finally` runs in between.
_ABORTED_REPLY = json.dumps({"abort": True}).encode()


_running_ops = 0  # engine ops on the stack (nested ops come from host calls)

# What a context at its memory limit may use beyond it, for the bridge's reply and
# the op that frees memory (see "At the memory limit" in EngineContext).
MEMORY_RESERVE = 512 * 1024
_UNLIMITED = 1 << 62
# -- the primitive fast path of run_compiled ---------------------------------------
# A script whose completion value is a primitive needs none of the bridge's
# `finish` step (stash it, JSON.stringify the reply, json.loads it: ~25 us): the
# value is read from the JSValue itself, as the bridge would have encoded it
# (numbers as JSON gives them back: integral ones below 1e21 as int; -0, NaN and
# the infinities are left to the bridge, which tags them). Only when nothing
# else of `finish` matters: no mirror, no promise job to drain, and the bridge's
# positions (`lastRun`) already as a `finish` leaves them.
_NOT_PRIMITIVE = object()
_POSITION_OPS = frozenset(("finish", "run"))   # the bridge ops that set its `lastRun`
# A sandbox's JSON text up to this size is set through the C API (EngineContext.
# _set_plain_globals), which reads it in Python for its keys; a larger one goes to the
# bridge's op, which splices it into its request unread.
_GLOBALS_TEXT_MAX = 16 * 1024
# A mirror with up to this many globals is read through the C API when all are
# primitives (EngineContext._primitive_globals): past it, the bridge's encode is faster.
_MIRROR_C_API_MAX_KEYS = 64
_float_tag: int | None = None   # QuickJS-ng's tag of a double: 7 before 0.10, 8 since (probed)


def _primitive(api, ctx, value: JSValue) -> Any:
    """The Python value of a primitive ``value`` (not consumed), or _NOT_PRIMITIVE."""
    tag = value.tag
    if tag == Tag.INT:
        return ctypes.c_int32(value.u).value
    if tag == Tag.STRING:
        text = api.to_text(ctx, value)
        return _NOT_PRIMITIVE if text is None else text
    if tag == Tag.BOOL:
        return (value.u & 0xFFFFFFFF) != 0
    if tag == Tag.NULL:
        return None
    if tag == Tag.UNDEFINED:
        return undefined
    if tag == (_float_tag if _float_tag is not None else _probe_float_tag(api, ctx)):
        number = _DOUBLE.unpack(_INT64.pack(value.u))[0]
        if number != number or number in (_INF, -_INF) or (number == 0 and math.copysign(1, number) < 0):
            return _NOT_PRIMITIVE
        return int(number) if number.is_integer() and abs(number) < 1e21 else number
    return _NOT_PRIMITIVE


def _probe_float_tag(api, ctx) -> int:
    global _float_tag
    probe = api.eval(ctx, b"0.5", 3, b"<isolate-probe>", EvalFlag.TYPE_GLOBAL)
    _float_tag = probe.tag if probe.tag not in (Tag.EXCEPTION, Tag.OBJECT, Tag.STRING) else -100
    if probe.tag == Tag.EXCEPTION:
        api.clear_exception(ctx)
    return _float_tag


_DOUBLE, _INT64, _INF = struct.Struct("<d"), struct.Struct("<q"), float("inf")


def _utf8(api, ctx, value: JSValue) -> bytes | None:
    """A JS string's UTF-8 bytes (JSON text is well-formed: lone surrogates are escaped),
    or None if the conversion threw."""
    size = ctypes.c_size_t(0)
    ptr = api.to_cstring_len(ctx, ctypes.byref(size), value, 0)
    if not ptr:
        api.clear_exception(ctx)
        return None
    try:
        return ctypes.string_at(ptr, size.value)
    finally:
        api.free_cstring(ctx, ptr)


def _reply_loads(raw: bytes) -> Any:
    """The value of JSON text the bridge wrote, as the standard decoder reads it (an
    integral number past 2^64 stays an int: the encoder decides what it becomes)."""
    return json.loads(raw.decode("utf-8", "surrogatepass"))


def _oom_reply() -> dict:
    """The reply of an op that failed for lack of memory, when the bridge could not make one."""
    from .tagged import to_tagged  # the tagged form of errors is tagged.py's to define

    error = ErrorValue("InternalError", "out of memory", "InternalError: out of memory")
    return {"ok": False, "e": to_tagged(error)[0], "t": True}


def _memory_like(e) -> bool:
    """Whether a tagged thrown value is QuickJS's "out of memory" (or its null)."""
    if isinstance(e, list) and e:  # an Error in tagged JSON: [{"\0": "e", name, message, stack}, props...]
        e = e[0]
    return e is None or (isinstance(e, dict) and e.get("message") == "out of memory"
                         and e.get("name") == "InternalError")


def _bare_internal_error(e) -> bool:
    """Whether a tagged thrown value is an InternalError with no message: what QuickJS
    throws when it had room for the error object but not for its "out of memory" text."""
    if isinstance(e, list) and e:
        e = e[0]
    return isinstance(e, dict) and e.get("name") == "InternalError" and not e.get("message")


def engine_running() -> bool:
    """True while an engine op is running: a stop signal then has a script to stop."""
    return _running_ops > 0


def in_abort_tail(frame) -> bool:
    """True while a host call that was aborted is still returning into the engine.

    A stop signal handled there would be caught by dukpy and become a
    catchable JS error; the handler must defer it until the engine runs.
    """
    code, engine_call = EngineContext._call_python.__code__, EngineContext._js.__code__
    while frame is not None:
        if frame.f_code is code:
            return not frame.f_locals.get("waiting", False)
        if frame.f_code in DEFERRING_CODES:
            return bool(frame.f_locals.get("defer_stops", True))
        if frame.f_code is engine_call and _in_host_hook(frame.f_locals):
            return True
        frame = frame.f_back
    return False


def _in_host_hook(engine_call: dict) -> bool:
    """Whether the engine entry of this ``EngineContext._js`` frame (its locals) is
    inside dukpy's native ``call_python``.

    That function checks for signals itself, just before it calls ``_call_python`` and
    just after it returned, and turns a raise there into a *catchable* "interrupted"
    error while Python's error indicator stays set. The script then runs on with an
    exception pending, and the next signal handler runs with it set (seen in CI as a
    SystemError from the handler, not the timeout). No Python frame shows these two
    moments: the bridge counts its calls of the hook in memory this side reads, and an
    entry is in a call of the hook when the count is above what it was as the entry
    began (an entry made during a host call, e.g. a nested op on the same context, began
    with the outer call counted).
    """
    calls = _hook_calls_by_ctx.get(engine_call.get("ctx"))
    return calls is not None and calls.value > engine_call.get("hooks_at_entry", 0)


def _hook_calls(ctx) -> int:
    calls = _hook_calls_by_ctx.get(ctx)
    return 0 if calls is None else calls.value


# Each engine's count of host hook calls, by its JSContext pointer (an int): added
# when the bridge gets its hook, dropped by close(). (A weak mapping cost 1% of a
# fresh context's time in its callback.) An entry left by an engine dropped without
# close() is replaced by the next engine at that address.
_hook_calls_by_ctx: dict[int, ctypes.c_int32] = {}


# Code of other Python functions the engine calls into (QuickJS's module hooks, in
# workers/modules.py): in their frames stop signals wait for the engine too, unless the
# frame's local ``defer_stops`` is false (while it waits for the host).
DEFERRING_CODES: set = set()


def _positioned(source: str, column_offset: int) -> bytes:
    """The source as QuickJS compiles it: a column offset shifts the first line
    (QuickJS has no column option; Node applies the offset to line 1 only)."""
    return (" " * max(column_offset, 0) + source).encode("utf-8", "surrogatepass")


class EngineError(Exception):
    """dukpy raised outside the bridge's own error handling.

    ``unusable`` is true when dukpy refuses further evals in this context
    (it does so after an interrupt landed while promise jobs were draining).
    """

    def __init__(self, message: str, unusable: bool = False):
        super().__init__(message)
        self.unusable = unusable


class EngineContext:
    """A QuickJS context with the bridge installed. Single-threaded, like QuickJS."""

    def __init__(self, on_host_call: HostCall, on_abort: Callable[[BaseException], None] | None = None):
        bytecode = _get_bridge_bytecode()
        if not bytecode.available:
            # There is no second way in: dukpy's own eval would leave the bridge's
            # entry on the global, where a script could capture it (issue 13).
            raise EngineError(refusal(bytecode.reason))
        self._init_raw(on_host_call, on_abort)
        self._installed = bytecode.install(self)
        self._native_ready()  # every op through the C API from the start

    def rebind(self, on_host_call: HostCall, on_abort: Callable[[BaseException], None] | None = None) -> None:
        """Give a context made ahead of time (a worker's spare) the hooks of the
        context it becomes. Only before any op: nothing has called a hook yet."""
        self._on_host_call = on_host_call
        self._on_abort = on_abort

    def _init_raw(self, on_host_call: HostCall, on_abort) -> None:
        # dukpy reads `_ctx` and calls `_check_exported_function_exists` and
        # `_call_python` on the object passed to eval_string: this object.
        self._ctx = _dukpy.create_context()
        self._on_host_call = on_host_call
        self._on_abort = on_abort
        self.usable = True
        self._stash = None      # the bridge's stash object (a JSValue we own), once taken
        self._installed = None  # the stash as installation returned it, until _native_ready takes it
        self._native = None
        self._enter = None      # the bridge's entry function (a JSValue we own), with the stash
        self._realm = None      # the bridge's own bare realm (JSContext*, borrowed: see _native_ready)
        self._draining = False
        # The bridge's lastRun is as `finish` leaves it (see _primitive): so it starts
        # (bridge.js: `let current = ...; let lastRun = current;`, what finish sets).
        self._positions_reset = True
        # Memory (see "At the memory limit" below).
        self._limit = 0           # the cap set with set_memory_limit (0: dukpy's own default)
        self._reserve_base = 0    # while the reserve is lent: the cap to return to
        self._entries = 0         # engine entries (ops, runs, compiles) on the stack
        self._oom = False         # memory ran out during the current outermost entry
        self._calls = 0           # the token of the latest entry into the bridge (see enter)
        self._argv = (JSValue * 2)(UNDEFINED, JSValue(0, Tag.INT))  # the entry's arguments: request, token
        # The bridge's calls of the host hook in progress: an Int32Array over this
        # memory counts them (see _in_host_hook). Reset by every outermost op.
        self._host_hook_calls = ctypes.c_int32(0)
        self._token = self._argv[1]   # a view of the token's slot

    # -- hooks dukpy calls -------------------------------------------------
    def _check_exported_function_exists(self, name: bytes) -> bool:
        return name == b"call" or name == b"unshared" or name == b"part"

    def _call_python(self, name: bytes, json_args: bytes) -> bytes:
        # `waiting` (read by in_abort_tail) is true only while the host call can
        # still be abandoned; before it is set (a stop handled as this frame
        # starts) and once the host has answered, a stop waits for the engine.
        # Raised there, it would reach dukpy and become a catchable JS error, and
        # its re-delivery, handled inside dukpy's formatting of that error, a
        # catchable "Unknown Error".
        try:
            waiting = True
            if name == b"unshared":  # the bridge's own question (bridge.js, askUnshared)
                answer = self._root_unshared()
                waiting = False
                return str(answer).encode()
            if name == b"part":  # the bridge asks for one of its parts (bridge.js, bridgePart)
                loaded = self._load_part(json.loads(json_args))
                waiting = False
                return b"true" if loaded else b"false"
            function_id, tagged_args, tagged = json.loads(json_args)
            reply = self._on_host_call(function_id, tagged_args, tagged)
            waiting = False
            return json.dumps(reply, allow_nan=False).encode()
        except BaseException as exc:
            waiting = False  # noqa: F841 (in_abort_tail reads it through the frame)
            # dukpy would turn this into a JS InternalError that the script
            # could catch. A timeout or interrupt must stay uncatchable: the
            # worker re-raises its signal so the engine's interrupt hook stops
            # the script at its next check, and JS sees the host call fail.
            if self._on_abort is None:
                raise
            self._on_abort(exc)
            return _ABORTED_REPLY

    def _root_unshared(self) -> int:
        """For the value the bridge is encoding (its stash's ``checkRoot``): the size of
        its JS_WriteObject text if no object is met twice in it, else 0 (see
        QuickJS.unshared). A stop raised inside (a getter the check ran looped) ends the
        check as it ends a host call (``waiting`` is true)."""
        api, _, ctx = self._native
        root = api.get_property_str(ctx, self._stash, b"checkRoot")
        try:
            return self._js(api, ctx, api.unshared, ctx, root) if root.tag == Tag.OBJECT else 0
        finally:
            api.free_value(ctx, root)

    def _load_part(self, args) -> bool:
        """Read a part of the bridge (``args``: ``[name]``) into this context and leave its
        function in the stash's ``part``; False with what reading it threw left there
        instead (workers/bridgesource.py). Reading makes the part's function and runs
        nothing else. Out of memory, memory is made and the read tried once more."""
        api, rt, ctx = self._native
        name = args[0] if isinstance(args, list) and args else None
        bytecode = _get_bridge_bytecode().parts.get(name) if isinstance(name, str) else None
        if bytecode is None:
            api.set_property_str(ctx, self._stash, b"part", UNDEFINED)
            return False
        for attempt in (1, 2):
            fn = self._js(api, ctx, api.deserialize, ctx, bytecode)
            made = fn if fn.tag == Tag.EXCEPTION else self._js(api, ctx, api.eval_function, ctx, fn)  # consumes fn
            if made.tag != Tag.EXCEPTION:
                api.set_property_str(ctx, self._stash, b"part", made)  # consumes it
                return True
            if attempt == 1 and self._failed_for_memory(api, rt, ctx):
                continue
            break
        api.set_property_str(ctx, self._stash, b"part", api.take_exception(ctx))
        return False

    # -- operations --------------------------------------------------------
    def op(self, *request: Any, drain: bool = True) -> dict:
        """Run one bridge operation; returns its reply ``{"ok", "v"|"e", "t", ...}``.

        Raises EngineError when dukpy itself fails (the bridge could not
        answer), and lets BaseExceptions raised by signal handlers (timeouts)
        propagate unchanged. ``drain=False`` leaves queued promise jobs for the
        next op (for the worker's own ops, which must not run the user's jobs).
        """
        if not self.usable:
            raise EngineError("the context is unusable after an interrupted promise job", unusable=True)
        if request[0] in _POSITION_OPS:
            self._positions_reset = request[0] == "finish"
        if request[0] == "set_globals" and len(request) == 2 and not self._entries:
            reply = self._set_plain_globals(request[1], drain)
            if reply is not None:
                return reply
        return self._op_native(request, drain)

    def _set_plain_globals(self, entries, drain: bool) -> dict | None:
        """The bridge's set_globals for untagged values (most sandboxes), through the C
        API: their JSON text parsed in the script's realm (JSON.parse's parser: own data
        properties, as the bridge's request parse makes them), each key defined on the
        global as the bridge's Object.defineProperty defines it (enumerable, writable,
        configurable; no setter runs). One bridge entry less per fresh context (~25 us).

        The entries are a dict, or the host's whole sandbox as one JSON text (read here
        for its keys). None, with nothing done, for what the bridge must do itself: tagged
        values, JSON text to splice inside them, a sandbox text over _GLOBALS_TEXT_MAX
        bytes, a key the C API cannot name (not ASCII, or holding a NUL), no memory to
        parse. A key the global refuses (a non-configurable global such as
        ``undefined``) or that fails otherwise goes to the bridge's op with the keys
        after it: it assigns there, or throws what it throws, with the same keys defined
        in the end as the op alone would have (it defines index keys first)."""
        if not (isinstance(entries, (list, tuple)) and len(entries) == 2 and entries[1] is False):
            return None
        values = entries[0]
        if type(values) is JSONText:  # the host's sandbox as one JSON text (isolate/context.py)
            text = values.data
            if len(text) > _GLOBALS_TEXT_MAX:
                return None  # large: the bridge parses it, with no Python copy of it
            try:
                values = _json_loads(text)  # for its keys (and the rest, should a key be refused)
            except ValueError:
                return None
        else:
            text = value_text(values) if type(values) is dict else None
        if type(values) is not dict or text is None:
            return None
        if not all(type(key) is str and key.isascii() and "\x00" not in key for key in values):
            return None
        api, rt, ctx = self._native_ready()
        api.update_stack_top(rt)
        parsed = self._js(api, ctx, api.parse_json, ctx, text, len(text), b"<globals>")
        if parsed.tag == Tag.EXCEPTION:
            api.clear_exception(ctx)
            return None
        glob = api.get_global_object(ctx)
        try:
            keys = list(values)
            for i, key in enumerate(keys):
                name = key.encode("ascii")
                value = api.get_property_str(ctx, parsed, name)  # plain data: no getter
                defined = -1 if value.tag == Tag.EXCEPTION else \
                    api.define_property_value_str(ctx, glob, name, value, PROP_C_W_E)  # consumes value
                if defined != 1:
                    if defined < 0:
                        api.clear_exception(ctx)
                    rest = {k: values[k] for k in keys[i:]}
                    return self._op_native(("set_globals", [rest, False]), drain)
        finally:
            api.free_value(ctx, glob)
            api.free_value(ctx, parsed)
        return {"ok": True, "v": {TAG: "u"}, "t": True}

    def _op_native(self, request: tuple, drain: bool = True) -> dict:
        """An op without dukpy's eval: call the bridge's entry, drain the jobs,
        serialize the reply, all through the C API.

        dukpy's eval defines its hooks on the global before every call (which
        fails for good once a script froze the global) and runs two full
        garbage collections per call; this path does neither. Drained here as
        dukpy does: after the op, unless an outer op is draining already; a
        drain stopped with jobs still queued leaves the context unusable (the
        jobs would otherwise run later without any deadline). A step that fails
        for lack of memory is handled as "At the memory limit" describes.
        """
        api, rt, ctx = self._native
        global _running_ops
        text = request_text(request)  # a large plain value's JSON text spliced in unparsed
        if not self._entries:
            self._oom = False
            self._host_hook_calls.value = 0  # no count outlives its op (see _in_host_hook)
        self._entries += 1
        _running_ops += 1
        try:
            api.update_stack_top(rt)
            arg = api.new_string_len(ctx, text, len(text))
            if arg.tag == Tag.EXCEPTION:  # not even room for the request: nothing has run
                api.clear_exception(ctx)
                self._out_of_memory(api, rt)
                arg = api.new_string_len(ctx, text, len(text))
                if arg.tag == Tag.EXCEPTION:
                    api.clear_exception(ctx)
                    return _oom_reply()
            try:
                reply = self._enter_bridge(api, ctx, arg)
                if reply.tag == Tag.EXCEPTION:
                    # The bridge catches what the op throws: an exception out of it is
                    # the bridge's own failure, almost always for lack of memory. If the
                    # op had not begun, it is tried once more with memory made;
                    # otherwise the reply says "out of memory" (it may have run).
                    if not self._failed_for_memory(api, rt, ctx):
                        raise EngineError(self._exception_text(api, ctx))
                    if self._op_started():
                        self._clear_stash(api, ctx)
                        return _oom_reply()
                    reply = self._enter_bridge(api, ctx, arg)
                    if reply.tag == Tag.EXCEPTION:
                        api.clear_exception(ctx)
                        self._clear_stash(api, ctx)
                        return _oom_reply()
            finally:
                api.free_value(ctx, arg)
            try:
                if drain and not self._draining:
                    self._drain(api, rt, ctx)
                out = self._serialize(api, rt, ctx, reply)
            finally:
                api.free_value(ctx, reply)
            if not out["ok"]:
                self._failed_reply(api, rt, out)
            return out
        finally:
            _running_ops -= 1
            self._entries -= 1
            if self._reserve_base and not self._entries:
                self._settle_reserve(api, rt)

    def _enter_bridge(self, api, ctx, arg) -> JSValue:
        """Call the bridge's entry with the request (borrowed) and a new token."""
        calls = self._calls = self._calls + 1
        if calls >= 1 << 30:  # keep the token an int32: start again from 1
            api.set_property_str(ctx, self._stash, b"started", JSValue(0, Tag.INT))
            calls = self._calls = 1
        # Reused: JS_Call copies its arguments, so a nested op may refill this at once.
        self._argv[0] = arg
        self._token.u = calls
        return self._js(api, ctx, api.call, ctx, self._enter, UNDEFINED, 2, self._argv)

    def _op_started(self) -> bool:
        """Whether the latest entry into the bridge got as far as running its op."""
        api, _, ctx = self._native
        started = api.get_property_str(ctx, self._stash, b"started")
        return started.tag != Tag.INT or started.u >= self._calls

    def _clear_stash(self, api, ctx) -> None:
        """Forget a stashed outcome the bridge could not reply with."""
        api.set_property_str(ctx, self._stash, b"value", UNDEFINED)
        api.set_property_str(ctx, self._stash, b"thrown", FALSE)

    def _serialize(self, api, rt, ctx, reply) -> dict:
        """The reply object as a dict: JSON.stringify runs its toJSON (the value is
        encoded then). If that fails for lack of memory, collect garbage and try
        once more (the op's own code does not run again: see the bridge's reply)."""
        parsed = self._stringify(api, rt, ctx, reply)
        if parsed is not None:
            if "enc" not in parsed:
                return parsed  # the usual case
            if not _memory_like(parsed.get("e")):
                del parsed["enc"]
                return parsed
            # The op succeeded; encoding its value ran out of memory (often on the
            # bridge's own garbage, which QuickJS collects only now and then).
            self._out_of_memory(api, rt)
        parsed = self._stringify(api, rt, ctx, reply)
        if parsed is None:
            return _oom_reply()
        parsed.pop("enc", None)
        return parsed

    def _stringify(self, api, rt, ctx, reply) -> dict | None:
        """One attempt of _serialize: the dict, or None when memory ran out (memory was
        made since: see "At the memory limit")."""
        # In the bridge's realm: the reply holds no object with a prototype, so nothing a
        # script can reach runs here but the reply's own toJSON (see bridge.js, reply).
        out = self._js(api, ctx, api.json_stringify, self._realm, reply, UNDEFINED, UNDEFINED)
        if out.tag == Tag.EXCEPTION:
            if not self._failed_for_memory(api, rt, ctx):
                raise EngineError(self._exception_text(api, ctx))
            return None
        try:
            raw = _utf8(api, ctx, out)  # clears its own exception on failure
        finally:
            api.free_value(ctx, out)
        if raw is None:  # no room for the reply's UTF-8 copy
            self._out_of_memory(api, rt)
            return None
        # A large plain value goes on as the text JSON.stringify wrote (workers/fastjson.py).
        parsed = raw_reply(raw) or _reply_loads(raw)
        # A large mirrored reply leaves its value and globals in the stash (bridge.js,
        # encodeReply): each is written apart, and a large plain one goes on unparsed.
        for flag, slot, key, tagged in (("vs", b"splitV", "v", "t"), ("gs", b"splitG", "g", "gt")):
            if parsed.pop(flag, False):
                text = self._stash_text(api, rt, ctx, slot)
                if text is None:
                    return None
                parsed[key] = JSONText(text) if not parsed.get(tagged, True) and len(
                    text) >= RAW_REPLY_MIN_BYTES else _reply_loads(text)
        return parsed

    def _stash_text(self, api, rt, ctx, slot: bytes) -> bytes | None:
        """The JSON text of a value the bridge left in its stash (taken out of it), or
        None when memory ran out (memory was made since)."""
        value = api.get_property_str(ctx, self._stash, slot)
        api.set_property_str(ctx, self._stash, slot, UNDEFINED)
        try:
            out = self._js(api, ctx, api.json_stringify, self._realm, value, UNDEFINED, UNDEFINED)
        finally:
            api.free_value(ctx, value)
        if out.tag == Tag.EXCEPTION:
            if not self._failed_for_memory(api, rt, ctx):
                raise EngineError(self._exception_text(api, ctx))
            return None
        try:
            raw = _utf8(api, ctx, out)
        finally:
            api.free_value(ctx, out)
        if raw is None:
            self._out_of_memory(api, rt)
        return raw

    def _drain(self, api, rt, ctx) -> None:
        self._draining = True
        pctx = ctypes.c_void_p()
        try:
            while api.is_job_pending(rt):
                if self._js(api, ctx, api.execute_pending_job, rt, ctypes.byref(pctx)) < 0:
                    # Only uncatchable errors get here (promise reactions catch the rest).
                    raise EngineError(self._exception_text(api, ctx))
        except BaseException:
            if api.is_job_pending(rt):
                self.usable = False
            raise
        finally:
            self._draining = False

    @staticmethod
    def _exception_text(api, ctx) -> str:
        exc = api.take_exception(ctx)
        try:
            return api.to_text(ctx, exc) or "unknown engine error"
        finally:
            api.free_value(ctx, exc)

    # -- code compiled with its real file name -------------------------------
    # dukpy evaluates every script as "<dukpy>"; through QuickJS's C API
    # (workers/quickjs.py) a script is compiled with its file name and first
    # line, once, to bytecode, and run as true global code (top-level let and
    # const persist in the context, `this` is the global). Its outcome goes
    # into the bridge's stash and a `finish` op replies with it, so values,
    # errors, mirrored globals and job draining work exactly as for any op.

    def _native_ready(self):
        api = quickjs()
        if api is None:
            raise EngineError("the QuickJS C API is unavailable: " + quickjs_status()[1])
        if self._stash is None:
            rt, ctx = api.pointers(self._ctx)
            # What dukpy's eval would do first: make this object the host that
            # `call_python` calls (a borrowed pointer: this object owns the context).
            api.set_context_opaque(ctx, id(self))
            api.update_stack_top(rt)
            # The installing script's completion value (see _BridgeBytecode.install).
            stash, self._installed = self._installed, None
            if stash is None or stash.tag != Tag.OBJECT:
                raise EngineError("the bridge has no stash")
            enter = api.get_property_str(ctx, stash, b"enter")
            if enter.tag != Tag.OBJECT:
                api.free_value(ctx, enter)
                api.free_value(ctx, stash)
                raise EngineError("the bridge has no entry in its stash")
            # The bridge's own realm: a bare context on the same runtime that no script
            # ever reaches. dukpy's `call_python` builds its argument array and parses the
            # host's reply in the realm of the function object, and JS_JSONStringify keeps
            # its work list in an array of the realm it is given: made here, neither meets
            # a setter or toJSON a script put on its own Array.prototype or Object.prototype
            # (the bridge hands both only objects without prototypes). The function holds
            # the realm; the pointer is borrowed while the bridge holds the function.
            realm = api.new_context_raw(rt)
            if not realm:
                api.free_value(ctx, enter)
                api.free_value(ctx, stash)
                raise EngineError("no room for the bridge's realm")
            api.set_context_opaque(realm, id(self))
            call_python = api.new_cfunction2(realm, api.call_py_function, b"call_python", 1, 0, 0)
            if call_python.tag != Tag.OBJECT:
                api.clear_exception(realm)
                api.free_context(realm)
                api.free_value(ctx, enter)
                api.free_value(ctx, stash)
                raise EngineError("no room for the bridge's host hook")
            api.free_context(realm)  # the function keeps it alive
            # Made in the script's realm (a bare realm has no ArrayBuffer prototype)
            # before any script ran; the bridge keeps the only reference.
            counter = api.new_array_buffer(ctx, ctypes.addressof(self._host_hook_calls),
                                           ctypes.sizeof(self._host_hook_calls), None, None, False)
            if counter.tag != Tag.OBJECT:
                api.clear_exception(ctx)
                api.free_value(ctx, call_python)
                api.free_value(ctx, enter)
                api.free_value(ctx, stash)
                raise EngineError("no room for the bridge's host hook")
            api.set_property_str(ctx, stash, b"callPython", call_python)  # consumes it
            api.set_property_str(ctx, stash, b"hostHookCalls", counter)  # consumes it
            _hook_calls_by_ctx[ctx] = self._host_hook_calls
            self._enter = enter
            self._stash = stash
            self._realm = realm
            self._native = (api, rt, ctx)
        return self._native

    def compile_script(self, source: str, filename: str, line_offset: int = 0,
                       column_offset: int = 0, display_errors: bool = True) -> tuple[bytes | None, dict | None]:
        """Compile global code without running it: ``(bytecode, None)``, or
        ``(None, reply)`` whose error is the SyntaxError (or "out of memory")."""
        api, rt, ctx = self._native_ready()
        text = _positioned(source, column_offset)
        global _running_ops
        if not self._entries:
            self._oom = False
            self._host_hook_calls.value = 0  # no count outlives its op (see _in_host_hook)
        self._entries += 1
        try:
            _running_ops += 1
            try:
                api.update_stack_top(rt)
                fn = self._js(api, ctx, api.compile, ctx, text, filename, line_offset + 1, EvalFlag.TYPE_GLOBAL)
                if fn.tag != Tag.EXCEPTION:
                    try:
                        return self._bytecode_of(api, rt, ctx, fn), None
                    except MemoryError:
                        return None, _oom_reply()
                    finally:
                        api.free_value(ctx, fn)
                self._stash_exception(api, ctx)
            finally:
                _running_ops -= 1
            return None, self.op("finish", False, True, source, filename, line_offset, column_offset,
                                 display_errors)
        finally:
            self._entries -= 1
            if self._reserve_base and not self._entries:
                self._settle_reserve(api, rt)

    def _bytecode_of(self, api, rt, ctx, fn) -> bytes:
        try:
            return api.serialize(ctx, fn)
        except MemoryError:  # JS_WriteObject found no room: collect, lend the reserve, once more
            self._out_of_memory(api, rt)
            return api.serialize(ctx, fn)

    def run_compiled(self, bytecode: bytes, mirror: bool) -> dict:
        """Run bytecode from :meth:`compile_script` as global code; the reply of ``finish``."""
        api, rt, ctx = self._native_ready()
        if not self.usable:
            raise EngineError("the context is unusable after an interrupted promise job", unusable=True)
        global _running_ops
        if not self._entries:
            self._oom = False
            self._host_hook_calls.value = 0  # no count outlives its op (see _in_host_hook)
        self._entries += 1
        try:
            _running_ops += 1
            try:
                api.update_stack_top(rt)
                fn = api.deserialize(ctx, bytecode)
                if fn.tag == Tag.EXCEPTION:
                    api.clear_exception(ctx)
                    if not self._out_of_memory(api, rt):
                        raise EngineError("the compiled script could not be loaded")
                    fn = api.deserialize(ctx, bytecode)
                    if fn.tag == Tag.EXCEPTION:
                        api.clear_exception(ctx)
                        return _oom_reply()
                result = self._js(api, ctx, api.eval_function, ctx, fn)  # consumes fn
                if result.tag == Tag.EXCEPTION:
                    thrown = api.take_exception(ctx)
                    if thrown.tag == Tag.NULL and (self._limit or self._exhausted()):
                        # QuickJS throws null when it cannot allocate even the error:
                        # make room before the bridge replies (and says what it was).
                        self._out_of_memory(api, rt)
                    api.set_property_str(ctx, self._stash, b"value", thrown)  # consumes it
                    api.set_property_str(ctx, self._stash, b"thrown", TRUE)
                else:
                    if self._positions_reset and not api.is_job_pending(rt):
                        value = _primitive(api, ctx, result)
                        if value is not _NOT_PRIMITIVE:
                            if not mirror:
                                api.free_value(ctx, result)
                                return {"ok": True, "v": value, "t": False}
                            globals_ = self._primitive_globals(api, ctx)
                            if globals_ is not None:
                                api.free_value(ctx, result)
                                return {"ok": True, "v": value, "t": False, "g": globals_, "gt": False}
                    api.set_property_str(ctx, self._stash, b"value", result)  # consumes result
            finally:
                _running_ops -= 1
            return self.op("finish", mirror, False, None, None, 0, 0, False)
        finally:
            self._entries -= 1
            if self._reserve_base and not self._entries:
                self._settle_reserve(api, rt)

    def _primitive_globals(self, api, ctx) -> dict | None:
        """The mirror's globals as the bridge's finish encodes them (its globalsSnapshot:
        the global's own enumerable string keys, in order), read through the C API when
        each is a data property holding a primitive :func:`_primitive` reads and its key
        is ASCII: a fresh context's sandbox mostly. None otherwise (an accessor, an
        object, NaN or -0, which the bridge tags): the bridge's finish then replies.
        Nothing runs: the global has no Proxy, and accessors are not called."""
        glob = api.get_global_object(ctx)
        table, count = ctypes.POINTER(JSPropertyEnum)(), ctypes.c_uint32(0)
        try:
            if api.get_own_property_names(ctx, ctypes.byref(table), ctypes.byref(count), glob,
                                          GPN_STRING_MASK | GPN_ENUM_ONLY) < 0:
                api.clear_exception(ctx)
                return None
            try:
                if count.value > _MIRROR_C_API_MAX_KEYS:
                    return None
                out: dict = {}
                desc, size = JSPropertyDescriptor(), ctypes.c_size_t(0)
                for i in range(count.value):
                    atom = table[i].atom
                    found = api.get_own_property(ctx, ctypes.byref(desc), glob, atom)
                    if found < 0:
                        api.clear_exception(ctx)
                        return None
                    if found == 0:
                        continue  # gone meanwhile (the bridge skips it too)
                    try:
                        value = _NOT_PRIMITIVE if desc.flags & PROP_GETSET else _primitive(api, ctx, desc.value)
                    finally:
                        for part in (desc.value, desc.getter, desc.setter):
                            api.free_value(ctx, part)
                    if value is _NOT_PRIMITIVE:
                        return None
                    name = api.atom_to_cstring_len(ctx, ctypes.byref(size), atom)
                    if not name:
                        api.clear_exception(ctx)
                        return None
                    try:
                        key = ctypes.string_at(name, size.value)
                    finally:
                        api.free_cstring(ctx, name)
                    if not key.isascii():
                        return None
                    out[key.decode("ascii")] = value
                return out
            finally:
                api.free_property_enum(ctx, table, count.value)
        finally:
            api.free_value(ctx, glob)

    # -- at the memory limit ---------------------------------------------------------
    # QuickJS fails an allocation past the runtime's limit with InternalError "out of
    # memory", or, when even that error cannot be allocated, by throwing null. Then the
    # bridge's own next steps (parsing the request, encoding the reply, serializing it)
    # fail too, and every later op with them: the context is stuck at its limit with no
    # way to free anything. So, when an engine step fails for lack of memory:
    #
    # 1. the cycle collector runs (QuickJS does not collect before failing an allocation);
    # 2. if that leaves less than MEMORY_RESERVE free, the runtime's limit is raised by
    #    MEMORY_RESERVE ("the reserve is lent"), so that the bridge can still reply and the
    #    next op can run (`a = null` must be able to free the memory);
    # 3. the op replies InternalError "out of memory" (null becomes that error where the
    #    context has a limit, or memory ran out in this op), built in Python when the
    #    bridge could not reply at all;
    # 4. after every outermost engine entry while the reserve is lent, garbage is
    #    collected, and once the context is MEMORY_RESERVE under its limit again, the
    #    limit goes back to what it was.
    #
    # So user code never gets more than MEMORY_RESERVE past its limit, a context over its
    # limit keeps answering "out of memory" (never a bare null or TypeError), and freeing
    # memory brings it back. memory_usage() reports the limit without the reserve.

    def _failed_for_memory(self, api, rt, ctx) -> bool:
        """After an engine step failed (an exception is pending): whether it failed for
        lack of memory. If so the exception is dropped and memory is made (see above);
        otherwise it is left pending for the caller."""
        thrown = api.get_exception(ctx)
        memory = thrown.tag == Tag.NULL or self._exhausted()
        if not memory:
            # "out of memory" from far below the limit (a large allocation failed).
            memory = api.error_message(ctx, thrown) == "out of memory"
        if not memory:
            api.throw(ctx, thrown)  # back where it was (consumes it)
            return False
        api.free_value(ctx, thrown)
        self._out_of_memory(api, rt)
        return True

    def _failed_reply(self, api, rt, out: dict) -> None:
        """An op replied with an exception: if it is (or stands for) running out of
        memory, make memory and say so."""
        e = out.get("e")
        if (e is None and "e" in out and (self._limit or self._oom or self._exhausted())
                or _bare_internal_error(e) and (self._oom or self._exhausted())):
            out["e"], out["t"] = _oom_reply()["e"], True
            self._out_of_memory(api, rt)
        elif e is not None and _memory_like(e):
            self._out_of_memory(api, rt)

    def _out_of_memory(self, api, rt) -> bool:
        """Memory ran out: collect garbage, and lend the reserve if the context is still
        at its limit. Returns whether the context is (still) at its limit."""
        self._oom = True
        api.run_gc(rt)
        usage = self.memory_usage(raw=True)
        if usage is None:
            return True  # no accounting here: assume the worst
        limit, size = usage["malloc_limit"], usage["malloc_size"]
        if not 0 < limit < _UNLIMITED or limit - size >= MEMORY_RESERVE:
            return False
        if not self._reserve_base:
            self._reserve_base = limit
            api.set_memory_limit(rt, limit + MEMORY_RESERVE)
        return True

    def _exhausted(self) -> bool:
        """Whether the runtime has less than MEMORY_RESERVE left under its limit (or is
        using the lent reserve)."""
        if self._reserve_base:
            return True
        usage = self.memory_usage(raw=True)
        if usage is None:
            return False
        limit = usage["malloc_limit"]
        return 0 < limit < _UNLIMITED and limit - usage["malloc_size"] < MEMORY_RESERVE

    def _settle_reserve(self, api, rt) -> None:
        """End of an outermost entry with the reserve lent: take it back once the
        context is MEMORY_RESERVE under its limit."""
        api.run_gc(rt)
        usage = self.memory_usage(raw=True)
        if usage is not None and usage["malloc_size"] + MEMORY_RESERVE <= self._reserve_base:
            api.set_memory_limit(rt, self._reserve_base)
            self._reserve_base = 0

    @staticmethod
    def _js(api, ctx, fn, *args):
        """Call into QuickJS; if a signal handler raised inside (a timeout or an
        interrupt), drop the uncatchable error QuickJS left pending, and re-raise."""
        hooks_at_entry = _hook_calls(ctx)  # noqa: F841 (in_abort_tail reads it through the frame)
        try:
            return fn(*args)
        except BaseException:
            api.clear_exception(ctx)
            raise

    def _stash_exception(self, api, ctx) -> None:
        api.set_property_str(ctx, self._stash, b"value", api.take_exception(ctx))
        api.set_property_str(ctx, self._stash, b"thrown", TRUE)

    def close(self) -> None:
        """Release what this object holds in the engine (the context itself goes with
        ``_ctx``). Called by the worker when it drops a context; deliberately not a
        ``__del__``: code run by the garbage collector in the middle of an op could
        be where a stop signal lands, and there it would be lost. An engine dropped
        without ``close()`` leaks its small stash object, nothing else."""
        stash, self._stash = self._stash, None
        self._realm = None  # borrowed: it goes with the bridge's function
        if stash is not None and self._native is not None:
            api, _, ctx = self._native
            api.free_value(ctx, self._enter)
            api.free_value(ctx, stash)
            if _hook_calls_by_ctx.get(ctx) is self._host_hook_calls:
                del _hook_calls_by_ctx[ctx]

    def memory_usage(self, raw: bool = False) -> dict[str, int] | None:
        """This runtime's ``JSMemoryUsage`` figures as ints, or None when the
        QuickJS memory API is unavailable (see "Engine memory accounting" below).
        ``malloc_limit`` is the context's limit, without a reserve lent at the limit
        (``raw``: as the runtime has it)."""
        usage = _memory_usage(self)
        if usage is not None and self._reserve_base and not raw:
            usage["malloc_limit"] = self._reserve_base
        return usage

    def set_memory_limit(self, nbytes: int) -> bool:
        """Cap this runtime's heap at ``nbytes`` (0 removes the cap). True when
        applied; raises EngineError naming the reason when it cannot be."""
        applied = _set_memory_limit(self, nbytes)
        self._limit, self._reserve_base = nbytes, 0
        return applied

    def run_gc(self) -> bool:
        """Run QuickJS's cycle collector now; False when the API is unavailable."""
        return _run_gc(self)


# ======================================================================
# Syntax checks: is this text a function body?
# ----------------------------------------------------------------------
# vm.compileFunction (and, without the C API, vm.Script) must refuse a body
# that closes the function it is wrapped in ("}); evil(); (function () {"):
# compiled as written it would run `evil()` in the tenant's context. The text
# becomes the body of a function *declaration* after a `throw 0`:
#
#     throw 0;\nfunction __isolate_body(PARAMS) {\nBODY\n}
#
# Evaluating that instantiates the script's declarations (function objects are
# made, `var`s defined; no user expression, statement or initializer runs) and
# then throws 0 before any statement. A body that closes the wrapper early
# still runs nothing; it is caught by comparing the declared function's source
# text with the whole text (a later declaration of the same name is shorter).
# Each check gets a fresh bare context (no bridge: ~160 us), dropped after.
# ======================================================================

CHECK_FUNCTION = "__isolate_body"


def check_head(params: list | None) -> tuple[str, str]:
    """``(head, declaration)``: the text before the body, and the part of it the
    declared function's source starts with. As the bridge's check_syntax op has
    them (there, the layout keeps QuickJS's error columns as they were)."""
    if params is None:
        decl = f"function {CHECK_FUNCTION}(){{"
    else:
        decl = f"function {CHECK_FUNCTION}({', '.join(params)}) {{\n"
    return "throw 0;\n" + decl, decl


def function_body_compiles(code: str, params: list | None) -> bool:
    """True if ``code`` is a function body taking ``params``; False for a syntax
    error or a body that closes its function. Runs none of ``code``, in a fresh
    bare context of its own. Requires the C API (:func:`quickjs`)."""
    api = quickjs()
    if api is None:
        raise EngineError("the QuickJS C API is unavailable: " + quickjs_status()[1])
    head, decl = check_head(params)
    text = (head + code + "\n}").encode("utf-8", "surrogatepass")
    expected = decl + code + "\n}"
    capsule = _dukpy.create_context()  # freed (runtime and all) when dropped
    rt, ctx = api.pointers(capsule)
    global _running_ops
    _running_ops += 1
    try:
        api.update_stack_top(rt)
        fn = EngineContext._js(api, ctx, api.compile, ctx, text, "<isolate-check>", 1, EvalFlag.TYPE_GLOBAL)
        if fn.tag == Tag.EXCEPTION:
            api.clear_exception(ctx)
            return False
        result = EngineContext._js(api, ctx, api.eval_function, ctx, fn)  # consumes fn
        if result.tag != Tag.EXCEPTION:
            api.free_value(ctx, result)
            return False  # `throw 0` comes first: cannot happen
        thrown = api.take_exception(ctx)
        if thrown.tag != Tag.INT or thrown.u != 0:
            api.free_value(ctx, thrown)
            return False  # instantiating the declarations failed (e.g. `let undefined`)
        glob = api.get_global_object(ctx)
        declared = api.get_property_str(ctx, glob, CHECK_FUNCTION.encode())
        api.free_value(ctx, glob)
        try:
            if declared.tag != Tag.OBJECT:
                return False
            return api.to_text(ctx, declared) == expected  # Function.prototype.toString: pristine here
        finally:
            api.free_value(ctx, declared)
    finally:
        _running_ops -= 1


__all__ += ["function_body_compiles", "check_head", "CHECK_FUNCTION"]


# ======================================================================
# Engine memory accounting and limits: the QuickJS C API through ctypes
# ----------------------------------------------------------------------
# dukpy's extension module exports the QuickJS-ng C API. Its context capsule
# ("DUKPY_CONTEXT_CAPSULE") points to dukpy's private `DukPyContext`, whose
# first two pointer-sized fields are `JSRuntime *runtime` and
# `JSContext *context` (dukpy src/_support.h). Nothing in dukpy promises this
# layout, so it is verified once per process on a scratch context before any
# use; on any failure the API is reported unavailable (`memory_api_status()`
# gives the reason), `memory_usage()` returns None, `run_gc()` returns False,
# and `set_memory_limit()` raises EngineError: a limit is never dropped
# silently.
#
# The library is loaded with ctypes.PyDLL so the GIL stays held during calls
# (QuickJS is single-threaded and dukpy's own callbacks expect the GIL).
#
# Without it no context is made (the bridge needs the same layer: see
# "Installing the bridge"). Switching it off, to test that refusal:
#   - environment: ISOLATE_DISABLE_QUICKJS_CTYPES=1 (read when the API is first
#     used in the process, i.e. at the first probe);
#   - in-process: _disable_memory_api_for_tests(reason); undo with
#     _reset_memory_api_for_tests(), which makes the next use probe again.
# ======================================================================

import ctypes
import os
import threading

__all__ += ["memory_api_status"]

_CAPSULE_NAME = b"DUKPY_CONTEXT_CAPSULE"
_DISABLE_ENV = "ISOLATE_DISABLE_QUICKJS_CTYPES"

# QuickJS-ng's JSMemoryUsage (quickjs.h, unchanged through v0.11.0): 26 int64_t.
_MEMORY_USAGE_FIELDS = (
    "malloc_size", "malloc_limit", "memory_used_size",
    "malloc_count", "memory_used_count",
    "atom_count", "atom_size",
    "str_count", "str_size",
    "obj_count", "obj_size",
    "prop_count", "prop_size",
    "shape_count", "shape_size",
    "js_func_count", "js_func_size", "js_func_code_size",
    "js_func_pc2line_count", "js_func_pc2line_size",
    "c_func_count", "array_count",
    "fast_array_count", "fast_array_elements",
    "binary_object_count", "binary_object_size",
)


class _JSMemoryUsage(ctypes.Structure):
    _fields_ = [(name, ctypes.c_int64) for name in _MEMORY_USAGE_FIELDS]


# The probe passes a larger buffer filled with this pattern and checks that
# JS_ComputeMemoryUsage wrote every declared field and nothing past them.
_GUARD_SLOTS = 32
_SENTINEL = 0x5A5A_5A5A_5A5A_5A5A
_MAX_LIMIT = ctypes.c_size_t(-1).value


class _DukPyContextHead(ctypes.Structure):
    """The first two fields of dukpy's DukPyContext."""
    _fields_ = [("runtime", ctypes.c_void_p), ("context", ctypes.c_void_p)]


class _ProbeHost:
    """The minimal host object dukpy's eval_string needs (no exported functions)."""

    def __init__(self, capsule):
        self._ctx = capsule

    def _check_exported_function_exists(self, name: bytes) -> bool:
        return False

    def _call_python(self, name: bytes, json_args: bytes) -> bytes:  # pragma: no cover
        raise RuntimeError("no host functions in the probe")


class _QuickJSMemory:
    """The QuickJS memory functions, usable only when ``available`` is true."""

    def __init__(self, available: bool, reason: str):
        self.available = available
        self.reason = reason
        self.version = ""

    @classmethod
    def unavailable(cls, reason: str) -> "_QuickJSMemory":
        return cls(False, reason)

    @classmethod
    def load(cls) -> "_QuickJSMemory":
        """Bind the functions and verify the layout; never raises."""
        if os.environ.get(_DISABLE_ENV, "").strip() not in ("", "0"):
            return cls.unavailable(f"disabled by the environment ({_DISABLE_ENV}={os.environ[_DISABLE_ENV]})")
        api = cls(False, "")
        try:
            api._bind()
            api._verify()
        except Exception as exc:  # anything at all: degrade, never crash the worker
            return cls.unavailable(f"QuickJS memory API unavailable: {type(exc).__name__}: {exc}")
        api.available = True
        api.reason = f"QuickJS-ng {api.version or '?'} memory API via ctypes, layout verified"
        return api

    # -- set-up --------------------------------------------------------------
    def _bind(self) -> None:
        path = getattr(_dukpy, "__file__", None)
        if not path:
            raise RuntimeError("dukpy._dukpy has no shared-object file")
        lib = ctypes.PyDLL(path)
        vp = ctypes.c_void_p
        self._get_runtime = lib.JS_GetRuntime
        self._get_runtime.argtypes, self._get_runtime.restype = [vp], vp
        self._set_memory_limit = lib.JS_SetMemoryLimit
        self._set_memory_limit.argtypes, self._set_memory_limit.restype = [vp, ctypes.c_size_t], None
        self._compute = lib.JS_ComputeMemoryUsage
        self._compute.argtypes, self._compute.restype = [vp, vp], None
        self._gc = lib.JS_RunGC
        self._gc.argtypes, self._gc.restype = [vp], None
        version = getattr(lib, "JS_GetVersion", None)  # optional, for the status text
        if version is not None:
            version.argtypes, version.restype = [], ctypes.c_char_p
            self.version = (version() or b"").decode("ascii", "replace")
        # Own prototypes on pythonapi's symbols rather than setting argtypes
        # on the shared ctypes.pythonapi attributes other code may also use.
        # PYFUNCTYPE: called with the GIL held, and a set Python error (wrong
        # capsule name) is raised as an exception.
        self._capsule_pointer = ctypes.PYFUNCTYPE(vp, ctypes.py_object, ctypes.c_char_p)(
            ("PyCapsule_GetPointer", ctypes.pythonapi))
        self._capsule_name = ctypes.PYFUNCTYPE(ctypes.c_char_p, ctypes.py_object)(
            ("PyCapsule_GetName", ctypes.pythonapi))

    def _verify(self) -> None:
        capsule = _dukpy.create_context()
        name = self._capsule_name(capsule)
        if name != _CAPSULE_NAME:
            raise RuntimeError(f"context capsule is named {name!r}, expected {_CAPSULE_NAME!r}")
        head = self._head(capsule)
        if not head.runtime or not head.context:
            raise RuntimeError("the capsule's first two fields are not both set")
        got = self._get_runtime(head.context)
        if got != head.runtime:
            raise RuntimeError(
                f"layout mismatch: JS_GetRuntime(field 2) = {got:#x}, field 1 = {head.runtime:#x}")

        # JS_ComputeMemoryUsage writes exactly the declared struct.
        n = len(_MEMORY_USAGE_FIELDS)
        buf = (ctypes.c_uint64 * (n + _GUARD_SLOTS))(*([_SENTINEL] * (n + _GUARD_SLOTS)))
        self._compute(head.runtime, ctypes.addressof(buf))
        if any(buf[i] != _SENTINEL for i in range(n, n + _GUARD_SLOTS)):
            raise RuntimeError("JS_ComputeMemoryUsage wrote past the expected JSMemoryUsage (larger struct?)")
        if any(buf[i] == _SENTINEL for i in range(n)):
            raise RuntimeError("JS_ComputeMemoryUsage left JSMemoryUsage fields unset (smaller struct?)")
        usage = self._usage(head.runtime)
        used = usage["memory_used_size"]
        if not 10_000 <= used <= 10_000_000:
            raise RuntimeError(f"implausible memory_used_size {used} for an empty context")
        if not (usage["malloc_size"] > 0 and usage["malloc_count"] > 0
                and usage["obj_count"] > 0 and usage["atom_count"] > 0):
            raise RuntimeError(f"implausible memory usage of an empty context: {usage}")

        # JS_SetMemoryLimit reaches the runtime that JS_ComputeMemoryUsage reports on.
        original = usage["malloc_limit"]
        probe_limit = 96 * 1024 * 1024 + 4096 * 7
        self._set_memory_limit(head.runtime, probe_limit)
        if self._usage(head.runtime)["malloc_limit"] != probe_limit:
            raise RuntimeError("JS_SetMemoryLimit did not change the reported malloc_limit")
        self._set_memory_limit(head.runtime, original if original > 0 else 0)

        # The context still works after the calls and a collection.
        self._gc(head.runtime)
        result = _dukpy.eval_string(_ProbeHost(capsule), b"[1 + 1, typeof globalThis]", b"null",
                                    False, "<isolate-memory-probe>")
        if json.loads(result) != [2, "object"]:
            raise RuntimeError(f"the scratch context misbehaved after the probe: {result!r}")

    # -- per call ---------------------------------------------------------------
    def _head(self, capsule) -> _DukPyContextHead:
        address = self._capsule_pointer(capsule, _CAPSULE_NAME)
        if not address:
            raise RuntimeError("PyCapsule_GetPointer returned NULL")
        return _DukPyContextHead.from_address(address)

    def runtime(self, capsule) -> int:
        return self._head(capsule).runtime

    def _usage(self, runtime: int) -> dict[str, int]:
        usage = _JSMemoryUsage()
        self._compute(runtime, ctypes.byref(usage))
        return {name: int(getattr(usage, name)) for name in _MEMORY_USAGE_FIELDS}

    def usage(self, capsule) -> dict[str, int]:
        return self._usage(self.runtime(capsule))

    def set_limit(self, capsule, nbytes: int) -> None:
        self._set_memory_limit(self.runtime(capsule), nbytes)

    def gc(self, capsule) -> None:
        self._gc(self.runtime(capsule))


_memory_api: _QuickJSMemory | None = None
_memory_api_lock = threading.Lock()


def _get_memory_api() -> _QuickJSMemory:
    global _memory_api
    api = _memory_api
    if api is None:
        with _memory_api_lock:
            if _memory_api is None:
                _memory_api = _QuickJSMemory.load()
            api = _memory_api
    return api


def memory_api_status() -> tuple[bool, str]:
    """``(available, reason)`` of the QuickJS memory API in this process (probes on first use)."""
    api = _get_memory_api()
    return api.available, api.reason


def _disable_memory_api_for_tests(reason: str = "disabled for tests") -> None:
    """Force the fallback in this process, as if the probe had failed with ``reason``."""
    global _memory_api
    with _memory_api_lock:
        _memory_api = _QuickJSMemory.unavailable(reason)


def _reset_memory_api_for_tests() -> None:
    """Forget the probe's outcome; the next use probes again (and re-reads the env var)."""
    global _memory_api
    with _memory_api_lock:
        _memory_api = None


def _memory_usage(engine: EngineContext) -> dict[str, int] | None:
    api = _get_memory_api()
    if not api.available:
        return None
    return api.usage(engine._ctx)


def _set_memory_limit(engine: EngineContext, nbytes: int) -> bool:
    if isinstance(nbytes, bool) or not isinstance(nbytes, int):
        raise TypeError(f"memory limit must be an int number of bytes, not {type(nbytes).__name__}")
    if not 0 <= nbytes <= _MAX_LIMIT:
        raise ValueError(f"memory limit out of range: {nbytes}")
    api = _get_memory_api()
    if not api.available:
        raise EngineError(f"cannot set the memory limit: {api.reason}")
    api.set_limit(engine._ctx, nbytes)
    return True


def _run_gc(engine: EngineContext) -> bool:
    api = _get_memory_api()
    if not api.available:
        return False
    api.gc(engine._ctx)
    return True


# ======================================================================
# Installing the bridge from bytecode
# ----------------------------------------------------------------------
# Parsing bridge.js costs ~1.7 ms per context, ten times the context itself.
# QuickJS can serialize compiled code (JS_WriteObject) and load it into any
# runtime of the same build (JS_ReadObject + JS_EvalFunction), so the bridge
# is compiled once per process and each new context loads the bytecode.
# Bytecode is only ever loaded from what this process compiled from the
# bridge source itself. The same guarded ctypes layer as above; on any
# failure (symbols, layout, or the loaded bridge not answering) no context is
# made at all (see refusal()): there is no slower path to fall back to.
# ======================================================================

class _BridgeBytecode:
    def __init__(self):
        self.available = False
        self.reason = "not probed"
        self.bytecode: bytes = b""
        self.parts: dict[str, bytes] = {}  # the bridge's parts, by name (workers/bridgesource.py)

    def load(self) -> "_BridgeBytecode":
        api = quickjs()
        if api is None:
            self.reason = quickjs_status()[1]
            return self
        try:
            if not _get_memory_api().available:  # the capsule layout is verified there
                raise RuntimeError(_get_memory_api().reason)
            # Compiled once per process tree: a forked worker keeps what its zygote compiled
            # (the same library, so the same build), and probes it below as its own.
            self.bytecode = _compiled_bridge or self._compile(api, _BRIDGE_SOURCE)
            self.parts = _compiled_parts or {name: self._compile(api, part_source(name).encode("utf-8"))
                                             for name in BRIDGE_PARTS}
            probe = EngineContext.__new__(EngineContext)
            probe._init_raw(lambda *a: {"ok": True, "v": None}, None)
            probe._installed = self.install(probe)
            probe._native_ready()
            # An op of the bridge's own (the others are a part, which asks for this object).
            if probe.op("release", []).get("ok") is not True:
                raise RuntimeError("the bridge loaded from bytecode does not answer")
            self._probe_parts(api, probe)
        except Exception as exc:  # never crash here: contexts are refused with the reason
            self.available = False
            self.reason = f"the bridge could not be loaded from bytecode: {type(exc).__name__}: {exc}"
            return self
        _keep_compiled(self.bytecode, self.parts)
        self.available = True
        self.reason = f"bridge loaded from {len(self.bytecode)} bytes of bytecode"
        return self

    def _probe_parts(self, api, probe: "EngineContext") -> None:
        """Read each part into the probe's context as a context would (see
        EngineContext._load_part): each must make a function."""
        _, _, ctx = probe._native
        for name, bytecode in self.parts.items():
            fn = self._check(api, ctx, api.deserialize(ctx, bytecode), f"loading the bridge's {name} part")
            made = self._check(api, ctx, api.eval_function(ctx, fn), f"making the bridge's {name} part")  # consumes fn
            try:
                if made.tag != Tag.OBJECT:
                    raise RuntimeError(f"the bridge's {name} part made no function")
            finally:
                api.free_value(ctx, made)

    @staticmethod
    def _check(api, ctx, value, what: str):
        if value.tag == Tag.EXCEPTION:
            api.clear_exception(ctx)
            raise RuntimeError(f"{what} failed in the engine")
        return value

    def _compile(self, api, source: bytes) -> bytes:
        capsule = _dukpy.create_context()
        rt, ctx = api.pointers(capsule)
        api.update_stack_top(rt)
        fn = self._check(api, ctx, api.eval(ctx, source, len(source), b"<isolate-bridge>",
                                            EvalFlag.TYPE_GLOBAL | EvalFlag.COMPILE_ONLY), "compiling the bridge")
        try:
            # Drop the source text and the debug tables (nothing reads them back; the
            # bridge's frames then name no file, "(<null>:0:1)", and the bridge leaves
            # them out of stacks as its own): ~10% less to load per context.
            return api.serialize(ctx, fn, WRITE_OBJ_BYTECODE | WRITE_OBJ_STRIP_SOURCE | WRITE_OBJ_STRIP_DEBUG)
        finally:
            api.free_value(ctx, fn)

    def install(self, engine: "EngineContext") -> JSValue:
        """Load and run the bridge in the engine's context: its stash (a JSValue the caller owns)."""
        api = quickjs()
        rt, ctx = api.pointers(engine._ctx)
        api.update_stack_top(rt)
        fn = self._check(api, ctx, api.deserialize(ctx, self.bytecode), "loading the bridge bytecode")
        return self._check(api, ctx, api.eval_function(ctx, fn), "running the bridge")  # consumes fn


_bridge_bytecode: _BridgeBytecode | None = None
_bridge_lock = threading.Lock()
# The bytecode a probe of this process (or of the zygote it was forked from) accepted.
_compiled_bridge: bytes | None = None
_compiled_parts: dict[str, bytes] | None = None


def _keep_compiled(bytecode: bytes, parts: dict[str, bytes]) -> None:
    global _compiled_bridge, _compiled_parts
    _compiled_bridge, _compiled_parts = bytecode, parts


def _get_bridge_bytecode() -> _BridgeBytecode:
    global _bridge_bytecode
    with _bridge_lock:
        if _bridge_bytecode is None:
            _bridge_bytecode = _BridgeBytecode()  # set first: the probe's own context uses the source
            _bridge_bytecode = _bridge_bytecode.load()
        return _bridge_bytecode


def bridge_install_status() -> tuple[bool, str]:
    """``(usable, reason)``: whether contexts can be made in this process, and how or why not."""
    bc = _get_bridge_bytecode()
    return bc.available, bc.reason


def refusal(reason: str) -> str:
    """The message of a refused context: what is missing and what to do about it."""
    return (f"isolate cannot run scripts here: {reason}. It needs the QuickJS-ng C API that "
            f"dukpy >= 0.6 exports, with the layout it verifies at start; install a supported "
            f"dukpy (pip install 'dukpy>=0.6'){_ENV_HINT}")


_ENV_HINT = f", and unset {_DISABLE_ENV}, which switches that API off for tests"


__all__ += ["bridge_install_status", "refusal"]


def reset_for_new_process() -> None:
    """Forget what was probed in the parent: a forked worker probes again under its own
    environment (which may disable the ctypes layer). The compiled bridge is kept: the
    probe loads it into a context of the child's own before any context is made."""
    global _memory_api, _bridge_bytecode
    with _memory_api_lock:
        _memory_api = None
    with _bridge_lock:
        _bridge_bytecode = None
    _reset_quickjs()


__all__ += ["reset_for_new_process"]
