# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-script-throw-in-tostring.js
#
# Node coerces `code` with toString (which throws here); isolate takes a str
# only, so a non-str code object is refused before it is ever converted.
import pytest

import isolate

pytestmark = pytest.mark.timeout(60)


class ThrowingToString:
    def __str__(self):
        raise RuntimeError("toString")


def test_code_whose_conversion_throws():
    with pytest.raises(Exception):
        isolate.Script(ThrowingToString())
    with pytest.raises(isolate.InvalidArgTypeError):
        isolate.Script(ThrowingToString())
