"""The bridge fleet's load and its desired worker count, from the lease rows alone.

Each worker writes its shards' load into the rows it renews anyway (``bridge/load.py``), so any
worker, and ``dynabridge status``, sees the whole fleet in the Scan it already makes. The desired
count is a pure function of those rows and two targets (``scaling.*``)::

    busy    = shards their owner measured busy
    count   = ceil(busy / bridge_busy_shards_per_worker)    no worker reads too many busy shards
    if a shard's oldest unread record is older than bridge_max_unread_age_s and its live owner
    reads another busy shard too:
        count = max(count, busy)                            one busy shard per worker, the most
                                                            parallel reading there is
    count   = max(1, count)

Busy shards are open shards, so the count never exceeds the open shards (a worker beyond them
would hold no lease). A lagging shard alone on its worker does not raise the count: a shard is
read by one worker at a time, so more workers cannot read it faster (the reason says so).
"""

from __future__ import annotations

import enum
import math
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from bridge.leases import SHARD_END
from bridge.load import ShardLoad


class Limit(enum.StrEnum):
    """Which part of the rule set the desired count."""

    MINIMUM = "minimum"
    BUSY_SHARDS = "busy_shards"
    UNREAD_AGE = "unread_age"


@dataclass(frozen=True, slots=True)
class BridgeTargets:
    max_unread_age_s: float = 60.0
    busy_shards_per_worker: int = 4


@dataclass(frozen=True, slots=True)
class Desired:
    count: int
    limit: Limit
    reason: str


class LeaseRow(Protocol):
    """What the rule reads of a lease row (``bridge.leases.Lease`` satisfies it)."""

    @property
    def table(self) -> str: ...
    @property
    def shard_id(self) -> str: ...
    @property
    def owner(self) -> str | None: ...
    @property
    def checkpoint(self) -> str: ...
    @property
    def load(self) -> ShardLoad: ...


@dataclass(frozen=True, slots=True)
class ShardSignal:
    """One unfinished shard as its lease row describes it."""

    table: str
    shard_id: str
    owner: str | None
    busy: bool
    read_per_s: float
    unread_age_s: float | None


@dataclass(frozen=True, slots=True)
class TableLoad:
    table: str
    open_shards: int
    busy_shards: int
    read_per_s: float
    oldest_unread_age_s: float | None


@dataclass(frozen=True, slots=True)
class Fleet:
    tables: tuple[TableLoad, ...]
    leases_per_worker: dict[str, int]
    """Unfinished leases per owner, live or not."""
    busy_per_worker: dict[str, int]
    workers: int
    """Live workers (the caller's judgement: unexpired leases, or moving lease counters)."""
    desired: Desired


def signals(leases: Iterable[LeaseRow], now_s: float) -> list[ShardSignal]:
    """The unfinished shards' signals; finished (SHARD_END) shards need no worker."""
    return [
        ShardSignal(
            lease.table,
            lease.shard_id,
            lease.owner,
            lease.load.busy,
            lease.load.read_per_s,
            lease.load.unread_age_s(now_s),
        )
        for lease in leases
        if lease.checkpoint != SHARD_END
    ]


def desired_workers(
    shards: Sequence[ShardSignal], live: Collection[str], targets: BridgeTargets
) -> Desired:
    """How many bridge workers the fleet needs now, and why (the rule in the module docstring)."""
    if not shards:
        return Desired(1, Limit.MINIMUM, "no open shard: one worker keeps watching the streams")
    busy_held = Counter(s.owner for s in shards if s.busy and s.owner is not None)
    busy = sum(1 for s in shards if s.busy)
    per_worker = targets.busy_shards_per_worker
    count = math.ceil(busy / per_worker)
    limit, reason = (
        Limit.BUSY_SHARDS,
        (
            f"{busy} busy shard(s), at most {per_worker} per worker "
            f"(scaling.bridge_busy_shards_per_worker)"
        ),
    )
    lagging = sorted(
        (s for s in shards if (s.unread_age_s or 0.0) > targets.max_unread_age_s),
        key=lambda s: -(s.unread_age_s or 0.0),
    )
    crowded = [
        s for s in lagging if s.owner is not None and s.owner in live and busy_held[s.owner] > 1
    ]
    if crowded and busy > count:
        worst = crowded[0]
        count, limit = busy, Limit.UNREAD_AGE
        reason = (
            f"{_where(worst)} is {worst.unread_age_s:.0f} s behind (target "
            f"{targets.max_unread_age_s:.0f} s, scaling.bridge_max_unread_age_s) on worker "
            f"{worst.owner}, which reads {busy_held[worst.owner or '']} busy shards: one worker "
            f"per busy shard ({busy})"
        )
    elif lagging and not crowded:
        worst = lagging[0]
        reason += (
            f"; {_where(worst)} is {worst.unread_age_s:.0f} s behind but shares its worker "
            "with no other busy shard: more workers cannot read it faster"
        )
    if count < 1:
        count, limit = 1, Limit.MINIMUM
        reason += "; at least one worker"
    return Desired(count, limit, reason)


def fleet(
    leases: Iterable[LeaseRow], live: Collection[str], now_s: float, targets: BridgeTargets
) -> Fleet:
    """Per table and per worker load, and the desired count, as of ``now_s`` (wall clock)."""
    shards = signals(leases, now_s)
    tables: dict[str, list[ShardSignal]] = {}
    for shard in shards:
        tables.setdefault(shard.table, []).append(shard)
    return Fleet(
        tables=tuple(_table_load(table, rows) for table, rows in sorted(tables.items())),
        leases_per_worker=dict(Counter(s.owner for s in shards if s.owner is not None)),
        busy_per_worker=dict(Counter(s.owner for s in shards if s.owner is not None and s.busy)),
        workers=len(live),
        desired=desired_workers(shards, live, targets),
    )


def _table_load(table: str, shards: Sequence[ShardSignal]) -> TableLoad:
    ages = [s.unread_age_s for s in shards if s.unread_age_s is not None]
    return TableLoad(
        table=table,
        open_shards=len(shards),
        busy_shards=sum(1 for s in shards if s.busy),
        read_per_s=sum(s.read_per_s for s in shards),
        oldest_unread_age_s=max(ages, default=None),
    )


def _where(shard: ShardSignal) -> str:
    return f"{shard.table} shard {shard.shard_id}"
