"""Leases (one per shard, KCL's model) and the pure decisions about them.

Every write of a lease increments its counter and is conditional on the counter it read, so a
lease row is a compare-and-set register. A lease is expired when its counter has not changed
for ``lease_duration_s`` as measured by *our* monotonic clock (no cross-host clock comparison).
SHARD_END leases are finished: never renewed, taken, stolen or counted for balance.

LeaseTableError             the lease table refused an operation (message says what to fix)
 └── LeaseTableUnavailable  throttled, 5xx or unreachable: transient, try again later
"""

from __future__ import annotations

import enum
import math
import random
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from bridge.load import IDLE, ShardLoad

TRIM_HORIZON = "TRIM_HORIZON"
LATEST = "LATEST"
SHARD_END = "SHARD_END"

# The lease table also holds backfill progress rows (bridge/backfill/progress.py); they are not
# shard leases and every reader of shard leases skips them.
BACKFILL_ROW_PREFIX = "backfill#"
SENTINELS = frozenset({TRIM_HORIZON, LATEST, SHARD_END})
"""Checkpoint sentinels; any other checkpoint is a sequence number: resume AFTER it."""


class LeaseTableError(Exception):
    """The lease table refused an operation; the message names the table and the fix."""


class LeaseTableUnavailable(LeaseTableError):  # noqa: N818 - names from the bridge interface
    """Throttling, a 5xx or a connection error: transient, try again later."""


class CheckpointError(ValueError):
    """A checkpoint would move backwards or past SHARD_END: a bug in the caller."""


@dataclass(frozen=True, slots=True)
class Lease:
    lease_key: str  # f"{stream_arn}#{shard_id}" (moto reuses shard ids across tables)
    table: str
    stream_arn: str
    shard_id: str
    parent_shard_ids: tuple[str, ...]
    owner: str | None
    counter: int  # every renew/take/checkpoint write is conditional on it, and increments it
    checkpoint: str  # sentinel or last acknowledged sequence number
    last_version: int  # version of the record at `checkpoint` (0 if none yet)
    gaps: tuple[str, ...] = ()  # recorded trimmed-data gaps, if the skip policy was used
    load: ShardLoad = IDLE  # the owner's last measure (bridge/load.py): steers balancing only
    released_by: str | None = None  # who gave it up on shutdown; cleared when it is taken

    @property
    def finished(self) -> bool:
        return self.checkpoint == SHARD_END

    @property
    def started(self) -> bool:
        """True once a record (or SHARD_END) was checkpointed, not just an initial position."""
        return self.checkpoint not in (TRIM_HORIZON, LATEST)


def lease_key(stream_arn: str, shard_id: str) -> str:
    return f"{stream_arn}#{shard_id}"


def new_lease(
    table: str,
    stream_arn: str,
    shard_id: str,
    parent_shard_ids: Sequence[str],
    checkpoint: str,
    owner: str | None = None,
) -> Lease:
    return Lease(
        lease_key=lease_key(stream_arn, shard_id),
        table=table,
        stream_arn=stream_arn,
        shard_id=shard_id,
        parent_shard_ids=tuple(parent_shard_ids),
        owner=owner,
        counter=0,
        checkpoint=checkpoint,
        last_version=0,
    )


# -- transitions: each returns the row to write conditionally on the old counter ------------


def renewed(lease: Lease) -> Lease:
    return replace(lease, counter=lease.counter + 1)


def taken(lease: Lease, worker_id: str) -> Lease:
    return replace(lease, owner=worker_id, released_by=None, counter=lease.counter + 1)


def released(lease: Lease) -> Lease:
    """Given up on shutdown; the row says by whom, so the others know that worker is leaving."""
    return replace(lease, owner=None, released_by=lease.owner, counter=lease.counter + 1)


def with_load(lease: Lease, load: ShardLoad) -> Lease:
    """The same write carrying the owner's latest measure of the shard (no counter change)."""
    return replace(lease, load=load)


def with_gap(lease: Lease, gap: str) -> Lease:
    return replace(lease, gaps=(*lease.gaps, gap), counter=lease.counter + 1)


def checkpointed(lease: Lease, checkpoint: str, last_version: int) -> Lease:
    """The lease advanced to ``checkpoint``; refuses to move backwards (a caller bug)."""
    if lease.finished:
        raise CheckpointError(f"{lease.lease_key}: already at SHARD_END")
    if checkpoint != SHARD_END:
        if not checkpoint.isdigit():
            raise CheckpointError(f"{lease.lease_key}: {checkpoint!r} is no sequence number")
        if lease.started and int(checkpoint) < int(lease.checkpoint):
            raise CheckpointError(
                f"{lease.lease_key}: checkpoint {checkpoint} is behind {lease.checkpoint}"
            )
    if last_version < lease.last_version:
        raise CheckpointError(
            f"{lease.lease_key}: version {last_version} is below {lease.last_version}"
        )
    return replace(
        lease, checkpoint=checkpoint, last_version=last_version, counter=lease.counter + 1
    )


# -- expiry by our own clock -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sighting:
    """A lease counter value and when (our monotonic clock) we first saw it."""

    counter: int
    since: float


def sightings(
    previous: Mapping[str, Sighting], leases: Iterable[Lease], now: float
) -> dict[str, Sighting]:
    """Remember each lease's counter; a changed counter restarts its clock."""
    seen: dict[str, Sighting] = {}
    for lease in leases:
        old = previous.get(lease.lease_key)
        if old is not None and old.counter == lease.counter:
            seen[lease.lease_key] = old
        else:
            seen[lease.lease_key] = Sighting(lease.counter, now)
    return seen


def expired(lease: Lease, sighting: Sighting | None, now: float, lease_duration_s: float) -> bool:
    """Owned, and its counter has not moved for lease_duration_s by our clock."""
    if lease.owner is None or sighting is None or sighting.counter != lease.counter:
        return False
    return now - sighting.since >= lease_duration_s


def expiry_due(
    leases: Iterable[Lease], seen: Mapping[str, Sighting], now: float, lease_duration_s: float
) -> float | None:
    """The earliest moment after ``now`` (our clock) at which an owned lease turns expired."""
    moments = [
        seen[lease.lease_key].since + lease_duration_s
        for lease in leases
        if lease.owner is not None and not lease.finished and lease.lease_key in seen
    ]
    return min((moment for moment in moments if moment > now), default=None)


# -- taking and stealing ---------------------------------------------------------------------


class TakeReason(enum.StrEnum):
    UNOWNED = "unowned"
    EXPIRED = "expired"
    STEAL = "steal"
    BALANCE = "balance"
    """A busy lease stolen to spread busy leases; counts are balanced already."""


@dataclass(frozen=True, slots=True)
class Take:
    lease: Lease
    reason: TakeReason


def fair_share(lease_count: int, worker_count: int) -> int:
    return math.ceil(lease_count / max(worker_count, 1))


def loads(
    leases: Iterable[Lease],
    seen: Mapping[str, Sighting],
    now: float,
    *,
    worker_id: str,
    held: frozenset[str],
    lease_duration_s: float,
) -> Counter[str]:
    """Live leases per known worker (owners of unexpired leases, plus ourselves).

    A worker that released a lease still unowned is leaving (it releases its leases one by one
    on shutdown, the rest follow at once): it is not counted, so the others' fair share covers
    its leases and they take the released ones without waiting for its last release.
    """
    leases = list(leases)
    leaving = {
        lease.released_by for lease in leases if lease.owner is None and lease.released_by
    } - {worker_id}
    counts: Counter[str] = Counter({worker_id: 0})
    for lease in leases:
        if lease.finished or lease.owner is None or lease.owner in leaving:
            continue
        if lease.owner == worker_id:
            if lease.lease_key in held:
                counts[worker_id] += 1
        elif not expired(lease, seen.get(lease.lease_key), now, lease_duration_s):
            counts[lease.owner] += 1
    return counts


def to_take(
    leases: Sequence[Lease],
    seen: Mapping[str, Sighting],
    now: float,
    *,
    worker_id: str,
    held: frozenset[str],
    lease_duration_s: float,
    max_leases_to_steal: int,
    rng: random.Random,
) -> list[Take]:
    """Leases this worker should take now: unowned/expired ones first, else steal gradually.

    Target is the fair share ceil(live leases / known workers). Below it, free leases are taken
    (busy ones first), else up to ``max_leases_to_steal`` are stolen from the most loaded worker,
    only when it is above the target, or exactly at it while we need more than one (otherwise 4
    leases over 3 workers would stay at 2/2/0 forever). Which of its leases: a busy one when
    that narrows the gap in busy leases between it and us by two, else an idle one.

    Busy leases are balanced too (``Lease.load.busy``, measured by the owners): a worker at or
    below the target steals one busy lease from the worker with the most, when that one holds
    at least two more than we do. Every steal lowers (sum of busy leases squared, sum of leases
    squared) in lexicographic order, so with a given set of workers and busy flags balancing
    ends after finitely many moves and no lease moves back and forth.
    """
    live = [lease for lease in leases if not lease.finished]
    counts = loads(
        live, seen, now, worker_id=worker_id, held=held, lease_duration_s=lease_duration_s
    )
    target = fair_share(len(live), len(counts))
    need = target - counts[worker_id]
    if need > 0:
        free = [
            lease
            for lease in live
            if lease.lease_key not in held
            and (
                lease.owner is None
                or expired(lease, seen.get(lease.lease_key), now, lease_duration_s)
            )
        ]
        if free:
            rng.shuffle(free)
            free.sort(key=lambda lease: not lease.load.busy)  # stable: busy first, else shuffled
            return [
                Take(lease, TakeReason.UNOWNED if lease.owner is None else TakeReason.EXPIRED)
                for lease in free[:need]
            ]
    if max_leases_to_steal <= 0:
        return []
    busy = _busy_counts(live, counts, worker_id, held)
    if need > 0:
        steals = _steals(live, counts, busy, need, worker_id, max_leases_to_steal, rng)
        if steals:
            return steals
    return _busy_steal(live, counts, busy, worker_id, rng)


def _busy_counts(
    live: Sequence[Lease], counts: Counter[str], worker_id: str, held: frozenset[str]
) -> Counter[str]:
    """Busy live leases per known worker (as :func:`loads` counts them)."""
    busy: Counter[str] = Counter(dict.fromkeys(counts, 0))
    for lease in live:
        owner = lease.owner
        if owner is None or owner not in counts or not lease.load.busy:
            continue
        if owner != worker_id or lease.lease_key in held:
            busy[owner] += 1
    return busy


def _steals(
    live: Sequence[Lease],
    counts: Counter[str],
    busy: Counter[str],
    need: int,
    worker_id: str,
    max_leases_to_steal: int,
    rng: random.Random,
) -> list[Take]:
    others = [(count, owner) for owner, count in counts.items() if owner != worker_id]
    if not others:
        return []
    most, victim = max(others)  # ties broken by name: deterministic, and any choice converges
    target = fair_share(len(live), len(counts))
    if most > target:
        count = min(need, most - target, max_leases_to_steal)
    elif most == target and need > 1:
        count = 1
    else:
        return []
    theirs = [lease for lease in live if lease.owner == victim]
    hot = [lease for lease in theirs if lease.load.busy]
    idle = [lease for lease in theirs if not lease.load.busy]
    gap = busy[victim] - busy[worker_id]
    # A busy lease when the busy gap is 2 or more (it narrows), or when it is 1 and the victim
    # has nothing else (it flips to -1, no wider); never one that would widen the gap.
    if hot and (gap >= 2 or (gap >= 1 and not idle)):
        pool, count = hot, min(count, max(1, gap // 2))  # each one narrows the gap by two
    elif idle:
        pool = idle
    else:
        return []
    return [Take(lease, TakeReason.STEAL) for lease in rng.sample(pool, min(count, len(pool)))]


def _busy_steal(
    live: Sequence[Lease],
    counts: Counter[str],
    busy: Counter[str],
    worker_id: str,
    rng: random.Random,
) -> list[Take]:
    """One busy lease from the worker holding the most, if it holds two more than we do."""
    if counts[worker_id] > fair_share(len(live), len(counts)):
        return []
    others = [(n, owner) for owner, n in busy.items() if owner != worker_id]
    if not others:
        return []
    most, victim = max(others)
    if most - busy[worker_id] < 2:
        return []
    hot = [lease for lease in live if lease.owner == victim and lease.load.busy]
    return [Take(rng.choice(hot), TakeReason.BALANCE)]
