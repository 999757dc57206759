"""The indexer group's demand for consumers and its desired count, from lag and rates alone.

One rule (``scaling.*``), applied by ``dynabridge status`` to every partition of the group and by
each member to its own partitions::

    capacity = max(observed records/s per consumer, indexer_records_per_s_per_consumer)
    need     = sum over partitions of
               min(1, (records/s arriving + lag records / indexer_drain_s) / capacity)
    count    = max(1, ceil(need))

A partition is read by one consumer at a time, so it never needs more than one: the count never
exceeds the partitions, and the needs add up over partitions, so the members' own needs add up
to the group's. Each member exports its share (``dynabridge_indexer_demand_consumers``); the
sum, rounded up, is the group's desired count. The configured rate is a floor on
the observed one: a member that is not saturated consumes only what arrives, which says nothing
about what it could do, and without the floor the count could never come down.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass


class Limit(enum.StrEnum):
    MINIMUM = "minimum"
    DRAIN = "drain"
    PARTITIONS = "partitions"


@dataclass(frozen=True, slots=True)
class IndexerTargets:
    drain_s: float = 60.0
    records_per_s_per_consumer: float = 1000.0


@dataclass(frozen=True, slots=True)
class PartitionLoad:
    lag_records: int
    produced_per_s: float
    """Records appended to the partition per second (its end offset's growth)."""


@dataclass(frozen=True, slots=True)
class Demand:
    consumers: float
    """Consumers needed, unrounded: at most one per partition, additive over partitions."""
    capacity_per_s: float
    """Records/s one consumer is taken to do (the observed rate, or the configured floor)."""
    lag_records: int
    produced_per_s: float
    partitions: int
    capped: int = 0
    """Partitions with more than one consumer's work: each still gets one consumer only."""


@dataclass(frozen=True, slots=True)
class Desired:
    count: int
    limit: Limit
    reason: str


def demand(
    partitions: Sequence[PartitionLoad],
    *,
    consumed_per_s: float,
    consumers: int,
    targets: IndexerTargets,
) -> Demand:
    """What ``partitions`` need, given the rate ``consumers`` together were seen consuming."""
    observed = consumed_per_s / consumers if consumers > 0 else 0.0
    capacity = max(observed, targets.records_per_s_per_consumer)
    work = [(p.produced_per_s + p.lag_records / targets.drain_s) / capacity for p in partitions]
    lag = sum(p.lag_records for p in partitions)
    produced = sum(p.produced_per_s for p in partitions)
    need = sum(min(1.0, each) for each in work)
    capped = sum(1 for each in work if each > 1.0)
    return Demand(need, capacity, lag, produced, len(partitions), capped)


def desired_consumers(need: Demand, targets: IndexerTargets) -> Desired:
    """The group's consumer count for the group's ``need``, and why."""
    partitions = need.partitions
    count = math.ceil(need.consumers - 1e-9)
    reason = (
        f"lag {need.lag_records} record(s) drained within {targets.drain_s:.0f} s "
        f"(scaling.indexer_drain_s) with {need.produced_per_s:.0f} record(s)/s arriving, at "
        f"{need.capacity_per_s:.0f} record(s)/s per consumer: {need.consumers:.2f} consumer(s)"
    )
    if need.capped:
        reason += (
            f"; {need.capped} partition(s) hold more than one consumer's work, but a partition "
            "is read by one consumer at a time"
        )
        if count >= partitions:
            return Desired(partitions, Limit.PARTITIONS, f"{reason}: one per partition")
    if count < 1:
        return Desired(1, Limit.MINIMUM, f"{reason}; at least one consumer")
    return Desired(count, Limit.DRAIN, reason)
