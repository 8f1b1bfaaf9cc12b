# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-global-get-own.js
# Related to https://github.com/nodejs/node/issues/45983
#
# Node runs the same assertions on the context's global from the host and,
# through a host function, from inside the context. From Python the global
# is the Context mapping (string keys only: the Symbol.for keys and
# defineProperty run inside); inside the context the assertions run as JS.
import pytest

import isolate

pytestmark = pytest.mark.timeout(60)


def fun1():
    return 1


def fun2():
    return 2


def fun3():
    return 3


def _set_and_check(ctx, key, value):
    ctx[key] = value
    assert ctx[key] == value
    assert key in ctx
    assert key in list(ctx)


def _delete_and_check(ctx, key):
    del ctx[key]
    assert key not in ctx
    assert key not in list(ctx)
    assert isolate.run_in_context(f"this[{key!r}]", ctx) is isolate.undefined


@pytest.mark.parametrize("key, values", [("titi", (1, 2, 3)), ("tata", (fun1, fun2, fun3)),
                                         ("tztz", (fun1, 2, 3))])
def test_direct_assignment_from_the_host(key, values):
    ctx = isolate.create_context()
    v1, v2, v3 = values
    _set_and_check(ctx, key, v1)   # define
    _set_and_check(ctx, key, v2)   # update
    _delete_and_check(ctx, key)    # delete
    _set_and_check(ctx, key, v3)   # re-define
    _delete_and_check(ctx, key)    # delete again


RUN_ASSERTIONS = """
function assert(ok, what) { if (!ok) throw new Error('assertion failed: ' + what); }
function setPropertyAndAssert(data, property, viaDefine, value) {
  if (viaDefine) {
    Object.defineProperty(data, property, { enumerable: true, writable: true, value: value, configurable: true });
  } else {
    data[property] = value;
  }
  assert(data[property] === value, 'value of ' + String(property));
  assert(property in data, 'in');
  if (typeof property === 'string') {
    assert(Object.getOwnPropertyNames(data).includes(property), 'getOwnPropertyNames');
  } else {
    assert(Object.getOwnPropertySymbols(data).includes(property), 'getOwnPropertySymbols');
  }
}
function deletePropertyAndAssert(data, property) {
  delete data[property];
  assert(data[property] === undefined, 'deleted value');
  assert(!(property in data), 'deleted in');
  assert(!Object.getOwnPropertyNames(data).includes(property), 'deleted getOwnPropertyNames');
  assert(!Object.getOwnPropertySymbols(data).includes(property), 'deleted getOwnPropertySymbols');
}
function runAssertions(data, property, viaDefine, value1, value2, value3) {
  setPropertyAndAssert(data, property, viaDefine, value1);
  setPropertyAndAssert(data, property, viaDefine, value2);
  deletePropertyAndAssert(data, property);
  setPropertyAndAssert(data, property, viaDefine, value3);
  deletePropertyAndAssert(data, property);
}
"""


def _builder(variable: str, via_define: bool) -> str:
    names = ("toto", "tutu", "tyty") if via_define else ("titi", "tata", "tztz")
    flag = "true" if via_define else "false"
    a, b, c = names
    return f"""
    runAssertions({variable}, '{a}', {flag}, 1, 2, 3);
    runAssertions({variable}, Symbol.for('{a}'), {flag}, 1, 2, 3);
    runAssertions({variable}, '{b}', {flag}, fun1, fun2, fun3);
    runAssertions({variable}, Symbol.for('{b}'), {flag}, fun1, fun2, fun3);
    runAssertions({variable}, '{c}', {flag}, fun1, 2, 3);
    runAssertions({variable}, Symbol.for('{c}'), {flag}, fun1, 2, 3);
    """


@pytest.mark.parametrize("via_define", [True, False], ids=["define_property", "direct_assignment"])
def test_assertions_from_inside_the_context(via_define):
    sandbox_context = isolate.create_context({"fun1": fun1, "fun2": fun2, "fun3": fun3})
    isolate.run_in_context(RUN_ASSERTIONS, sandbox_context)
    isolate.run_in_context(_builder("this", via_define), sandbox_context)
    isolate.run_in_context(_builder("{}", via_define), sandbox_context)
