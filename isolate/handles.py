"""Handles: proxies of JavaScript values that stay in their worker.

:class:`JSFunction`, :class:`JSObject` and :class:`JSPromise` hold a value's id in
its context (isolate/context.py); the value stays in the worker. A handle keeps
its context alive; when the last proxy of a value is garbage-collected the
worker is told to drop it. Also here: what a handle's calls share with the
context's own (property keys, the queue bound, breakOnSigint's relay).
"""

from __future__ import annotations

import contextlib
import signal
import threading
import weakref
from typing import TYPE_CHECKING, Any

from .protocol import HandleRef

from .errors import (
    InvalidArgTypeError, InvalidArgValueError, IsolateError, JSReferenceError, OutOfRangeError,
    PromisePendingError, thrown_error,
)
from .handleinfo import REPR_QUEUE_MS, context_helper, context_label, parameters
from .options import describe, fmt_number, plain, run_options

if TYPE_CHECKING:
    from .context import Context

__all__ = ["JSHandle", "JSObject", "JSFunction", "JSPromise", "property_key", "queue_bound", "relay_sigint"]


def property_key(key: Any) -> str:
    """A property name for JS: a str as it is, an int as JS writes it; nothing else."""
    if isinstance(key, str):
        return plain(key)
    if isinstance(key, int) and not isinstance(key, bool):
        key = plain(key)
        if abs(key) < 2**53:
            return str(key)
    raise InvalidArgTypeError(f"a property key must be a str or a safe integer. Received {describe(key)}")


def queue_bound(pool, queue_timeout: float | None, timeout: float | None) -> float | None:
    """How long a call may wait for its worker (ms; None: no bound).

    The call's own ``queue_timeout``, else the pool's, else the call's
    ``timeout``; ``math.inf`` at any level means no bound.
    """
    for value in (queue_timeout, pool.queue_timeout, timeout):
        if value is not None:
            return None if value == float("inf") else value
    return None


@contextlib.contextmanager
def relay_sigint(worker):
    """breakOnSigint: during the call, a SIGINT to the host interrupts the script.

    As in Node, the host's own SIGINT handler is set aside for the call and
    restored after. Python only installs signal handlers from the main
    thread, so elsewhere this fails loudly instead of silently not working.
    """
    if threading.current_thread() is not threading.main_thread():
        raise InvalidArgValueError(
            "The property 'options.breakOnSigint' can only be used from the main thread: "
            "Python delivers SIGINT to, and installs signal handlers in, the main thread only")

    def relay(signum, frame):
        worker.interrupt()

    previous = signal.signal(signal.SIGINT, relay)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class JSHandle:
    """A JavaScript value that stays in its worker; this proxy holds its handle id.

    Two handles are equal when they stand for the same JavaScript value
    (``ctx["f"] == ctx["f"]``), whichever call handed them over; ``hash`` agrees.
    Finding that out asks the worker once per handle (then it is cached).
    """

    _identity_token: Any = None

    def __init__(self, context: "Context", ref: HandleRef):
        self._context = context
        self._ref = ref
        weakref.finalize(self, context._worker.queue_release, "release", [context._id, [ref.handle_id]])

    @property
    def context(self) -> "Context":
        return self._context

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._ref.class_name} in {context_label(self._context)}>"

    def _identity(self) -> Any:
        """A token equal for handles of the same JS value (of this context), fixed for this proxy's life."""
        token = self._identity_token
        if token is None:
            try:
                token = ("value", context_helper(self._context)(0, self))
            except IsolateError:   # lost, busy past the bound...: equal only to itself
                token = ("proxy", id(self))
            self._identity_token = token
        return token

    def __eq__(self, other: object) -> bool:
        if self is other:
            return True
        if not isinstance(other, JSHandle):
            return NotImplemented
        if other._context is not self._context or other._ref.kind != self._ref.kind:
            return False
        if other._ref.handle_id == self._ref.handle_id:
            return True
        if self._identity() != other._identity():
            return False
        # Equal tokens: confirmed with `===`, which no script can redefine (the tokens come
        # from the context's WeakMap, which a script may have replaced before the helper
        # was made: then it decides only what is unequal, never what is equal).
        try:
            return context_helper(self._context)(2, self, other) is True
        except IsolateError:
            return False

    def __hash__(self) -> int:
        return hash((id(self._context), self._identity()))

    # Property access on the JS value.
    def get(self, key: str, default: Any = None) -> Any:
        try:
            return self[key]
        except KeyError:
            return default

    def __getitem__(self, key: str) -> Any:
        try:
            return self._context._access("get", self._ref.handle_id, property_key(key))
        except JSReferenceError:
            raise KeyError(key) from None

    def __setitem__(self, key: str, value: Any) -> None:
        self._context._access("set", self._ref.handle_id, property_key(key),
                              self._context._encode(value, for_js=True))

    def keys(self) -> list[str]:
        return self._context._access("keys", self._ref.handle_id)


class JSObject(JSHandle):
    """A non-plain JavaScript object (a class instance, a Proxy, ...), by reference."""


class JSFunction(JSHandle):
    """A JavaScript function, callable from Python. Arguments and result are converted."""

    _params: "str | None" = None

    @property
    def name(self) -> str:
        return self._ref.name

    def __repr__(self) -> str:
        """``<JSFunction add(a, b) in context 3>``: the parameters come from the function's
        source, asked of the worker once (``…`` if it is busy or gone, or has no source)."""
        params = self._params
        if params is None:
            params = "…"
            try:
                source = context_helper(self._context, queue_timeout_ms=REPR_QUEUE_MS)(1, self)
            except IsolateError:
                source = None
            else:
                found = parameters(source) if isinstance(source, str) else None
                if found is not None:
                    params = self._params = found if len(found) <= 60 else found[:59] + "…"
        return f"<JSFunction {self._ref.name or '(anonymous)'}({params}) in {context_label(self._context)}>"

    def __call__(self, *args: Any, timeout: int | None = None, break_on_sigint: bool = False,
                 queue_timeout: float | None = None) -> Any:
        return self._invoke(args, timeout, break_on_sigint, queue_timeout, construct=False)

    def new(self, *args: Any, timeout: int | None = None, break_on_sigint: bool = False,
            queue_timeout: float | None = None) -> Any:
        """``new fn(...args)``."""
        return self._invoke(args, timeout, break_on_sigint, queue_timeout, construct=True)

    def _invoke(self, args, timeout, break_on_sigint, queue_timeout, construct: bool) -> Any:
        run_opts = run_options({"timeout": timeout, "break_on_sigint": break_on_sigint,
                                "queue_timeout": queue_timeout})
        ctx = self._context
        options: dict = {"mirror": ctx._object is not None, "construct": construct,
                         "queue_timeout": queue_bound(ctx._pool, run_opts.queue_timeout, run_opts.timeout)}
        if run_opts.timeout is not None:
            options["timeout"] = run_opts.timeout
        encoded = ctx._encode(list(args), holder=True)
        if run_opts.break_on_sigint:
            options["break_on_sigint"] = True
            with relay_sigint(ctx._worker):
                return ctx._with_mirror("call", self._ref.handle_id, encoded, options)
        return ctx._with_mirror("call", self._ref.handle_id, encoded, options)


class JSPromise(JSHandle):
    """A JavaScript promise. ``result()`` gives its value; ``await`` works too.

    Promise jobs run inside the call that created them, so a promise is
    usually settled by the time Python sees it. One that is still pending
    can only be settled by later calls into its context.
    """

    def state(self) -> str:
        """``"pending"``, ``"fulfilled"`` or ``"rejected"``."""
        return self._context._access("promise_state", self._ref.handle_id)[0]

    def result(self, timeout: float | None = None) -> Any:
        """The value (or the rejection, raised). Nothing settles a promise but code
        running in its context, so a pending one raises PromisePendingError at once;
        ``timeout`` (seconds, as for ``Future.result``) bounds reading its state,
        which can run script code (default: the pool's access timeout)."""
        timeout_ms = None
        if timeout is not None:
            timeout = plain(timeout)
            if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
                raise InvalidArgTypeError(f'The "timeout" argument must be a number of seconds. '
                                          f"Received {describe(timeout)}")
            if not 0 < timeout <= 3600:  # False for NaN
                raise OutOfRangeError(f'The value of "timeout" is out of range. It must be > 0 && <= 3600 '
                                      f"(seconds). Received {fmt_number(timeout)}")
            timeout_ms = timeout * 1000.0
        state, value = self._context._access("promise_state", self._ref.handle_id, timeout_ms=timeout_ms)
        if state == "fulfilled":
            return value
        if state == "rejected":
            raise thrown_error(value)
        raise PromisePendingError("the promise is still pending: nothing in its context will settle "
                                  "it until more code runs there")

    def __await__(self):
        import asyncio  # only when awaited: asyncio is a heavy import

        return asyncio.get_running_loop().run_in_executor(None, self.result).__await__()
