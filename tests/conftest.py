"""Shared fixtures: real worker pools, closed at the end of the module that made them;
SIGALRM left as a test found it."""

import signal

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


@pytest.fixture
def alarm():
    """Leaves SIGALRM as it found it (handler and timer), for tests that arm their own
    deadlines in this process (they run under pytest-timeout's thread method)."""
    previous = signal.getsignal(signal.SIGALRM)
    yield
    signal.setitimer(signal.ITIMER_REAL, 0)
    signal.signal(signal.SIGALRM, previous)
