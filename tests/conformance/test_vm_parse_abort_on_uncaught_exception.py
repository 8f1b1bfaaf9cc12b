# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-parse-abort-on-uncaught-exception.js
# Regression test for https://github.com/nodejs/node/issues/13258
#
# Node runs with --abort-on-uncaught-exception: a code argument whose
# toString throws, and a syntax error, must throw to the caller, not abort
# the process. Here: the host and the pool must survive both.
import pytest

import isolate

pytestmark = pytest.mark.timeout(60)


class ThrowingToString:
    def __str__(self):
        raise RuntimeError("foo")


def test_errors_while_parsing_do_not_abort():
    try:
        isolate.Script(ThrowingToString(), {})
    except Exception:  # continue regardless of error
        pass
    try:
        isolate.Script("[", {})
    except Exception:  # continue regardless of error
        pass
    assert isolate.run_in_new_context("[1, 2].length") == 2
