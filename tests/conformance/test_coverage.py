"""Every Node test-vm-*.js file found for this suite is ported here or listed in NOT_PORTED.md."""

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(60)

HERE = Path(__file__).resolve().parent

# The test-vm-* files of nodejs/node's test/parallel found when this suite was written.
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
""".split()


def _module_name(node_name: str) -> str:
    return "test_vm_" + re.sub(r"[^a-z0-9_]", "_", node_name.lower()) + ".py"


def test_every_node_file_is_ported_or_listed():
    not_ported = (HERE / "NOT_PORTED.md").read_text(encoding="utf-8")
    missing, both = [], []
    for name in NODE_FILES:
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
        assert re.match(r"# Ported from https://github\.com/nodejs/node/blob/main/test/parallel/test-vm-\S+\.js$",
                        first), path.name


def test_counts():
    ported = [n for n in NODE_FILES if (HERE / _module_name(n)).exists()]
    assert len(NODE_FILES) == 95
    assert len(ported) >= 40
