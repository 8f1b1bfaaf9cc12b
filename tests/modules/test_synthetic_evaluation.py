"""A SyntheticModule whose evaluation callback fails ends "errored", however evaluation is driven.

The callback is Python here (Node's is a JS function, whose returned promise Node ignores),
so this is not a differential case: isolate awaits an awaitable the callback returns, and a
callback that raises, or returns an awaitable that raises, fails the evaluation. What an
attacker or unlucky user would try: each failure mode through every way a user drives
evaluate() (``.result()``, ``await`` in asyncio, ``add_done_callback``), directly, through
a SourceTextModule that imports the synthetic one, and through ``import()`` from a script.
None may hang: every wait is bounded.
"""

from __future__ import annotations

import asyncio
import threading

import pytest

import isolate
from isolate import SourceTextModule, SyntheticModule

pytestmark = pytest.mark.timeout(60)

WAIT_S = 20


class Boom(Exception):
    pass


def _raises(module):
    module.set_export("x", 1)
    raise Boom("boom-sync")


async def _async_raises(module):
    await asyncio.sleep(0)  # really suspends before failing
    module.set_export("x", 1)
    raise Boom("boom-async")


async def _async_sets(module):
    await asyncio.sleep(0)
    module.set_export("x", "late")


CALLBACKS = {"raises": (_raises, "boom-sync"), "async_raises": (_async_raises, "boom-async")}


def _linked_synthetic(pool, callback):
    module = SyntheticModule(["x"], callback, pool=pool)
    module.link(lambda *a: None).result(WAIT_S)
    return module


def _importer_of(pool, synthetic):
    root = SourceTextModule("import { x } from 's'; globalThis.seen = x;", pool=pool)
    root.link(lambda specifier, *a: synthetic).result(WAIT_S)
    return root


def _via_result(future):
    return future.result(WAIT_S)


def _via_asyncio(future):
    async def main():
        return await asyncio.wait_for(future, WAIT_S)

    return asyncio.run(main())


def _via_callback(future):
    done = threading.Event()
    seen = []

    def callback(f):
        seen.append(f)
        done.set()

    future.add_done_callback(callback)
    assert done.wait(WAIT_S), "add_done_callback was never called"
    assert seen == [future]
    return future.result(0)


DRIVERS = {"result": _via_result, "asyncio": _via_asyncio, "done_callback": _via_callback}


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("kind", CALLBACKS)
def test_failing_callback_errors_the_module(pool, kind, driver):
    callback, message = CALLBACKS[kind]
    module = _linked_synthetic(pool, callback)
    # The Python exception crosses JS (the module's evaluation) and comes back as the
    # error the module ended with.
    with pytest.raises(isolate.JSError, match=message):
        DRIVERS[driver](module.evaluate())
    assert module.status == "errored"
    assert message in str(module.error)
    # Evaluating an errored module again gives the same error, at once.
    with pytest.raises(isolate.JSError, match=message):
        DRIVERS[driver](module.evaluate())
    assert module.status == "errored"


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("kind", CALLBACKS)
def test_failing_callback_errors_its_importer(pool, kind, driver):
    callback, message = CALLBACKS[kind]
    synthetic = _linked_synthetic(pool, callback)
    root = _importer_of(pool, synthetic)
    with pytest.raises(isolate.JSError, match=message):
        DRIVERS[driver](root.evaluate())
    assert root.status == "errored" and synthetic.status == "errored"
    assert pool.run_in_this_context("typeof globalThis.seen") == "undefined"


@pytest.mark.parametrize("driver", DRIVERS)
def test_async_callback_that_succeeds_is_awaited(pool, driver):
    module = _linked_synthetic(pool, _async_sets)
    assert DRIVERS[driver](module.evaluate()) is None
    assert module.status == "evaluated"
    assert module.namespace["x"] == "late"


def test_callback_returning_a_failed_future_errors_the_module(pool):
    failed = isolate.Future()
    failed.set_exception(Boom("boom-future"))
    module = _linked_synthetic(pool, lambda: failed)
    with pytest.raises(isolate.JSError, match="boom-future"):
        module.evaluate().result(WAIT_S)
    assert module.status == "errored"


@pytest.mark.parametrize("kind", CALLBACKS)
def test_failing_callback_rejects_a_dynamic_import(pool, kind):
    callback, message = CALLBACKS[kind]
    ctx = pool.create_context()
    module = SyntheticModule(["x"], callback, context=ctx, pool=pool)
    module.link(lambda *a: None).result(WAIT_S)
    script = isolate.Script("import('s').then(() => 'loaded', (e) => 'rejected: ' + e.message)",
                            import_module_dynamically=lambda *a: module)
    assert script.run_in_context(ctx).result(WAIT_S) == f"rejected: {message}"
    assert module.status == "errored"


def test_async_callback_may_await_the_callers_event_loop(pool):
    """evaluate() awaited in asyncio: the callback can wait for a future of that same loop."""

    async def main():
        loop = asyncio.get_running_loop()
        later = loop.create_future()
        loop.call_soon(later.set_result, "from the loop")

        async def callback(module):
            module.set_export("x", await later)

        module = SyntheticModule(["x"], callback, pool=pool)
        await asyncio.wait_for(module.link(lambda *a: None), WAIT_S)
        await asyncio.wait_for(module.evaluate(), WAIT_S)
        return module

    module = asyncio.run(main())
    assert module.status == "evaluated" and module.namespace["x"] == "from the loop"
