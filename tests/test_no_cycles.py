"""What a call leaves behind is freed when the caller drops it, not by the cyclic
garbage collector.

A reference cycle through a finished call (a job and its group, a future and the
closure that could stop it, an error and the frame that raised it, a task and the
coroutine it drives) kept each reply alive until a full collection. On a stream of
50 KB JSON jobs that was ~700 objects per job and a full collection of ~75 jobs'
garbage every ~75 jobs (50-120 ms each): about 1 ms of host CPU per job, a third of
the host's share. Each case here runs real calls on a real pool and asserts that
the collector finds nothing of isolate's among the garbage.
"""

from __future__ import annotations

import asyncio
import gc

import pytest

import isolate

pytestmark = pytest.mark.timeout(60)


def _isolate_garbage(action) -> list[str]:
    """The types of isolate's objects that only the cyclic collector freed during ``action``."""
    action()  # warm: first-use caches are not garbage
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        action()
        gc.collect()
    finally:
        gc.set_debug(0)
    found = sorted({f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage
                    if type(o).__module__.startswith("isolate")})
    gc.garbage.clear()
    return found


@pytest.fixture(scope="module")
def pool():
    with isolate.Pool(size=2) as p:
        yield p


def _raises(fn):
    def run():
        try:
            fn()
        except isolate.IsolateError:
            pass
    return run


CASES = {
    "run_in_context": lambda pool, ctx: [pool.run_in_context("x + 1", ctx, timeout=1000) for _ in range(20)],
    "run_in_new_context": lambda pool, ctx: [pool.run_in_new_context("x + 1", {"x": 1}) for _ in range(20)],
    "submit": lambda pool, ctx: [f.result() for f in [pool.submit("x + 1", {"x": i}) for i in range(20)]],
    "map (groups of jobs)": lambda pool, ctx: list(pool.map("x + 1", [{"x": i} for i in range(40)])),
    "map, unordered": lambda pool, ctx: list(pool.map("x + 1", [{"x": i} for i in range(40)], ordered=False)),
    "run_batch": lambda pool, ctx: list(pool.run_batch(({"id": i, "context": {"x": i}} for i in range(40)),
                                                       script="x + 1")),
    "globals in and out": lambda pool, ctx: [ctx.__setitem__("doc", {"a": [1, {"b": 2}]}) or ctx["doc"]
                                             for _ in range(20)],
    "a JS function called": lambda pool, ctx: [pool.run_in_context("(a) => a + 1", ctx)(i) for i in range(20)],
    "a thrown error": lambda pool, ctx: [_raises(lambda: pool.run_in_context("throw new TypeError('no')", ctx))()
                                         for _ in range(20)],
    "a timeout": lambda pool, ctx: _raises(lambda: pool.run_in_context("for (;;) {}", ctx, timeout=20))(),
    "asyncio": lambda pool, ctx: asyncio.run(_gather(pool, ctx)),
}


async def _gather(pool, ctx):
    await asyncio.gather(*[pool.arun_in_context("x + 1", ctx) for _ in range(10)])
    return await pool.arun_in_context("x + 1", ctx)


@pytest.mark.parametrize("case", list(CASES))
def test_a_finished_call_leaves_no_reference_cycle(pool, case):
    ctx = pool.create_context({"x": 1})
    assert _isolate_garbage(lambda: CASES[case](pool, ctx)) == []


def test_a_js_error_is_its_own_value_without_referring_to_itself():
    err = isolate.JSError("boom", name="TypeError")
    assert err.value is err
    assert err not in gc.get_referents(err.__dict__)
    thrown = isolate.JSError("Uncaught 1", value=1)
    assert thrown.value == 1
