# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-measure-memory-multi-context.js
import pytest

from test_vm_measure_memory import assert_result_shape

pytestmark = pytest.mark.timeout(60)


def test_every_context_shows_up_in_a_detailed_measurement(fresh_pool):
    count = 10
    arr = [fresh_pool.create_context({"test": ["foo"] * 100}) for _ in range(count)]
    result = fresh_pool.measure_memory("detailed", "eager").result(timeout=30)
    # Hold on to the contexts until the measurement is complete.
    assert len(arr) == count
    assert isinstance(result["total"], dict) and isinstance(result["current"], dict)
    assert_result_shape(result["total"])
    assert_result_shape(result["current"])
    assert len(result["other"]) == count
    for item in result["other"]:
        assert_result_shape(item)
