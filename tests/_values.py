"""Test helpers shared by the pure protocol tests and the in-process engine tests."""

from __future__ import annotations

import math

from isolate.protocol import ErrorValue, Unhashable


def same(a, b, memo=None) -> bool:
    """Deep equality that understands NaN, -0.0, cycles and the eq=False value types."""
    memo = {} if memo is None else memo
    if isinstance(a, (list, dict, set, ErrorValue, Unhashable)):
        key = (id(a), id(b))
        if key in memo:
            return True
        memo[key] = True
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a):
            return math.isnan(b)
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if type(a) is not type(b):
        return False
    if isinstance(a, Unhashable):
        return same(a.value, b.value, memo)
    if isinstance(a, ErrorValue):
        return (a.name, a.message, a.stack) == (b.name, b.message, b.stack) and same(a.props, b.props, memo)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y, memo) for x, y in zip(a, b))
    if isinstance(a, dict):
        if len(a) != len(b):
            return False
        unhashable_a = [k for k in a if isinstance(k, Unhashable)]
        unhashable_b = [k for k in b if isinstance(k, Unhashable)]
        if len(unhashable_a) != len(unhashable_b):
            return False
        for ka, kb in zip(unhashable_a, unhashable_b):
            if not (same(ka, kb, memo) and same(a[ka], b[kb], memo)):
                return False
        plain = [k for k in a if not isinstance(k, Unhashable)]
        return all(k in b and same(a[k], b[k], memo) for k in plain)
    if isinstance(a, set):
        if len(a) != len(b):
            return False
        ua = [x for x in a if isinstance(x, Unhashable)]
        ub = [x for x in b if isinstance(x, Unhashable)]
        return (len(ua) == len(ub) and all(same(x, y, memo) for x, y in zip(ua, ub))
                and {x for x in a if not isinstance(x, Unhashable)} == {x for x in b if not isinstance(x, Unhashable)})
    return a == b
