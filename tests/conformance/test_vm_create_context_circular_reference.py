# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-create-context-circular-reference.js
import pytest

import isolate

pytestmark = pytest.mark.timeout(60)


def test_circular_sandbox_reads_through_from_the_host():
    sbx = {}
    sbx["window"] = sbx
    ctx = isolate.create_context(sbx)
    ctx["test"] = 123
    assert sbx["window"]["window"]["window"]["window"]["window"]["test"] == 123


def test_circular_sandbox_reads_through_from_the_context():
    sbx = {}
    sbx["window"] = sbx
    ctx = isolate.create_context(sbx)
    ctx["test"] = 123
    assert isolate.run_in_context("window.window.window.window.window.test", ctx) == 123
