# Ported from https://github.com/nodejs/node/blob/main/test/parallel/test-vm-source-map-url.js
import pytest

import isolate

pytestmark = pytest.mark.timeout(60)


def check_source_map_url(source, expected):
    assert isolate.Script(source).source_map_url == expected


def test_no_magic_comment():
    check_source_map_url("\nfunction myFunc() {}\n", None)


def test_malformed_magic_comment():
    check_source_map_url("\nfunction myFunc() {}\n// sourceMappingURL=sourcemap.json\n", None)


def test_expected_magic_comment():
    check_source_map_url("\nfunction myFunc() {}\n//# sourceMappingURL=sourcemap.json\n", "sourcemap.json")
