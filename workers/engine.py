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

__all__ = ["EngineContext", "EngineError", "ENGINE_NAME"]

ENGINE_NAME = f"QuickJS-ng via dukpy {getattr(dukpy, '__version__', '0.6')}"
_BRIDGE_SOURCE = (Path(__file__).with_name("bridge.js")).read_bytes()
_ENTER = b"globalThis[Symbol.for('isolate.bridge')]()"
_UNUSABLE_MARK = "unusable after aborted pending jobs"

# The reply of a host function: {"ok": bool, "v"/"e": tagged value}.
HostCall = Callable[[int, Any, bool], dict]


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

    def __init__(self, on_host_call: HostCall):
        # dukpy reads `_ctx` and calls `_check_exported_function_exists` and
        # `_call_python` on the object passed to eval_string: this object.
        self._ctx = _dukpy.create_context()
        self._on_host_call = on_host_call
        self.usable = True
        _dukpy.eval_string(self, _BRIDGE_SOURCE, b"null", False, "<isolate-bridge>")

    # -- hooks dukpy calls -------------------------------------------------
    def _check_exported_function_exists(self, name: bytes) -> bool:
        return name == b"call"

    def _call_python(self, name: bytes, json_args: bytes) -> bytes:
        function_id, tagged_args, tagged = json.loads(json_args)
        reply = self._on_host_call(function_id, tagged_args, tagged)
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
