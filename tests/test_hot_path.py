"""The round trip's fast paths (issue 14) keep every behaviour of the slow ones."""

from __future__ import annotations

import pytest

import isolate
from isolate import api
from isolate.errors import IsolateError


@pytest.fixture(scope="module")
def pool():
    with isolate.Pool(size=1) as pool:
        yield pool


def test_repeated_code_and_options_reuse_their_validation(pool):
    ctx = pool.create_context()
    assert [isolate.run_in_context("6 * 7", ctx, timeout=1000) for _ in range(3)] == [42] * 3
    assert ("code", "6 * 7", ("timeout", int, 1000)) in api._REPEATED


def test_an_option_of_another_type_is_validated_again(pool):
    ctx = pool.create_context()
    assert isolate.run_in_context("1", ctx, timeout=1) == 1
    with pytest.raises(IsolateError):
        isolate.run_in_context("1", ctx, timeout=True)   # True == 1, but a bool is no timeout
    with pytest.raises(IsolateError):
        isolate.run_in_context("1", ctx, timeout=-1)
    with pytest.raises(IsolateError):
        isolate.run_in_context("1", ctx, timeout=-1)     # refused again: a refusal is not cached


def test_a_repeated_call_still_checks_its_context(pool):
    ctx = pool.create_context()
    isolate.run_in_context("2", ctx, timeout=1000)
    with pytest.raises(IsolateError):
        isolate.run_in_context("2", {"not": "a context"}, timeout=1000)


def test_a_repeated_call_still_times_out(pool):
    ctx = pool.create_context()
    for _ in range(2):
        with pytest.raises(isolate.ScriptTimeoutError):
            isolate.run_in_context("for (;;) {}", ctx, timeout=50)


def test_the_cache_stays_bounded(pool):
    ctx = pool.create_context()
    for i in range(api._REPEATED_MAX + 10):
        isolate.run_in_context(f"{i}", ctx)
    assert len(api._REPEATED) <= api._REPEATED_MAX


def test_primitive_results_across_the_wire(pool):
    # Read straight from the engine's value (see workers/engine.py, _primitive).
    ctx = pool.create_context()
    for code, expected in [("1 + 1", 2), ("1.5", 1.5), ("'x'.repeat(3)", "xxx"), ("true", True), ("null", None),
                           ("2**31", 2**31), ("-2147483648", -2**31)]:
        for _ in range(2):
            value = isolate.run_in_context(code, ctx, timeout=1000)
            assert value == expected and type(value) is type(expected)
    assert isolate.run_in_context("undefined", ctx, timeout=1000) is isolate.undefined


@pytest.mark.parametrize("value", [
    [2, None], ["ascii", 1.5, True, None], ["é", None], [2**60, None], [float("nan"), -0.0],
    [[1], None], [{"a": 1}, None], list(range(9)), [], [b"bytes"], [isolate.undefined, None]])
def test_a_short_flat_list_encodes_as_the_full_walk_does(value):
    from isolate.protocol import codec

    fast = codec.encode_value(value)
    walked = codec._Encoder(None, codec.MAX_ENCODE_DEPTH).run(value)
    assert repr(fast) == repr(walked)
    assert fast is not value


def test_a_script_run_repeatedly_reuses_its_validated_options(pool):
    ctx = pool.create_context()
    script = isolate.Script("40 + 2")
    assert [script.run_in_context(ctx, timeout=1000) for _ in range(3)] == [42] * 3
    assert ("run options", "script.run_in_context()", ("timeout", int, 1000)) in api._REPEATED
    # Code that spells the same as that entry's name never meets it: it runs.
    with pytest.raises(isolate.JSError, match="script is not defined"):
        isolate.run_in_context("script.run_in_context()", ctx, timeout=1000)
    with pytest.raises(IsolateError):
        script.run_in_context(ctx, timeout=True)
    with pytest.raises(IsolateError):
        script.run_in_context(ctx, bogus=1)
    with pytest.raises(IsolateError):
        script.run_in_context(ctx, bogus=1)
