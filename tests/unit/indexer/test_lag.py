"""Lag per partition in records and seconds, and the partitions' rates, from what the loop saw."""

from __future__ import annotations

import pytest

from consumers.indexer.lag import WINDOW_S, LagMeter, PartitionLag, rate
from consumers.indexer.records import Partition

P0 = Partition("ddb.t", 0)
P1 = Partition("ddb.t", 1)


def test_caught_up_is_zero_seconds_whatever_the_timestamps() -> None:
    meter = LagMeter()
    meter.received(P0, 0, 1_000)
    meter.settled(P0, 1_000)
    lags = meter.sample({P0: 1}, {P0: 1}, now=10.0, now_ms=900_000)
    assert lags == {P0: PartitionLag(0, 0.0, 0.0, 0.0)}


def test_the_oldest_unsettled_record_dates_the_lag() -> None:
    meter = LagMeter()
    for offset, ts in enumerate((10_000, 20_000, 30_000)):
        meter.received(P0, offset, ts)
    meter.settled(P0, 10_000)  # offset 0 settled; 1 and 2 wait
    lag = meter.sample({P0: 1}, {P0: 5}, now=1.0, now_ms=50_000)[P0]
    assert (lag.lag_records, lag.lag_s) == (4, 30.0)  # 50 s - 20 s


def test_before_the_oldest_record_arrives_the_newest_settled_one_bounds_it() -> None:
    meter = LagMeter()
    meter.received(P0, 0, 10_000)
    meter.settled(P0, 10_000)
    lag = meter.sample({P0: 1}, {P0: 100}, now=1.0, now_ms=70_000)[P0]
    assert lag.lag_s == 60.0
    # Nothing seen at all: nothing to date it by.
    assert meter.sample({P1: 0}, {P1: 3}, now=1.0, now_ms=70_000)[P1].lag_s is None


def test_settled_out_of_order_keeps_the_newest_timestamp() -> None:
    meter = LagMeter()
    meter.settled(P0, 5)  # untracked partition: ignored
    meter.received(P0, 0, 2_000)
    meter.settled(P0, 3_000)
    meter.settled(P0, 2_000)
    lag = meter.sample({P0: 1}, {P0: 2}, now=1.0, now_ms=10_000)[P0]
    assert lag.lag_s == 7.0


def test_rates_follow_the_offsets_growth() -> None:
    meter = LagMeter()
    meter.received(P0, 0, 0)
    now = 0.0
    for step in range(600):  # 10 minutes: 200 records/s arrive, 150/s are consumed
        lag = meter.sample({P0: 150 * step}, {P0: 200 * step}, now=now, now_ms=0)[P0]
        now += 1.0
    assert lag.produced_per_s == pytest.approx(200.0, rel=1e-3)
    assert lag.consumed_per_s == pytest.approx(150.0, rel=1e-3)
    assert lag.lag_records == 50 * 599


def test_rate_smoothing_is_time_weighted_and_never_negative() -> None:
    assert rate(0.0, 100 * int(WINDOW_S), WINDOW_S) == pytest.approx(100 * (1 - 1 / 2.718281828))
    assert rate(10.0, 5, 0.0) == 10.0
    assert rate(10.0, -50, 1.0) < 10.0  # a reset offset (replay) reads as nothing, not < 0
    assert rate(10.0, -50, 1.0) >= 0.0


def test_unknown_positions_are_skipped_and_forgotten_partitions_start_over() -> None:
    meter = LagMeter()
    meter.received(P0, 0, 1_000)
    assert meter.sample({P0: None}, {P0: 5}, now=1.0, now_ms=2_000) == {}
    assert meter.sample({P0: 0}, {P0: None}, now=1.0, now_ms=2_000) == {}
    meter.forget([P0])
    assert meter.sample({P0: 0}, {P0: 5}, now=2.0, now_ms=9_000)[P0].lag_s is None
