# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-api-handles-getter-errors.js
#
# Node checks (in child processes) that an options object whose property
# getters throw makes vm.createScript() / script.runInThisContext() throw
# that error instead of crashing (nodejs/node#12369). Python options have no
# getters; the analog is an options mapping whose reads raise. The error must
# reach the caller unchanged, and the pool must stay usable.
import pytest

import isolate

pytestmark = pytest.mark.timeout(60)


class Throwing(dict):
    """An options dict whose every read raises, like Node's throwing getters."""

    def _raise(self, *args, **kwargs):
        raise RuntimeError("xyz")

    __getitem__ = get = items = keys = values = __iter__ = __contains__ = _raise


@pytest.mark.parametrize("prop", ["filename", "cachedData", "produceCachedData", "lineOffset", "columnOffset"])
def test_script_options_reads_that_throw(prop):
    with pytest.raises(RuntimeError, match="xyz"):
        isolate.Script("", Throwing({prop: None}))
    assert isolate.run_in_new_context("1 + 1") == 2


@pytest.mark.parametrize("prop", ["breakOnSigint", "timeout", "displayErrors"])
def test_run_in_this_context_options_reads_that_throw(prop):
    script = isolate.Script("")
    with pytest.raises(RuntimeError, match="xyz"):
        script.run_in_this_context(Throwing({prop: None}))
    assert isolate.run_in_new_context("1 + 1") == 2
