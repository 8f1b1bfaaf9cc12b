# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-createcacheddata.js
import pytest

from isolate import Script

pytestmark = pytest.mark.timeout(60)


def test_create_cached_data_before_and_after_running():
    source = "function x() {} const y = x();"
    script = Script(source)
    cached_data = script.create_cached_data()
    assert isinstance(cached_data, bytes)
    assert not Script(source, cached_data=cached_data).cached_data_rejected
    script.run_in_new_context()
    for _ in range(10):
        cached_data = script.create_cached_data()
        assert not Script(source, cached_data=cached_data).cached_data_rejected
