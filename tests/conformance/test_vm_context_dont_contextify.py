# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-context-dont-contextify.js
#
# Left out: `vm.runInContext('globalThis', context) === context` (the global
# object crosses to Python as a copy of its enumerable properties; the
# Context is its live view), `Object.freeze(context)` from the host (a
# Context cannot be frozen from Python; freezing from inside is ported), the
# checks that Node's own globalThis is not polluted (the host's "global" is
# the pool's main context here), and the importModuleDynamically part (ES
# modules, issue 4).
import pytest

import isolate
from isolate import Script, create_context, is_context, run_in_context, run_in_new_context
from isolate.constants import DONT_CONTEXTIFY

pytestmark = pytest.mark.timeout(60)

VANILLA = "globalThis.hey = 1; Object.freeze(globalThis); globalThis.process"


def test_identity_of_the_returned_context():
    context = create_context(DONT_CONTEXTIFY)
    assert run_in_context("globalThis === this", context) is True
    assert is_context(context)
    assert isinstance(context["Array"], isolate.JSFunction)  # builtins are accessible directly
    assert list(context) == []  # properties on the global are not enumerable


def test_create_context_returns_the_same_context_if_re_passed():
    context = create_context(DONT_CONTEXTIFY)
    assert create_context(context) is context


def test_vanilla_context_with_script_run_in_context():
    context = create_context(DONT_CONTEXTIFY)
    assert Script(VANILLA).run_in_context(context) is isolate.undefined
    assert "hey" not in isolate.default_pool().main_context


def test_script_run_in_new_context():
    assert Script(VANILLA).run_in_new_context(DONT_CONTEXTIFY) is isolate.undefined
    assert "hey" not in isolate.default_pool().main_context


def test_run_in_new_context():
    assert run_in_new_context(VANILLA, DONT_CONTEXTIFY) is isolate.undefined
    assert "hey" not in isolate.default_pool().main_context


def test_global_object_of_a_vanilla_context():
    context = create_context(DONT_CONTEXTIFY)

    # Mutation via globalThis.
    run_in_context("globalThis.foo = 1;", context)
    assert context["foo"] == 1
    assert run_in_context("globalThis.foo", context) == 1
    assert run_in_context("foo", context) == 1

    # Mutation from outside.
    context["foo"] = 2
    assert context["foo"] == 2
    assert run_in_context("globalThis.foo", context) == 2
    assert run_in_context("foo", context) == 2

    # Contextual mutation.
    run_in_context("bar = 1;", context)
    assert context["bar"] == 1
    assert run_in_context("globalThis.bar", context) == 1
    assert run_in_context("bar", context) == 1

    # Adding a new property from outside.
    context["baz"] = 1
    assert context["baz"] == 1
    assert run_in_context("globalThis.baz", context) == 1
    assert run_in_context("baz", context) == 1

    # Mutation via Object.defineProperty().
    run_in_context('Object.defineProperty(globalThis, "qux", {'
                   "enumerable: false, configurable: false, get() { return 1; } })", context)
    assert context["qux"] == 1
    assert run_in_context("qux", context) == 1
    desc = run_in_context('Object.getOwnPropertyDescriptor(globalThis, "qux")', context)
    assert desc["enumerable"] is False
    assert desc["configurable"] is False
    assert isinstance(desc["get"], isolate.JSFunction)
    with pytest.raises(isolate.JSTypeError):
        context["qux"] = 1
    # Setting a value without a setter fails silently.
    assert run_in_context("qux = 2; qux", context) == 1
    with pytest.raises(isolate.JSTypeError):
        run_in_context('Object.defineProperty(globalThis, "qux", { value: 1 });', context)


def test_frozen_vanilla_global():
    context = create_context(DONT_CONTEXTIFY)
    run_in_context("Object.freeze(globalThis)", context)

    # Mutation via globalThis: invoking setters on a frozen object fails silently.
    run_in_context("globalThis.foo = 1", context)
    assert "foo" not in context
    assert run_in_context("globalThis.foo", context) is isolate.undefined
    with pytest.raises(isolate.JSReferenceError):
        run_in_context("foo", context)

    # Mutation from outside.
    with pytest.raises(isolate.JSTypeError):
        context["foo"] = 2
    assert "foo" not in context
    with pytest.raises(isolate.JSReferenceError):
        run_in_context("foo", context)

    # Contextual mutation fails silently.
    run_in_context("bar = 1", context)
    assert "bar" not in context
    assert run_in_context("globalThis.bar", context) is isolate.undefined
    with pytest.raises(isolate.JSReferenceError):
        run_in_context("bar", context)

    # Mutation via Object.defineProperty().
    with pytest.raises(isolate.JSTypeError):
        run_in_context('Object.defineProperty(globalThis, "qux", {'
                       "enumerable: false, configurable: false, get() { return 1; } })", context)
    assert "qux" not in context
    assert run_in_context("globalThis.qux", context) is isolate.undefined
    assert run_in_context('Object.getOwnPropertyDescriptor(globalThis, "qux")', context) is isolate.undefined
    with pytest.raises(isolate.JSReferenceError):
        run_in_context("qux", context)
