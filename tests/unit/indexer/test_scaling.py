"""The indexer's consumer demand and desired count: a pure function of lag, rates and targets."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from consumers.indexer.scaling import (
    IndexerTargets,
    Limit,
    PartitionLoad,
    demand,
    desired_consumers,
)

TARGETS = IndexerTargets(drain_s=60.0, records_per_s_per_consumer=1000.0)


def test_no_lag_and_nothing_arriving_needs_one_consumer() -> None:
    need = demand([PartitionLoad(0, 0.0)] * 6, consumed_per_s=0.0, consumers=3, targets=TARGETS)
    assert need.consumers == 0.0
    desired = desired_consumers(need, TARGETS)
    assert (desired.count, desired.limit) == (1, Limit.MINIMUM)


def test_lag_is_drained_within_the_target_at_the_observed_rate() -> None:
    # 2 consumers seen doing 4,000 records/s together: 2,000 each. 600,000 records of lag in
    # 60 s is 10,000/s, plus 2,000/s arriving: 12,000 / 2,000 = 6 consumers.
    parts = [PartitionLoad(100_000, 2000.0 / 6)] * 6 + [PartitionLoad(0, 0.0)] * 6
    need = demand(parts, consumed_per_s=4000.0, consumers=2, targets=TARGETS)
    assert need.capacity_per_s == 2000.0
    assert need.consumers == pytest.approx(6.0)
    desired = desired_consumers(need, TARGETS)
    assert (desired.count, desired.limit) == (6, Limit.DRAIN)
    assert "lag 600000 record(s) drained within 60 s" in desired.reason


def test_the_configured_rate_is_a_floor_under_an_unsaturated_observation() -> None:
    # Consumers that keep up consume only what arrives (300/s each): the floor lets the count
    # come down to what the arriving rate needs.
    need = demand(
        [PartitionLoad(10, 150.0)] * 6, consumed_per_s=900.0, consumers=3, targets=TARGETS
    )
    assert need.capacity_per_s == 1000.0
    assert desired_consumers(need, TARGETS).count == 1


def test_never_more_consumers_than_partitions() -> None:
    need = demand(
        [PartitionLoad(10**7, 5000.0)] * 3, consumed_per_s=0, consumers=0, targets=TARGETS
    )
    assert need.consumers == 3.0
    desired = desired_consumers(need, TARGETS)
    assert (desired.count, desired.limit) == (3, Limit.PARTITIONS)
    assert "3 partition(s) hold more than one consumer's work" in desired.reason
    assert desired.reason.endswith("one per partition")


def test_members_demands_add_up_to_the_groups() -> None:
    a = [PartitionLoad(30_000, 100.0), PartitionLoad(6_000, 50.0)]
    b = [PartitionLoad(60_000, 400.0)]  # 1,400/s of work: one partition still needs only one
    whole = demand(a + b, consumed_per_s=2000.0, consumers=2, targets=TARGETS)
    share_a = demand(a, consumed_per_s=1000.0, consumers=1, targets=TARGETS)
    share_b = demand(b, consumed_per_s=1000.0, consumers=1, targets=TARGETS)
    assert share_b.consumers == 1.0
    assert whole.consumers == pytest.approx(0.6 + 0.15 + 1.0)
    assert share_a.consumers + share_b.consumers == pytest.approx(whole.consumers)


@settings(max_examples=200, deadline=None)
@given(
    parts=st.lists(st.tuples(st.integers(0, 10**7), st.floats(0, 10**5)), min_size=0, max_size=24),
    consumed=st.floats(0, 10**6),
    consumers=st.integers(0, 30),
)
def test_the_count_is_between_one_and_the_partitions(
    parts: list[tuple[int, float]], consumed: float, consumers: int
) -> None:
    loads = [PartitionLoad(lag, produced) for lag, produced in parts]
    need = demand(loads, consumed_per_s=consumed, consumers=consumers, targets=TARGETS)
    desired = desired_consumers(need, TARGETS)
    assert 1 <= desired.count <= max(1, len(loads))
    if desired.limit is Limit.DRAIN:
        assert desired.count == math.ceil(need.consumers - 1e-9)
