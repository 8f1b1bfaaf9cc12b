"""Capabilities are per context, and errors JS can read carry nothing of the host.

(A worker forging call_host requests is attacked in tests/test_attack_frames.py:
test_a_worker_cannot_call_another_contexts_host_function.)
"""

import pytest

import isolate

pytestmark = pytest.mark.timeout(60)


class Secretive:
    def __repr__(self):
        return "Secretive(token='s3cr3t-t0ken', at=0xdeadbeef)"


@pytest.fixture(scope="module")
def pool():
    with isolate.Pool(size=1, spare_workers=0) as p:
        yield p


def test_a_host_function_is_numbered_per_context(pool):
    calls = []
    a = pool.create_context({"f": lambda: calls.append("a") or "a"})
    b = pool.create_context({"g": lambda: calls.append("b") or "b"})
    assert a.worker_pid == b.worker_pid
    # Each context knows only its own callables: both are number 1 in their own table.
    assert a._host_functions.keys() == b._host_functions.keys() == {1}
    assert pool.run_in_context("f()", a) == "a" and pool.run_in_context("g()", b) == "b"
    assert calls == ["a", "b"]


def test_the_same_callable_given_twice_is_one_entry(pool):
    def helper():
        return 1

    ctx = pool.create_context({"h": helper})
    for _ in range(50):
        ctx["h2"] = helper
        pool.run_in_context("h() + h2()", ctx)
    assert len(ctx._host_functions) == 1


def test_a_handle_of_another_context_cannot_cross_and_the_error_names_nothing_of_it(pool):
    a = pool.create_context(name="tenant-a-private-name")
    b = pool.create_context()
    fn = pool.run_in_context("(x) => x", a)
    with pytest.raises(isolate.UnencodableValueError) as info:
        b["fn"] = fn
    assert "tenant-a-private-name" not in str(info.value)
    # Returned by a host callable into b: b's script sees a TypeError naming no host detail.
    b["leak"] = lambda: fn
    message = pool.run_in_context("try { leak(); 'no error' } catch (e) { e.name + ': ' + e.message }", b)
    assert message.startswith("TypeError") and "tenant-a-private-name" not in message


def test_an_unencodable_result_tells_js_its_type_never_its_repr(pool):
    ctx = pool.create_context({"leak": lambda: Secretive(), "keys": lambda: {Secretive(): 1}})
    for call in ("leak()", "keys()"):
        message = pool.run_in_context(f"try {{ {call}; 'no error' }} catch (e) {{ e.message }}", ctx)
        assert "Secretive" in message or "type" in message, message
        assert "s3cr3t" not in message and "0xdeadbeef" not in message, message
    with pytest.raises(isolate.UnencodableValueError) as info:
        ctx["x"] = Secretive()
    assert "s3cr3t" not in str(info.value)


def test_a_js_function_returned_is_a_js_handle_and_a_host_function_is_the_callable(pool):
    def original():
        return 5

    ctx = pool.create_context({"original": original})
    assert pool.run_in_context("original", ctx) is original
    js = pool.run_in_context("(function plain() { return 6 })", ctx)
    assert isinstance(js, isolate.JSFunction) and js() == 6
