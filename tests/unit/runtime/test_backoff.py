"""Backoff: exponential ceiling, capped, full jitter over [0, ceiling]."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bridge.runtime.backoff import Backoff

BACKOFF = Backoff(initial_s=0.2, max_s=30.0)


def test_ceiling_doubles_then_caps() -> None:
    assert [BACKOFF.ceiling(n) for n in (1, 2, 3, 4)] == [0.2, 0.4, 0.8, 1.6]
    assert BACKOFF.ceiling(9) == 30.0
    assert BACKOFF.ceiling(10_000) == 30.0  # no overflow on very long outages


def test_full_jitter_spans_zero_to_the_ceiling() -> None:
    assert BACKOFF.delay(3, lambda: 0.0) == 0.0
    assert BACKOFF.delay(3, lambda: 0.5) == 0.4


@given(st.integers(1, 200), st.floats(0, 1, exclude_max=True))
def test_delay_stays_within_bounds(attempt: int, draw: float) -> None:
    assert 0.0 <= BACKOFF.delay(attempt, lambda: draw) <= 30.0
