# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-timeout.js
#
# The nested cases call back into vm from a host function ("runInVM"), as
# Node's do. They run on a pool of their own: a nested script left running
# by the outer timeout must not hold a worker of the default pool.
import pytest

import isolate

pytestmark = pytest.mark.timeout(60)


def test_timeout_of_an_endless_loop():
    with pytest.raises(isolate.ScriptTimeoutError) as info:
        isolate.run_in_this_context("while(true) {}", {"timeout": 100})
    assert info.value.code == "ERR_SCRIPT_EXECUTION_TIMEOUT"
    assert str(info.value) == "Script execution timed out after 100ms"


def test_script_finishes_first():
    isolate.run_in_this_context("", {"timeout": 1000})


def test_nested_inner_timeout_propagates_out(fresh_pool):
    context = {}

    def run_in_vm(timeout):
        fresh_pool.run_in_new_context("while(true) {}", context, {"timeout": timeout})

    context["runInVM"] = run_in_vm
    with pytest.raises(isolate.IsolateError) as info:
        fresh_pool.run_in_new_context("runInVM(10)", context, {"timeout": 10000})
    assert info.value.code == "ERR_SCRIPT_EXECUTION_TIMEOUT"
    assert "Script execution timed out after 10ms" in str(info.value)


def test_nested_inner_timeout_message_propagates_out(fresh_pool):
    # What of the test above holds: the inner timeout ends the outer call, with its message.
    context = {}

    def run_in_vm(timeout):
        fresh_pool.run_in_new_context("while(true) {}", context, {"timeout": timeout})

    context["runInVM"] = run_in_vm
    with pytest.raises(isolate.IsolateError, match="Script execution timed out after 10ms"):
        fresh_pool.run_in_new_context("runInVM(10)", context, {"timeout": 10000})


def test_nested_outer_timeout_is_shorter_and_fires_first(fresh_pool):
    context = {}

    def run_in_vm(timeout):
        fresh_pool.run_in_new_context("while(true) {}", context, {"timeout": timeout})

    context["runInVM"] = run_in_vm
    with pytest.raises(isolate.ScriptTimeoutError) as info:
        fresh_pool.run_in_new_context("runInVM(10000)", context, {"timeout": 100})
    assert info.value.code == "ERR_SCRIPT_EXECUTION_TIMEOUT"
    assert str(info.value) == "Script execution timed out after 100ms"


def test_nested_inner_script_throws(fresh_pool):
    context = {}

    def run_in_vm(timeout):
        fresh_pool.run_in_new_context("throw new Error('foobar')", context, {"timeout": timeout})

    context["runInVM"] = run_in_vm
    with pytest.raises(isolate.JSError, match="foobar"):
        fresh_pool.run_in_new_context("runInVM(10000)", context, {"timeout": 100000})
