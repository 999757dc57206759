"""``status``'s answer to "do we need more workers?": each process's desired count and why.

The same rules the processes export (``bridge/scaling.py``, ``consumers/indexer/scaling.py``),
applied to what ``status`` reads itself: every lease row (the whole bridge fleet), the age of
each shard's oldest unread record read from the stream, and the group's offsets read twice,
``--interval`` apart (rates need two reads: with ``--interval 0`` none is known and the
configured per-consumer rate stands in for the observed one).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from bridge.scaling import BridgeTargets, ShardSignal, desired_workers
from consumers.indexer.scaling import IndexerTargets, PartitionLoad, demand, desired_consumers


@dataclass(frozen=True, slots=True)
class BridgeScaling:
    workers_alive: int
    desired: int
    limit: str
    reason: str
    open_shards: int
    busy_shards: int
    read_per_s: float
    oldest_unread_age_s: float | None
    leases_per_worker: dict[str, int]
    busy_per_worker: dict[str, int]


@dataclass(frozen=True, slots=True)
class PartitionRates:
    lag_records: int
    produced_per_s: float | None
    consumed_per_s: float | None


@dataclass(frozen=True, slots=True)
class IndexerScaling:
    members: int
    desired: int
    limit: str
    reason: str
    partitions: int
    lag_records: int
    produced_per_s: float | None
    consumed_per_s: float | None
    capacity_per_s: float
    demand: float


def bridge_scaling(
    shards: Sequence[ShardSignal], live: Collection[str], targets: BridgeTargets
) -> BridgeScaling:
    desired = desired_workers(shards, live, targets)
    ages = [s.unread_age_s for s in shards if s.unread_age_s is not None]
    return BridgeScaling(
        workers_alive=len(live),
        desired=desired.count,
        limit=desired.limit.value,
        reason=desired.reason,
        open_shards=len(shards),
        busy_shards=sum(1 for s in shards if s.busy),
        read_per_s=sum(s.read_per_s for s in shards),
        oldest_unread_age_s=max(ages, default=None),
        leases_per_worker=dict(Counter(s.owner for s in shards if s.owner is not None)),
        busy_per_worker=dict(Counter(s.owner for s in shards if s.owner and s.busy)),
    )


def indexer_scaling(
    partitions: Sequence[PartitionRates], members: int, targets: IndexerTargets
) -> IndexerScaling:
    """Without rates (one read), nothing arriving is assumed and the configured rate is used."""
    known = all(p.consumed_per_s is not None for p in partitions)
    consumed = sum(p.consumed_per_s or 0.0 for p in partitions) if known else None
    produced = sum(p.produced_per_s or 0.0 for p in partitions) if known else None
    loads = [PartitionLoad(p.lag_records, p.produced_per_s or 0.0) for p in partitions]
    need = demand(loads, consumed_per_s=consumed or 0.0, consumers=members, targets=targets)
    desired = desired_consumers(need, targets)
    reason = desired.reason if known else f"{desired.reason} (no rates: --interval 0)"
    return IndexerScaling(
        members=members,
        desired=desired.count,
        limit=desired.limit.value,
        reason=reason,
        partitions=len(partitions),
        lag_records=need.lag_records,
        produced_per_s=produced,
        consumed_per_s=consumed,
        capacity_per_s=need.capacity_per_s,
        demand=need.consumers,
    )
