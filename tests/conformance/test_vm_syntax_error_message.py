# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-syntax-error-message.js
#
# Node's child catches the error of runInContext("throw new Error('boo')")
# and prints its message; nothing may go to stderr. Here: the message is
# 'boo', and nothing is written to this process's stdout or stderr.
import pytest

import isolate

pytestmark = pytest.mark.timeout(60)


def test_message_and_no_output(capfd):
    context = isolate.create_context({})
    try:
        isolate.run_in_context("throw new Error('boo')", context)
    except isolate.JSError as e:
        message = e.message
    out, err = capfd.readouterr()
    assert message == "boo"
    assert err == ""
    assert out == ""
