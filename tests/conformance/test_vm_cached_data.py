# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-cached-data.js
#
# As in Node, the cached data is produced in another process (a Python child
# using isolate) and consumed here. Node's getArrayBufferViews (every typed
# array view of the data) becomes Python's bytes-like types.
import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

import isolate

pytestmark = pytest.mark.timeout(60)

REPO = Path(__file__).resolve().parents[2]

_PRODUCER = """
import base64, json, sys
import isolate
out = {}
for source, count in json.loads(sys.argv[1]):
    data = None
    for _ in range(count):
        script = isolate.Script(source, produce_cached_data=True)
        assert not script.cached_data_produced or isinstance(script.cached_data, bytes)
        if script.cached_data_produced:
            data = base64.b64encode(script.cached_data).decode()
    out[source] = data
print(json.dumps(out))
"""


def get_source(tag: str) -> str:
    return f"(function {tag}() {{ return '{tag}'; }})"


@pytest.fixture(scope="module")
def produced():
    jobs = [[get_source("original"), 3], [get_source("invalid"), 1], [get_source("slice"), 1]]
    proc = subprocess.run([sys.executable, "-c", _PRODUCER, json.dumps(jobs)], cwd=REPO, capture_output=True,
                          text=True, timeout=50, check=False)
    assert proc.returncode == 0, proc.stderr
    return {source: base64.b64decode(data) for source, data in json.loads(proc.stdout).items()}


def test_produce_consume(produced):
    source = get_source("original")
    data = produced[source]
    for cached_data in (data, bytearray(data), memoryview(data)):
        script = isolate.Script(source, cached_data=cached_data)
        assert not script.cached_data_rejected
        assert script.run_in_this_context()() == "original"


def test_reject_invalid(produced):
    script = isolate.Script(get_source("invalid_1"), cached_data=produced[get_source("invalid")])
    assert script.cached_data_rejected
    assert script.run_in_this_context()() == "invalid_1"


def test_reject_slice(produced):
    source = get_source("slice")
    script = isolate.Script(source, cached_data=produced[source][4:])
    assert script.cached_data_rejected


def test_non_bytes_cached_data_is_a_type_error():
    with pytest.raises(isolate.InvalidArgTypeError, match="Buffer, TypedArray, or DataView") as info:
        isolate.Script("function abc() {}", cached_data="ohai")
    assert info.value.code == "ERR_INVALID_ARG_TYPE"
