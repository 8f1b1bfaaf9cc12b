# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-options-validation.js
#
# `null` option values are left out (in Python `None` means "not given").
import math

import pytest

import isolate

pytestmark = pytest.mark.timeout(60)


def invalid_arg_type(fn):
    with pytest.raises(isolate.InvalidArgTypeError) as info:
        fn()
    assert info.value.code == "ERR_INVALID_ARG_TYPE"
    assert isinstance(info.value, TypeError)


def out_of_range(fn):
    with pytest.raises(isolate.OutOfRangeError) as info:
        fn()
    assert info.value.code == "ERR_OUT_OF_RANGE"


def test_script_options():
    invalid_arg_type(lambda: isolate.Script("void 0", 42))
    for value in ({}, [1], "bad", True):
        invalid_arg_type(lambda: isolate.Script("void 0", {"lineOffset": value}))
        invalid_arg_type(lambda: isolate.Script("void 0", {"columnOffset": value}))
    out_of_range(lambda: isolate.Script("void 0", {"lineOffset": 2**32}))
    out_of_range(lambda: isolate.Script("void 0", {"columnOffset": 2**32}))
    out_of_range(lambda: isolate.Script("void 0", {"lineOffset": 2**53 - 1}))
    out_of_range(lambda: isolate.Script("void 0", {"columnOffset": 2**53 - 1}))
    invalid_arg_type(lambda: isolate.Script("void 0", {"filename": 123}))
    invalid_arg_type(lambda: isolate.Script("void 0", {"produceCachedData": 1}))
    for value in ([0], {}, True, "bad", 42):
        invalid_arg_type(lambda: isolate.Script("void 0", {"cachedData": value}))


def test_non_integral_offsets_are_out_of_range():
    out_of_range(lambda: isolate.Script("void 0", {"lineOffset": 0.1}))
    out_of_range(lambda: isolate.Script("void 0", {"columnOffset": 0.1}))


@pytest.fixture(scope="module")
def script():
    return isolate.Script("void 0")


def _assert_errors(script, options, check):
    sandbox = isolate.create_context()
    check(lambda: script.run_in_this_context(options))
    check(lambda: script.run_in_context(sandbox, options))
    check(lambda: script.run_in_new_context({}, options))


def test_run_options(script):
    _assert_errors(script, 42, invalid_arg_type)
    for value in ({}, [1], "bad"):
        _assert_errors(script, {"timeout": value}, invalid_arg_type)
    for value in (-1, 0, math.nan):
        _assert_errors(script, {"timeout": value}, out_of_range)
    for value in ({}, [1], "bad", 1):
        _assert_errors(script, {"displayErrors": value}, invalid_arg_type)
        _assert_errors(script, {"breakOnSigint": value}, invalid_arg_type)


def test_string_run_options(script):
    _assert_errors(script, "bad", invalid_arg_type)
