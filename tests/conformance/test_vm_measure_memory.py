# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-measure-memory.js
# (shape checks from test/common/measure-memory.js)
#
# Node's measureMemory(options) returns a Promise; isolate's
# measure_memory(mode, execution) returns an isolate.Future (README). Node's
# "options must be an object" checks (null, 'summary') have no analog: the
# Python signature takes the mode positionally; None is the wrong type.
import pytest

import isolate

pytestmark = pytest.mark.timeout(60)


def assert_result_shape(result):
    assert isinstance(result["jsMemoryEstimate"], (int, float))
    assert isinstance(result["jsMemoryRange"][0], (int, float))
    assert isinstance(result["jsMemoryRange"][1], (int, float))


def assert_summary_shape(result):
    assert isinstance(result, dict)
    assert isinstance(result["total"], dict)
    assert_result_shape(result["total"])


def assert_single_detailed_shape(result):
    assert isinstance(result, dict)
    assert isinstance(result["total"], dict)
    assert isinstance(result["current"], dict)
    assert result["other"] == []
    assert_result_shape(result["total"])
    assert_result_shape(result["current"])


def test_eager_measurement(fresh_pool):
    assert_summary_shape(fresh_pool.measure_memory(execution="eager").result(timeout=30))
    assert_single_detailed_shape(fresh_pool.measure_memory("detailed", "eager").result(timeout=30))
    assert_summary_shape(fresh_pool.measure_memory("summary", "eager").result(timeout=30))


def test_argument_validation():
    with pytest.raises(isolate.InvalidArgTypeError) as info:
        isolate.measure_memory(None)
    assert info.value.code == "ERR_INVALID_ARG_TYPE"
    with pytest.raises(isolate.InvalidArgValueError) as info:
        isolate.measure_memory("random")
    assert info.value.code == "ERR_INVALID_ARG_VALUE"
    with pytest.raises(isolate.InvalidArgValueError) as info:
        isolate.measure_memory("summary", "random")
    assert info.value.code == "ERR_INVALID_ARG_VALUE"
