"""A shard's load as its owner measures it: smoothed rate, busy with hysteresis, unread bound."""

from __future__ import annotations

import math

import pytest

from bridge.load import IDLE, WINDOW_S, LoadMeter, ShardLoad, after_read, smoothed


def test_the_rate_converges_to_a_steady_rate() -> None:
    load = IDLE
    for _ in range(200):  # 600 s of 50 records/s, folded every 3 s
        load = smoothed(load, 150, 3.0, busy_per_s=1.0)
    assert load.read_per_s == pytest.approx(50.0, rel=1e-3)
    assert load.busy


def test_smoothing_follows_the_exponential_window() -> None:
    # One fold of a full window from 0 at 100/s reaches 1 - 1/e of it.
    load = smoothed(IDLE, 100 * int(WINDOW_S), WINDOW_S, busy_per_s=1000.0)
    assert load.read_per_s == pytest.approx(100 * (1 - math.exp(-1)))
    # Folding in two halves gives the same as one fold: the weight depends on time only.
    half = smoothed(IDLE, 50 * int(WINDOW_S), WINDOW_S / 2, busy_per_s=1000.0)
    half = smoothed(half, 50 * int(WINDOW_S), WINDOW_S / 2, busy_per_s=1000.0)
    assert half.read_per_s == pytest.approx(load.read_per_s)


def test_busy_has_hysteresis() -> None:
    at = ShardLoad(read_per_s=0.0)
    assert smoothed(ShardLoad(read_per_s=0.99), 0, 1e-9, busy_per_s=1.0).busy is False
    busy = smoothed(ShardLoad(read_per_s=1.0), 1, 1.0, busy_per_s=1.0)
    assert busy.busy
    # Falling below the threshold but above half of it: still busy.
    wobbling = smoothed(ShardLoad(read_per_s=0.6, busy=True), 0, 1e-9, busy_per_s=1.0)
    assert wobbling.busy
    # Below half: idle; and an idle shard at 0.6 stays idle.
    assert not smoothed(ShardLoad(read_per_s=0.49, busy=True), 0, 1e-9, busy_per_s=1.0).busy
    assert not smoothed(ShardLoad(read_per_s=0.6), 0, 1e-9, busy_per_s=1.0).busy
    assert smoothed(at, 0, 0.0, busy_per_s=1.0) is at  # no time passed: nothing changes


def test_a_busy_shard_that_stops_stays_busy_for_minutes_not_seconds() -> None:
    load = ShardLoad(read_per_s=100.0, busy=True)
    seconds = 0
    while load.busy:
        load = smoothed(load, 0, 3.0, busy_per_s=1.0)
        seconds += 3
    # 100/s decays below 0.5/s after WINDOW_S * ln(200) ~ 5.3 windows.
    assert seconds == pytest.approx(WINDOW_S * math.log(200), abs=3)


def test_unread_bound_follows_pages() -> None:
    load = after_read(IDLE, 1_000_000, caught_up=False)
    assert load.unread_since_ms == 1_000_000
    assert load.unread_age_s(1_060.0) == pytest.approx(60.0)
    assert after_read(load, None, caught_up=False) == load  # throttled: nothing learnt
    assert after_read(load, 1_002_000, caught_up=False).unread_since_ms == 1_002_000
    done = after_read(load, None, caught_up=True)
    assert done.unread_since_ms is None
    assert done.unread_age_s(2_000.0) is None
    assert ShardLoad(unread_since_ms=5_000).unread_age_s(1.0) == 0.0  # clock skew: never < 0


def test_meter_counts_pages_and_folds_them_at_each_snapshot() -> None:
    meter = LoadMeter(busy_per_s=1.0)
    meter.observe(30, 5_000, caught_up=False)  # counted before the meter knows the row
    meter.observe(0, None, caught_up=True)
    seed = ShardLoad(read_per_s=10.0, unread_since_ms=1_000, busy=True)
    first = meter.snapshot(103.0, seed, since=100.0)
    assert first.unread_since_ms is None  # the last page found nothing waiting
    assert first.read_per_s == pytest.approx(10.0)  # 30 records in 3 s: the rate held
    assert first.busy
    other = ShardLoad(read_per_s=99.0)
    second = meter.snapshot(106.0, other, since=0.0)  # seeded once: a later seed is ignored
    assert second.read_per_s < first.read_per_s  # nothing read since: the rate decays
    meter.observe(10, None, caught_up=False)  # throttled: the unread bound stays
    assert meter.snapshot(107.0, other, since=0.0).unread_since_ms is None
