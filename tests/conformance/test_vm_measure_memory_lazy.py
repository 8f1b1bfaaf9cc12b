# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-measure-memory-lazy.js
#
# Node's lazy (default) measurements only settle after a GC (global.gc());
# isolate's settle by themselves. Node checks the summary shape in every mode.
import pytest

import isolate

from test_vm_measure_memory import assert_summary_shape

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("args", [(), ("summary",), ("detailed",)], ids=["default", "summary", "detailed"])
def test_lazy_measurement_settles_with_the_summary_shape(args):
    assert_summary_shape(isolate.measure_memory(*args).result(timeout=30))


def test_lazy_measurement_with_keywords():
    assert_summary_shape(isolate.measure_memory(mode="summary").result(timeout=30))
