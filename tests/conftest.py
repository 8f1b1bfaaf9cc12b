"""Shared fixtures: real worker pools, closed at the end of the module that made them."""

import pytest

import isolate


@pytest.fixture(scope="module")
def pool():
    with isolate.Pool(size=2) as p:
        yield p


@pytest.fixture
def fresh_pool():
    """A pool a test may break (kill workers, close mid-call)."""
    with isolate.Pool(size=2) as p:
        yield p
