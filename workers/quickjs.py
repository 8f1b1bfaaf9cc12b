"""The QuickJS-ng C API that dukpy's extension exports, bound with ctypes.

dukpy's Python surface evaluates a script as ``<dukpy>`` and nothing more;
its shared object, however, exports QuickJS-ng's C API. This module binds
the part of it isolate needs to evaluate code faithfully: ``JS_Eval2`` with
a real file name and first line, compile-only mode, bytecode serialization
(``JS_WriteObject``/``JS_ReadObject``), ``JS_EvalFunction``, and the few
value helpers that go with them.

The library is loaded with ``ctypes.PyDLL``: calls keep the GIL, and a Python
exception set during a call (a signal handler raising inside QuickJS's
interrupt hook, which calls ``PyErr_CheckSignals``) is raised when the call
returns. Callers must then clear the engine's pending exception
(``clear_exception``), which is why every call that can run JS goes through
:meth:`QuickJS.call_js`.

Nothing here is promised by dukpy: ``load()`` binds and checks, and returns
None with a reason when anything is missing (the caller degrades).
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading

__all__ = ["JSValue", "QuickJS", "quickjs", "DISABLE_ENV", "CAPSULE_NAME", "Tag", "EvalFlag", "dukpy_extension"]


def dukpy_extension():
    """dukpy's C extension module (``dukpy._dukpy``): the one already loaded (the
    zygote loads it without dukpy's package: workers/zygote.py, _preload_dukpy), else
    imported the usual way."""
    module = sys.modules.get(_EXTENSION)
    if module is not None:
        return module
    from dukpy import _dukpy
    return _dukpy


_EXTENSION = "dukpy._dukpy"
_dukpy = dukpy_extension()

DISABLE_ENV = "ISOLATE_DISABLE_QUICKJS_CTYPES"
CAPSULE_NAME = b"DUKPY_CONTEXT_CAPSULE"


class JSValue(ctypes.Structure):
    """QuickJS-ng's JSValue on 64-bit targets (no NaN boxing): a union and a tag."""
    _fields_ = [("u", ctypes.c_int64), ("tag", ctypes.c_int64)]


class JSPropertyEnum(ctypes.Structure):
    """One entry of JS_GetOwnPropertyNames' table (quickjs.h)."""
    _fields_ = [("is_enumerable", ctypes.c_bool), ("atom", ctypes.c_uint32)]


class JSPropertyDescriptor(ctypes.Structure):
    """What JS_GetOwnProperty fills in (quickjs.h); the caller frees the three values."""
    _fields_ = [("flags", ctypes.c_int), ("value", JSValue), ("getter", JSValue), ("setter", JSValue)]


class Tag:
    """JSValue tags of QuickJS-ng (quickjs.h)."""
    BIG_INT = -9
    SYMBOL = -8
    STRING = -7
    MODULE = -3
    FUNCTION_BYTECODE = -2
    OBJECT = -1
    INT = 0
    BOOL = 1
    NULL = 2
    UNDEFINED = 3
    EXCEPTION = 6


class EvalFlag:
    TYPE_GLOBAL = 0
    TYPE_MODULE = 1
    STRICT = 1 << 3
    COMPILE_ONLY = 1 << 5


WRITE_OBJ_BYTECODE = 1 << 0
PROP_C_W_E = 1 | 2 | 4  # JS_PROP_CONFIGURABLE | JS_PROP_WRITABLE | JS_PROP_ENUMERABLE
PROP_GETSET = 1 << 4    # an accessor property (JSPropertyDescriptor.flags)
GPN_STRING_MASK, GPN_ENUM_ONLY = 1 << 0, 1 << 4  # JS_GetOwnPropertyNames: string keys, enumerable ones
WRITE_OBJ_STRIP_SOURCE = 1 << 4
WRITE_OBJ_STRIP_DEBUG = 1 << 5   # no file names, line tables or source: frames show "(<null>:0:1)"
WRITE_OBJ_REFERENCE = 1 << 3    # an object met again is written as a reference to the first
READ_OBJ_BYTECODE = 1 << 0

UNDEFINED = JSValue(0, Tag.UNDEFINED)
TRUE = JSValue(1, Tag.BOOL)
FALSE = JSValue(0, Tag.BOOL)


class _EvalOptions(ctypes.Structure):
    """JSEvalOptions, version 1 (quickjs.h: JS_EVAL_OPTIONS_VERSION)."""
    _fields_ = [("version", ctypes.c_int), ("eval_flags", ctypes.c_int),
                ("filename", ctypes.c_char_p), ("line_num", ctypes.c_int)]


class _ContextHead(ctypes.Structure):
    """The first two fields of dukpy's DukPyContext (src/_support.h)."""
    _fields_ = [("runtime", ctypes.c_void_p), ("context", ctypes.c_void_p)]


class EngineException(Exception):
    """A JS call failed with no Python exception: the JS exception was taken into ``value``."""


class QuickJS:
    """Bound functions. Use :func:`quickjs` to get the process's instance (or None)."""

    def __init__(self):
        lib = ctypes.PyDLL(_dukpy.__file__)
        self.lib = lib
        vp, sz, cp, ci = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_int

        def bind(name, argtypes, restype):
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = argtypes, restype
            return fn

        self.get_runtime = bind("JS_GetRuntime", [vp], vp)
        self.update_stack_top = bind("JS_UpdateStackTop", [vp], None)
        self.eval = bind("JS_Eval", [vp, cp, sz, cp, ci], JSValue)
        self.eval2 = bind("JS_Eval2", [vp, cp, sz, ctypes.POINTER(_EvalOptions)], JSValue)
        self.eval_function = bind("JS_EvalFunction", [vp, JSValue], JSValue)
        self.write_object = bind("JS_WriteObject", [vp, ctypes.POINTER(sz), JSValue, ci],
                                 ctypes.POINTER(ctypes.c_uint8))
        self.read_object = bind("JS_ReadObject", [vp, cp, sz, ci], JSValue)
        self.free_value = bind("JS_FreeValue", [vp, JSValue], None)
        self.dup_value = bind("JS_DupValue", [vp, JSValue], JSValue)
        self.get_exception = bind("JS_GetException", [vp], JSValue)
        self.has_exception = bind("JS_HasException", [vp], ctypes.c_bool)
        self.js_free = bind("js_free", [vp, vp], None)
        self.get_property_str = bind("JS_GetPropertyStr", [vp, JSValue, cp], JSValue)
        self.set_property_str = bind("JS_SetPropertyStr", [vp, JSValue, cp, JSValue], ci)
        self.new_object = bind("JS_NewObject", [vp], JSValue)
        self.new_string_len = bind("JS_NewStringLen", [vp, cp, sz], JSValue)
        self.to_cstring_len = bind("JS_ToCStringLen2", [vp, ctypes.POINTER(sz), JSValue, ci], ctypes.c_void_p)
        self.free_cstring = bind("JS_FreeCString", [vp, ctypes.c_void_p], None)
        self.call = bind("JS_Call", [vp, JSValue, JSValue, ci, ctypes.POINTER(JSValue)], JSValue)
        self.json_stringify = bind("JS_JSONStringify", [vp, JSValue, JSValue, JSValue], JSValue)
        self.is_job_pending = bind("JS_IsJobPending", [vp], ctypes.c_bool)
        self.execute_pending_job = bind("JS_ExecutePendingJob", [vp, ctypes.POINTER(vp)], ci)
        self.new_cfunction2 = bind("JS_NewCFunction2", [vp, vp, cp, ci, ci, ci], JSValue)
        # An ArrayBuffer over memory the caller owns (no free function: QuickJS never frees it).
        self.new_array_buffer = bind("JS_NewArrayBuffer", [vp, vp, sz, vp, vp, ctypes.c_bool], JSValue)
        self.set_context_opaque = bind("JS_SetContextOpaque", [vp, vp], None)
        # A bare realm (Object, Function, Array and Error prototypes, empty): see
        # EngineContext._native_ready, "the bridge's own realm".
        self.new_context_raw = bind("JS_NewContextRaw", [vp], vp)
        self.free_context = bind("JS_FreeContext", [vp], None)
        self.get_global_object = bind("JS_GetGlobalObject", [vp], JSValue)
        # JSON.parse's own parser (own data properties only; "__proto__" stays a key).
        self.parse_json = bind("JS_ParseJSON", [vp, cp, sz, cp], JSValue)
        # An own data property, as Object.defineProperty makes it (no setter runs); frees
        # the value whatever happens. 1 defined, 0 refused (a non-configurable property,
        # without PROP_THROW), -1 an exception is pending.
        self.define_property_value_str = bind("JS_DefinePropertyValueStr", [vp, JSValue, cp, JSValue, ci], ci)
        # Own keys and descriptors, read with no getter or Proxy trap run (the global is neither).
        self.get_own_property_names = bind(
            "JS_GetOwnPropertyNames",
            [vp, ctypes.POINTER(ctypes.POINTER(JSPropertyEnum)), ctypes.POINTER(ctypes.c_uint32), JSValue, ci], ci)
        self.free_property_enum = bind("JS_FreePropertyEnum", [vp, ctypes.POINTER(JSPropertyEnum), ctypes.c_uint32],
                                       None)
        self.get_own_property = bind("JS_GetOwnProperty",
                                     [vp, ctypes.POINTER(JSPropertyDescriptor), JSValue, ctypes.c_uint32], ci)
        self.atom_to_cstring_len = bind("JS_AtomToCStringLen", [vp, ctypes.POINTER(sz), ctypes.c_uint32],
                                        ctypes.c_void_p)
        self.set_memory_limit = bind("JS_SetMemoryLimit", [vp, sz], None)
        self.run_gc = bind("JS_RunGC", [vp], None)
        self.throw = bind("JS_Throw", [vp, JSValue], JSValue)
        self.is_error = bind("JS_IsError", [vp, JSValue], ctypes.c_bool)
        # dukpy's native `call_python` (a JSCFunction): it calls `_call_python` on
        # the object set as the context's opaque, which dukpy's eval sets to its host.
        self.call_py_function = ctypes.cast(lib.call_py_function, vp).value
        version = bind("JS_GetVersion", [], cp)
        self.version = (version() or b"").decode("ascii", "replace")
        # Own prototypes on pythonapi's symbols (not the shared attributes).
        self._capsule_pointer = ctypes.PYFUNCTYPE(vp, ctypes.py_object, cp)(
            ("PyCapsule_GetPointer", ctypes.pythonapi))

    # -- pointers ---------------------------------------------------------------
    def pointers(self, capsule) -> tuple[int, int]:
        """``(JSRuntime*, JSContext*)`` of a dukpy context capsule."""
        head = _ContextHead.from_address(self._capsule_pointer(capsule, CAPSULE_NAME))
        return head.runtime, head.context

    # -- helpers ------------------------------------------------------------------
    def take_exception(self, ctx) -> JSValue:
        """The pending JS exception (owned by the caller); clears it from the context."""
        return self.get_exception(ctx)

    def clear_exception(self, ctx) -> None:
        self.free_value(ctx, self.get_exception(ctx))

    def to_text(self, ctx, value: JSValue) -> str | None:
        """``String(value)`` as Python text, or None if the conversion threw."""
        size = ctypes.c_size_t(0)
        ptr = self.to_cstring_len(ctx, ctypes.byref(size), value, 0)
        if not ptr:
            self.clear_exception(ctx)
            return None
        try:
            return ctypes.string_at(ptr, size.value).decode("utf-8", "surrogatepass")
        finally:
            self.free_cstring(ctx, ptr)

    def error_message(self, ctx, value: JSValue) -> str | None:
        """The ``message`` of an Error object (None for anything else). For errors the
        engine made it is an own data property: nothing runs to read it."""
        if value.tag != Tag.OBJECT or not self.is_error(ctx, value):
            return None
        message = self.get_property_str(ctx, value, b"message")
        if message.tag == Tag.EXCEPTION:
            self.clear_exception(ctx)
            return None
        try:
            return self.to_text(ctx, message) if message.tag == Tag.STRING else None
        finally:
            self.free_value(ctx, message)

    def compile(self, ctx, source: bytes, filename: str, line: int, flags: int) -> JSValue:
        """``JS_Eval2`` in compile-only mode: a function-bytecode (or module) value, or EXCEPTION."""
        options = _EvalOptions(1, flags | EvalFlag.COMPILE_ONLY, filename.encode("utf-8", "surrogatepass"), line)
        return self.eval2(ctx, source, len(source), ctypes.byref(options))

    def serialize(self, ctx, value: JSValue, flags: int = WRITE_OBJ_BYTECODE) -> bytes:
        size = ctypes.c_size_t(0)
        buf = self.write_object(ctx, ctypes.byref(size), value, flags)
        if not buf:
            self.clear_exception(ctx)
            raise MemoryError("JS_WriteObject failed")
        try:
            return ctypes.string_at(buf, size.value)
        finally:
            self.js_free(ctx, ctypes.cast(buf, ctypes.c_void_p))

    def unshared(self, ctx, value: JSValue) -> int:
        """The size of JS_WriteObject's text of ``value`` if no object is reachable twice
        from it (no shared reference, no cycle), else 0.

        Reachable along what JS_WriteObject follows: the enumerable properties of objects,
        array elements (read with their getters), Map and Set entries, a typed array's
        buffer. Answered in C: written without references, a cycle fails; written with
        them, the two texts differ exactly where an object was met again. Zero too for
        whatever JS_WriteObject refuses (a Proxy, a function, an enumerable accessor
        property, an Error) or has no memory for. Each object takes at least two bytes
        of the text. An exception raised by a signal handler inside (a getter it ran
        looped) propagates."""
        size, again = ctypes.c_size_t(0), ctypes.c_size_t(0)
        first = self.write_object(ctx, ctypes.byref(size), value, 0)
        if not first:
            self.clear_exception(ctx)
            return 0
        try:
            second = self.write_object(ctx, ctypes.byref(again), value, WRITE_OBJ_REFERENCE)
            if not second:
                self.clear_exception(ctx)
                return 0
            try:
                alike = again.value == size.value and ctypes.string_at(first, size.value) == ctypes.string_at(
                    second, again.value)
                return size.value if alike else 0
            finally:
                self.js_free(ctx, ctypes.cast(second, ctypes.c_void_p))
        finally:
            self.js_free(ctx, ctypes.cast(first, ctypes.c_void_p))

    def deserialize(self, ctx, data: bytes) -> JSValue:
        return self.read_object(ctx, data, len(data), READ_OBJ_BYTECODE)


_instance: QuickJS | None = None
_reason = "not loaded"
_lock = threading.Lock()
_loaded = False


def quickjs() -> QuickJS | None:
    """The bound API, or None when it cannot be used here (see :func:`status`)."""
    global _instance, _reason, _loaded
    with _lock:
        if not _loaded:
            _loaded = True
            if os.environ.get(DISABLE_ENV, "").strip() not in ("", "0"):
                _instance, _reason = None, f"disabled by the environment ({DISABLE_ENV}={os.environ[DISABLE_ENV]})"
            else:
                try:
                    _instance = QuickJS()
                    _reason = f"QuickJS-ng {_instance.version} C API via ctypes"
                except Exception as exc:  # a missing symbol, an unloadable library: degrade
                    _instance, _reason = None, f"QuickJS C API unavailable: {type(exc).__name__}: {exc}"
        return _instance


def status() -> tuple[bool, str]:
    api = quickjs()
    return api is not None, _reason


def reset_for_new_process() -> None:
    """A forked worker binds again under its own environment."""
    global _instance, _loaded
    with _lock:
        _instance, _loaded = None, False


# ======================================================================
# ES modules: the module half of the C API (used by workers/modules.py)
# ----------------------------------------------------------------------
# QuickJS-ng 0.11 has no API to read a module's status, so ModuleAPI reads
# four bytes of its JSModuleDef (quickjs.c, struct JSModuleDef): the status
# and the "evaluation threw" flag. workers/modules.py verifies these offsets
# on a probe module in every state before trusting them (layout_problem), and
# refuses modules (UNSUPPORTED) when they do not hold.
# ======================================================================

# The module loader hooks of JS_SetModuleLoaderFunc (the v1 pair: no import attributes).
# normalize(ctx, base_name, specifier, opaque) -> js_malloc'd name, or NULL with an exception.
NormalizeFunc = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_char_p,
                                 ctypes.c_void_p)
# loader(ctx, name, opaque) -> JSModuleDef*, or NULL with an exception.
LoaderFunc = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_void_p)


class ModuleStatus:
    """JSModuleStatus of QuickJS-ng (the spec's [[Status]] of cyclic module records)."""
    UNLINKED = 0
    LINKING = 1
    LINKED = 2
    EVALUATING = 3
    EVALUATING_ASYNC = 4
    EVALUATED = 5


class PromiseState:
    PENDING = 0
    FULFILLED = 1
    REJECTED = 2


class ModuleAPI:
    """The module functions, bound on the QuickJS library :func:`quickjs` loaded."""

    # Byte offsets in JSModuleDef (64-bit, quickjs-ng v0.11.0): after the refcount
    # header, the name atom, the list link and four (pointer, count, size) arrays come
    # module_ns, func_obj and init_func, then these flags.
    HAS_TLA = 128
    RESOLVED = 129
    STATUS = 131
    EVAL_HAS_EXCEPTION = 240

    def __init__(self, api: QuickJS):
        lib = api.lib
        vp, cp = ctypes.c_void_p, ctypes.c_char_p

        def bind(name, argtypes, restype):
            fn = getattr(lib, name)
            fn.argtypes, fn.restype = argtypes, restype
            return fn

        self.set_loader = bind("JS_SetModuleLoaderFunc", [vp, NormalizeFunc, LoaderFunc, vp], None)
        self.namespace = bind("JS_GetModuleNamespace", [vp, vp], JSValue)
        self.import_meta = bind("JS_GetImportMeta", [vp, vp], JSValue)
        self.promise_state = bind("JS_PromiseState", [vp, JSValue], ctypes.c_int)
        self.promise_result = bind("JS_PromiseResult", [vp, JSValue], JSValue)
        self.strdup = bind("js_strdup", [vp, cp], vp)
        self.throw = bind("JS_Throw", [vp, JSValue], JSValue)
        self.resolve = bind("JS_ResolveModule", [vp, JSValue], ctypes.c_int)

    @classmethod
    def _byte(cls, mdef: int, offset: int) -> int:
        return ctypes.c_uint8.from_address(mdef + offset).value

    def status(self, mdef: int) -> int:
        return self._byte(mdef, self.STATUS)

    def threw(self, mdef: int) -> bool:
        return self._byte(mdef, self.EVAL_HAS_EXCEPTION) != 0

    def resolved(self, mdef: int) -> bool:
        return self._byte(mdef, self.RESOLVED) != 0

    def has_tla(self, mdef: int) -> bool:
        return self._byte(mdef, self.HAS_TLA) != 0
