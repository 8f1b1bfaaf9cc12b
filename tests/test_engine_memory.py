"""Engine memory accounting and limits: the QuickJS C API through ctypes, in-process.

No worker processes: each test makes QuickJS contexts in this process
(``workers.engine.EngineContext``) and drives the bridge with ``op("run", ...)``.

Note: dukpy runs ``JS_RunGC`` at the start and end of every ``eval_string``,
so garbage (cyclic or not) never survives a bridge operation; ``run_gc()``
only makes a difference *during* an operation, e.g. inside a host call.
"""

from __future__ import annotations

import ctypes

import pytest

from isolate.protocol import ErrorValue, HostFunctionRef
from isolate.workers import engine as engine_module
from isolate.workers.engine import EngineContext, EngineError, memory_api_status
from isolate.workers.tagged import from_tagged, to_tagged

pytestmark = pytest.mark.timeout(60)

MiB = 1024 * 1024


class Engine:
    """An EngineContext whose host functions are plain Python callables."""

    def __init__(self):
        self.functions: dict = {}
        self.ctx = EngineContext(self._host_call)

    def _host_call(self, function_id, tagged_args, tagged):
        try:
            result = self.functions[function_id](*from_tagged(tagged_args, tagged))
        except Exception as exc:
            error = ErrorValue(type(exc).__name__, str(exc), f"{type(exc).__name__}: {exc}")
            return {"ok": False, "e": to_tagged(error)[0]}
        return {"ok": True, "v": to_tagged(result)[0]}

    def expose(self, name, fn):
        function_id = len(self.functions) + 1
        self.functions[function_id] = fn
        assert self.ctx.op("set", 0, name, to_tagged(HostFunctionRef(function_id, name)))["ok"]

    def run_reply(self, code):
        return self.ctx.op("run", code, "t.js", False, 0, 0, True)

    def run(self, code):
        reply = self.run_reply(code)
        assert reply["ok"], reply
        return from_tagged(reply["v"], reply.get("t", True))

    def thrown(self, code):
        reply = self.run_reply(code)
        assert not reply["ok"], reply
        return from_tagged(reply["e"], reply.get("t", True))

    def used(self) -> int:
        return self.ctx.memory_usage()["memory_used_size"]


@pytest.fixture
def engine():
    return Engine()


@pytest.fixture
def restore_memory_api():
    """Whatever a test does to the API's state, the next use probes afresh."""
    yield
    engine_module._reset_memory_api_for_tests()


def assert_out_of_memory(error):
    assert isinstance(error, ErrorValue), error
    assert error.name == "InternalError", error
    assert error.message == "out of memory", error


class TestStatus:
    def test_available_here(self):
        available, reason = memory_api_status()
        assert available, reason
        assert "verified" in reason

    def test_empty_context_is_small(self, engine):
        usage = engine.ctx.memory_usage()
        assert set(usage) == set(engine_module._MEMORY_USAGE_FIELDS)
        assert all(type(v) is int for v in usage.values())
        assert 10_000 < usage["memory_used_size"] < 300_000, usage
        assert usage["malloc_limit"] == 128 * MiB  # dukpy's default for every runtime
        assert usage["obj_count"] > 0 and usage["malloc_count"] > 0

    def test_contexts_are_separate_runtimes(self):
        a, b = Engine(), Engine()
        a.run("globalThis.big = 'x'.repeat(4 * 1024 * 1024); 0")
        assert a.used() > b.used() + 3 * MiB
        a.ctx.set_memory_limit(64 * MiB)
        assert a.ctx.memory_usage()["malloc_limit"] == 64 * MiB
        assert b.ctx.memory_usage()["malloc_limit"] == 128 * MiB


class TestLimit:
    def test_unbounded_array_is_out_of_memory_and_context_survives(self, engine):
        assert engine.ctx.set_memory_limit(32 * MiB) is True
        assert engine.ctx.memory_usage()["malloc_limit"] == 32 * MiB
        error = engine.thrown("const a = []; for (;;) a.push(new Array(1e5).fill(1))")
        assert_out_of_memory(error)
        assert engine.run_reply("1+1") == {"ok": True, "v": 2, "t": False}
        assert engine.used() < 1 * MiB  # the script's array is gone with its eval

    def test_growing_string_is_out_of_memory(self, engine):
        engine.ctx.set_memory_limit(32 * MiB)
        assert_out_of_memory(engine.thrown("let s = 'x'; for (;;) s = s + s"))
        assert engine.run("1+1") == 2

    def test_catchable_and_retained_data_near_the_limit(self, engine):
        engine.ctx.set_memory_limit(32 * MiB)
        # Out of memory is an ordinary (catchable) InternalError in QuickJS.
        assert engine.run(
            "globalThis.keep = [];"
            "try { for (;;) keep.push(new Array(1e5).fill(1)) } catch (e) { String(e) }"
        ) == "InternalError: out of memory"
        assert engine.used() > 16 * MiB  # `keep` survives (~24 MB measured)
        assert engine.run("1+1") == 2
        engine.run("delete globalThis.keep")
        assert engine.used() < 1 * MiB

    BLOW_UP = "var a = []; while (true) a.push('x'.repeat(1000) + a.length)"

    def test_context_stuck_at_its_limit_recovers(self, engine):
        """The blow-up leaves the limit full (a global holds it all), where QuickJS
        throws null and the bridge cannot reply: the engine lends its reserve."""
        engine.ctx.set_memory_limit(32 * MiB)

        def run(code):  # scripts through the C API (compiled with a file name), as the worker runs them
            bytecode, failure = engine.ctx.compile_script(code, "blow.js")
            assert failure is None
            return engine.ctx.run_compiled(bytecode, False)

        for _ in range(2):
            reply = run(self.BLOW_UP)
            assert not reply["ok"]
            assert_out_of_memory(from_tagged(reply["e"], reply["t"]))
            assert engine.ctx.memory_usage()["malloc_limit"] == 32 * MiB  # the reserve is not the user's
            assert run("a = null; 1") == {"ok": True, "v": 1, "t": False}
            assert engine.ctx.memory_usage(raw=True)["malloc_limit"] == 32 * MiB  # and it was given back
            assert engine.run("[1, 2].map(x => x * 2)") == [2, 4]

    def test_at_the_limit_every_op_says_out_of_memory(self, engine):
        engine.ctx.set_memory_limit(32 * MiB)
        engine.thrown("globalThis.keep = []; for (;;) keep.push('x'.repeat(1000) + keep.length)")
        for reply in (engine.run_reply("keep.push('y'.repeat(1e6))"), engine.ctx.op("get", 0, "keep")):
            assert not reply["ok"]
            assert_out_of_memory(from_tagged(reply["e"], reply["t"]))
        assert engine.run("keep = null; 'free'") == "free"

    def test_throw_null_is_null_away_from_the_limit(self, engine):
        assert engine.thrown("throw null") is None
        bytecode, _ = engine.ctx.compile_script("throw null", "n.js")
        reply = engine.ctx.run_compiled(bytecode, False)
        assert not reply["ok"] and reply["e"] is None

    def test_raising_the_limit_again(self, engine):
        engine.ctx.set_memory_limit(16 * MiB)
        assert_out_of_memory(engine.thrown("'x'.repeat(20 * 1024 * 1024).length"))
        engine.ctx.set_memory_limit(64 * MiB)
        assert engine.run("'x'.repeat(20 * 1024 * 1024).length") == 20 * MiB

    def test_bad_limits(self, engine):
        with pytest.raises(TypeError):
            engine.ctx.set_memory_limit(1.5)
        with pytest.raises(TypeError):
            engine.ctx.set_memory_limit(True)
        with pytest.raises(ValueError):
            engine.ctx.set_memory_limit(-1)
        assert engine.ctx.memory_usage()["malloc_limit"] == 128 * MiB


class TestUsageAndGC:
    def test_usage_follows_retained_data(self, engine):
        before = engine.used()
        engine.run("globalThis.big = Array.from({length: 1024}, (_, i) => 'y'.repeat(10 * 1024) + i); 0")
        grown = engine.used()
        assert grown - before >= 8 * MiB, (before, grown)
        engine.run("delete globalThis.big")
        assert engine.ctx.run_gc() is True
        after = engine.used()
        assert after - before < 256 * 1024, (before, grown, after)

    def test_run_gc_collects_cycles_mid_operation(self, engine):
        # Cyclic garbage (~4 MB, under the 8 MiB GC threshold) made in the same
        # eval as the host call, so dukpy's own end-of-eval GC has not run yet.
        seen = []

        def measure():
            before = engine.used()
            assert engine.ctx.run_gc() is True
            seen.append((before, engine.used()))
            return True

        engine.expose("measure", measure)
        baseline = engine.used()
        assert engine.run(
            "for (let i = 0; i < 400; i++) { const o = {d: 'z'.repeat(10 * 1024) + i}; o.self = o }"
            "measure()"
        ) is True
        (before, after), = seen
        assert before - baseline > 3 * MiB, (baseline, before, after)
        assert after - baseline < 256 * 1024, (baseline, before, after)


class TestWithoutTheCAPI:
    def test_forced_unavailable(self, engine, restore_memory_api):
        engine_module._disable_memory_api_for_tests("switched off by test_forced_unavailable")
        assert memory_api_status() == (False, "switched off by test_forced_unavailable")
        assert engine.ctx.memory_usage() is None
        assert engine.ctx.run_gc() is False
        with pytest.raises(EngineError, match="switched off by test_forced_unavailable"):
            engine.ctx.set_memory_limit(32 * MiB)
        assert engine.run("1+1") == 2

        engine_module._reset_memory_api_for_tests()
        assert memory_api_status()[0] is True
        assert engine.ctx.set_memory_limit(32 * MiB) is True
        assert engine.ctx.memory_usage()["malloc_limit"] == 32 * MiB

    def test_environment_switch_refuses_new_contexts(self, engine, restore_memory_api, monkeypatch):
        monkeypatch.setenv("ISOLATE_DISABLE_QUICKJS_CTYPES", "1")
        engine_module.reset_for_new_process()  # what a worker forked with that env does
        available, reason = memory_api_status()
        assert not available and "ISOLATE_DISABLE_QUICKJS_CTYPES" in reason
        with pytest.raises(EngineError, match="ISOLATE_DISABLE_QUICKJS_CTYPES"):
            engine.ctx.set_memory_limit(32 * MiB)
        # No context at all, rather than one whose bridge is reachable from the global.
        with pytest.raises(EngineError, match="cannot run scripts here.*dukpy"):
            EngineContext(lambda *a: {"ok": True, "v": None})
        assert engine_module.bridge_install_status()[0] is False
        monkeypatch.setenv("ISOLATE_DISABLE_QUICKJS_CTYPES", "0")
        engine_module.reset_for_new_process()
        assert memory_api_status()[0] is True
        assert Engine().run("1+1") == 2

    def test_probe_detects_a_layout_mismatch(self, restore_memory_api, monkeypatch):
        class Swapped(ctypes.Structure):  # runtime and context in the wrong order
            _fields_ = [("context", ctypes.c_void_p), ("runtime", ctypes.c_void_p)]

        monkeypatch.setattr(engine_module, "_DukPyContextHead", Swapped)
        api = engine_module._QuickJSMemory.load()
        assert not api.available
        assert "layout mismatch" in api.reason

    def test_probe_detects_a_wrong_capsule_name(self, restore_memory_api, monkeypatch):
        monkeypatch.setattr(engine_module, "_CAPSULE_NAME", b"SOMETHING_ELSE")
        api = engine_module._QuickJSMemory.load()
        assert not api.available
        assert "capsule" in api.reason

    def test_probe_survives_a_missing_symbol(self, restore_memory_api, monkeypatch):
        def no_symbols(self):
            raise AttributeError("undefined symbol: JS_ComputeMemoryUsage")

        monkeypatch.setattr(engine_module._QuickJSMemory, "_bind", no_symbols)
        api = engine_module._QuickJSMemory.load()
        assert not api.available
        assert "JS_ComputeMemoryUsage" in api.reason
