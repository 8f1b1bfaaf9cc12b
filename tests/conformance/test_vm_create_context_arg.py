# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-create-context-arg.js
import pytest

import isolate

pytestmark = pytest.mark.timeout(60)


def test_string_is_not_supported():
    with pytest.raises(isolate.InvalidArgTypeError) as info:
        isolate.create_context("string is not supported")
    assert info.value.code == "ERR_INVALID_ARG_TYPE"
    assert isinstance(info.value, TypeError)


def test_objects_are_accepted_and_contextifying_twice_is_fine():
    isolate.create_context({"a": 1})
    sandbox = {}
    isolate.create_context(sandbox)
    isolate.create_context(sandbox)


def test_an_array_is_accepted():
    array = [0, 1, 2, 3]
    isolate.create_context(array)
    assert isolate.is_context(array) and isolate.run_in_context("this[3]", array) == 3
