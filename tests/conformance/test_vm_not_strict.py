# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-not-strict.js
# Related to bug report: https://github.com/nodejs/node/issues/43129
#
# Node's first part (`var a; delete a` in the test file itself) is about the
# host being sloppy JS; the Python host has no analog. The rest: a sloppy
# script in this context and in a new context, `var` bindings survive
# `delete`, and which global receives the declared `var`s. The host's `data`
# array is copied into the context (README), so what the context pushed is
# read back from the sandbox dict's mirror.
import pytest

import isolate

pytestmark = pytest.mark.timeout(60)

THIS_CODE = """
var unusedB = 1;
var data = [];
var b = "this";
delete b;
data.push(b);
data[0]
"""

CONTEXT_CODE = """
var unusedC = 1;
var c = "new";
delete c;
data.push(c);
"""


def test_var_bindings_survive_delete_in_sloppy_scripts():
    item2 = isolate.run_in_this_context(THIS_CODE)
    assert item2 == "this"
    sandbox = {"data": ["direct", item2]}
    isolate.run_in_context(CONTEXT_CODE, isolate.create_context(sandbox))
    assert sandbox["data"] == ["direct", "this", "new"]

    # Declared within run_in_this_context: a global of the main context.
    assert isolate.run_in_this_context("typeof unusedB") == "number"
    # Declared within run_in_context: a global of that context only.
    assert isolate.run_in_this_context("typeof unusedC") == "undefined"
    assert sandbox["unusedC"] == 1
