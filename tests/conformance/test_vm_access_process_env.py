# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-access-process-env.js
#
# Node puts its own `process` into the sandbox and reads process.env.PATH from
# inside the context (node-v0.x-archive#7511: it used to crash or throw). A
# Python host has no `process` object; its analog is the host's environment
# handed in as a value, which is what is ported.
import os

import pytest

import isolate

pytestmark = pytest.mark.timeout(60)


def test_reading_the_host_environment_from_a_context_does_not_throw():
    context = isolate.create_context({"process": {"env": dict(os.environ)}})
    result = isolate.run_in_context('process.env["PATH"]', context)
    assert result is not isolate.undefined
    assert result == os.environ["PATH"]
