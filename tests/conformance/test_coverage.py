"""Every Node test-vm-*.js file found for this suite is ported here or listed in NOT_PORTED.md.

Both of Node's directories count: test/parallel, and test/known_issues (tests Node itself
fails; a known issue that Node fixed moved to test/parallel under the same name).
"""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

HERE = Path(__file__).resolve().parent

# The test-vm-* files of nodejs/node's test/parallel found when this suite was written, and
# those found since (issue 16): global-contextual-store, global-restricted-property,
# module-dynamic-import-promise, property-definer-interception, property-definer-partial-update,
# proxy-sandbox-property-query, util-lazy-properties.
NODE_FILES = """
access-process-env api-handles-getter-errors attributes-property-not-on-sandbox basic cached-data codegen
context-async-script context-dont-contextify context-property-forwarding context create-and-run-in-context
create-context-accessors create-context-arg create-context-circular-reference createcacheddata cross-context
data-property-writable debug-context deleting-property dynamic-import-callback-missing-flag
function-declaration function-redefinition getters global-assignment global-configurable-properties
global-define-property global-get-own global-identity global-non-writable-properties
global-property-enumerator global-property-interceptors global-property-prototype global-setter
harmony-symbols indexed-properties inherited_properties is-context low-stack-space measure-memory-lazy
measure-memory-multi-context measure-memory module-after-evaluate module-basic module-cached-data
module-dynamic-import module-dynamic-namespace module-errors module-evaluate-source-text-module
module-evaluate-synthethic-module module-evaluate-synthethic-module-rejection
module-evaluate-while-evaluating module-hasasyncgraph module-hastoplevelawait module-import-meta
module-instantiate module-link module-link-shared-deps module-linkmodulerequests
module-linkmodulerequests-circular module-linkmodulerequests-deep module-modulerequests
module-reevaluate module-referrer-realm module-synthetic new-script-new-context new-script-this-context
no-dynamic-import-callback not-strict options-validation ownkeys ownpropertynames ownpropertysymbols
parse-abort-on-uncaught-exception preserves-property property-not-on-sandbox proxies proxy-failure-CP
run-in-new-context script-after-evaluate script-throw-in-tostring set-property-proxy
set-proto-null-on-globalthis sigint sigint-existing-handler source-map-url static-this strict-assign
strict-mode symbols syntax-error-message syntax-error-stderr timeout timeout-escape-promise
timeout-escape-promise-2 timeout-escape-promise-module
global-contextual-store global-restricted-property module-dynamic-import-promise property-definer-interception
property-definer-partial-update proxy-sandbox-property-query util-lazy-properties
""".split()

# The test-vm-* files of nodejs/node's test/known_issues (over its history). Those that share a
# name with a test/parallel file were fixed and moved there; they are ported from there.
KNOWN_ISSUES = """
accessor_properties attributes-property-not-on-sandbox data-property-writable defineProperty-setter
deleting-property function-declaration-uses-define getters global-non-writable-properties
inherited_properties ownkeys ownpropertynames ownpropertysymbols proxy-failure-CP strict-mode
timeout-escape-nexttick timeout-escape-promise timeout-escape-queuemicrotask
""".split()


def _module_name(node_name: str) -> str:
    return "test_vm_" + re.sub(r"[^a-z0-9_]", "_", node_name.lower()) + ".py"


def test_every_node_file_is_ported_or_listed():
    not_ported = (HERE / "NOT_PORTED.md").read_text(encoding="utf-8")
    missing, both = [], []
    for name in sorted(set(NODE_FILES) | set(KNOWN_ISSUES)):
        ported = (HERE / _module_name(name)).exists()
        listed = re.search(rf"\[test-vm-{re.escape(name)}\.m?js\]", not_ported) is not None
        if not ported and not listed:
            missing.append(name)
        if ported and listed:
            both.append(name)
    assert not missing, f"neither ported nor in NOT_PORTED.md: {missing}"
    assert not both, f"ported and listed as not ported: {both}"


def test_every_module_links_its_original():
    for path in sorted(HERE.glob("test_vm_*.py")):
        first = path.read_text(encoding="utf-8").splitlines()[0]
        match = re.match(r"# Ported from https://github\.com/nodejs/node/blob/main/test/(parallel|known_issues)/"
                         r"test-vm-(\S+)\.js$", first)
        assert match, path.name
        listed = NODE_FILES if match.group(1) == "parallel" else KNOWN_ISSUES
        assert match.group(2) in listed and _module_name(match.group(2)) == path.name, path.name


def test_counts():
    ported = [n for n in NODE_FILES if (HERE / _module_name(n)).exists()]
    assert len(NODE_FILES) == 102 and len(set(NODE_FILES)) == len(NODE_FILES)
    assert len(KNOWN_ISSUES) == 17
    assert len(ported) >= 46
    # Known issues only Node's known_issues has (no test/parallel twin).
    only_known = [n for n in KNOWN_ISSUES if n not in NODE_FILES]
    assert only_known == ["accessor_properties", "defineProperty-setter", "function-declaration-uses-define",
                          "timeout-escape-nexttick", "timeout-escape-queuemicrotask"]
