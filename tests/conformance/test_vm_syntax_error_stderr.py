# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-syntax-error-stderr.js
#
# Node `require`s a PEM certificate as JS and checks the reported error: the
# offending source line (BEGIN CERT), a caret line, and V8's message. The
# port compiles the same kind of text with a filename: the error (a
# SyntaxError) shows the source line and a caret; the message is the
# engine's own (QuickJS words it differently, README) and is left out.
import re

import pytest

import isolate

pytestmark = pytest.mark.timeout(60)

CERT = """-----BEGIN CERTIFICATE-----
MIIDBzCCAe+gAwIBAgIJAJ2uH5VtZTz+MA0GCSqGSIb3DQEBBQUAMBoxGDAWBgNV
-----END CERTIFICATE-----
"""


def test_syntax_error_shows_the_line_and_a_caret():
    with pytest.raises(isolate.JSSyntaxError) as info:
        isolate.Script(CERT, "rsa_cert.crt")
    stack = info.value.stack
    assert info.value.name == "SyntaxError"
    assert re.search(r"BEGIN CERT", stack), stack
    assert re.search(r"^\s*\^+\s*$", stack, re.MULTILINE), stack
    assert stack.startswith("rsa_cert.crt:"), stack
