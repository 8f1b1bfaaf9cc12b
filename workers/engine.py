"""Engine adapter: the only module that touches dukpy (QuickJS-ng).

One :class:`EngineContext` is one QuickJS runtime + context from
``dukpy._dukpy.create_context()`` with the JS bridge (``bridge.js``)
installed. dukpy's ``JSInterpreter`` is deliberately not used: it copies the
host environment into ``process.env`` and defines ``require``/``console``.

Everything crosses dukpy as JSON text. The bridge's operations are invoked
with a constant command; the operation and its arguments travel in dukpy's
``jsvars`` (which dukpy exposes to the command as the ``dukpy`` global, and
which the bridge removes before any user code runs).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import dukpy
from dukpy import _dukpy

__all__ = ["EngineContext", "EngineError", "ENGINE_NAME", "in_abort_tail"]

ENGINE_NAME = f"QuickJS-ng via dukpy {getattr(dukpy, '__version__', '0.6')}"
_BRIDGE_SOURCE = (Path(__file__).with_name("bridge.js")).read_bytes()
_ENTER = b"globalThis[Symbol.for('isolate.bridge')]()"
_UNUSABLE_MARK = "unusable after aborted pending jobs"

# The reply of a host function: {"ok": bool, "v"/"e": tagged value}.
HostCall = Callable[[int, Any, bool], dict]


# The bridge answers this reply by spinning until the engine's interrupt hook
# stops the script: no JS `catch` or `finally` runs in between.
_ABORTED_REPLY = json.dumps({"abort": True}).encode()


def in_abort_tail(frame) -> bool:
    """True while a host call that was aborted is still returning into the engine.

    A stop signal handled there would be caught by dukpy and become a
    catchable JS error; the handler must defer it until the engine runs.
    """
    code = EngineContext._call_python.__code__
    while frame is not None:
        if frame.f_code is code:
            engine = frame.f_locals.get("self")
            return bool(getattr(engine, "_aborting", False))
        frame = frame.f_back
    return False


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
        # dukpy reads `_ctx` and calls `_check_exported_function_exists` and
        # `_call_python` on the object passed to eval_string: this object.
        self._ctx = _dukpy.create_context()
        self._on_host_call = on_host_call
        self._on_abort = on_abort
        self._aborting = False
        self.usable = True
        _dukpy.eval_string(self, _BRIDGE_SOURCE, b"null", False, "<isolate-bridge>")

    # -- hooks dukpy calls -------------------------------------------------
    def _check_exported_function_exists(self, name: bytes) -> bool:
        return name == b"call"

    def _call_python(self, name: bytes, json_args: bytes) -> bytes:
        self._aborting = False
        try:
            function_id, tagged_args, tagged = json.loads(json_args)
            reply = self._on_host_call(function_id, tagged_args, tagged)
        except BaseException as exc:
            # dukpy would turn this into a JS InternalError that the script
            # could catch. A timeout or interrupt must stay uncatchable: the
            # worker re-raises its signal so the engine's interrupt hook stops
            # the script at its next check, and JS sees the host call fail.
            # Until control is back in the engine, the signal handlers see
            # `_aborting` (via in_abort_tail) and defer instead of raising here.
            if self._on_abort is None:
                raise
            self._aborting = True
            self._on_abort(exc)
            return _ABORTED_REPLY
        return json.dumps(reply, allow_nan=False).encode()

    # -- operations --------------------------------------------------------
    def op(self, *request: Any) -> dict:
        """Run one bridge operation; returns its reply ``{"ok", "v"|"e", "t", ...}``.

        Raises EngineError when dukpy itself fails (the bridge could not
        answer), and lets BaseExceptions raised by signal handlers (timeouts)
        propagate unchanged.
        """
        if not self.usable:
            raise EngineError("the context is unusable after an interrupted promise job", unusable=True)
        jsvars = json.dumps(request, allow_nan=False).encode()
        try:
            raw = _dukpy.eval_string(self, _ENTER, jsvars, False, "<isolate>")
        except _dukpy.JSRuntimeError as exc:
            text = str(exc)
            if _UNUSABLE_MARK in text:
                self.usable = False
            raise EngineError(text, unusable=not self.usable) from None
        if raw is None:
            raise EngineError("the bridge returned no reply")
        return json.loads(raw)

    def memory_usage(self) -> int | None:
        """Engine bytes in use, or None where the engine does not say (see issue on memory)."""
        return None
