# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-api-handles-getter-errors.js
#
# Node checks (in child processes) that an options object whose property
# getters throw makes vm.createScript() / script.runInThisContext() throw
# that error instead of crashing (nodejs/node#12369). Python options have no
# getters; the analog is an options dict subclass whose reads raise. isolate
# validates options without running any of a caller's overrides (it reads
# the dict as the plain dict it is: see isolate/options.py), so the overrides
# never run and the options are taken for what they hold. What Node's test
# is about holds: nothing crashes and the pool stays usable.
import pytest

import isolate

pytestmark = pytest.mark.timeout(60)


class Throwing(dict):
    """An options dict whose every overridden read raises, like Node's throwing getters."""

    def _raise(self, *args, **kwargs):
        raise RuntimeError("xyz")

    __getitem__ = get = items = keys = values = __iter__ = __contains__ = _raise


@pytest.mark.parametrize("prop", ["filename", "cachedData", "produceCachedData", "lineOffset", "columnOffset"])
def test_script_options_reads_that_throw(prop):
    script = isolate.Script("41 + 1", Throwing({prop: None}))  # None: the option's default
    assert script.run_in_new_context() == 42
    assert isolate.run_in_new_context("1 + 1") == 2


@pytest.mark.parametrize("prop", ["breakOnSigint", "timeout", "displayErrors"])
def test_run_in_this_context_options_reads_that_throw(prop):
    script = isolate.Script("2 + 3")
    assert script.run_in_this_context(Throwing({prop: None})) == 5
    assert isolate.run_in_new_context("1 + 1") == 2
