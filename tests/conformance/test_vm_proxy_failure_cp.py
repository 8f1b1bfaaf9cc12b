# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-proxy-failure-CP.js
# Issue: https://github.com/nodejs/node/issues/11902
#
# Node contextifies a Proxy whose getOwnPropertyDescriptor trap throws and
# checks that createContext / runInContext('') do not query the sandbox's
# property attributes. A JS Proxy cannot be a sandbox from Python; the
# nearest analog is a dict whose per-key hooks raise: contextifying it and
# running empty code must not call them.
import pytest

import isolate

pytestmark = pytest.mark.timeout(60)


class Hostile(dict):
    def _whoops(self, *args, **kwargs):
        raise RuntimeError("whoops")

    __getitem__ = get = __contains__ = _whoops


def test_contextifying_does_not_query_per_key_hooks():
    sandbox = Hostile(foo="bar")
    context = isolate.create_context(sandbox)
    isolate.run_in_context("", context)
    assert dict.__getitem__(sandbox, "foo") == "bar"
