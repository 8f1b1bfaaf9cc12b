# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-is-context.js
import pytest

import isolate

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("value", ["string", None, isolate.undefined, 8.9, isolate.JSSymbol("sym"), True],
                         ids=repr)
def test_non_objects_are_rejected(value):
    with pytest.raises(isolate.InvalidArgTypeError) as info:
        isolate.is_context(value)
    assert info.value.code == "ERR_INVALID_ARG_TYPE"


def test_is_context():
    assert isolate.is_context({}) is False
    assert isolate.is_context([]) is False
    assert isolate.is_context(isolate.create_context()) is True
    sandbox = {"foo": "bar"}
    isolate.create_context(sandbox)
    assert isolate.is_context(sandbox) is True


def test_contextified_array_is_a_context():
    assert isolate.is_context(isolate.create_context([])) is True
