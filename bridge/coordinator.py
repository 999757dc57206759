"""The bridge's coordination layer: shard sync, lease renew/take/steal, checkpoints, release.

A lease this worker lost (refused write, seen owned by another, or unrenewed for
``lease_duration_s`` by our clock) is dropped at once and never checkpointed again. One lock
serialises every read and write of the lease state, so the lease keeper's renewals and the
worker's checkpoints never race each other for the same counter; no loop here. New leases are
created parents first, and a sync round stops at the first lease-table failure; a shard missing
from a listing counts as gone only once the service said so. The children of a shard that
reached SHARD_END are looked up at once and again shortly after, until they are listed.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from bridge import checkpoints, lineage
from bridge import leases as lm
from bridge.leases import (
    SHARD_END,
    TRIM_HORIZON,
    Lease,
    LeaseTableUnavailable,
    Sighting,
)
from bridge.load import LoadMeter, ShardLoad
from bridge.runtime.settings import BridgeSettings, ConfigError, StartPosition, TrimmedPolicy
from bridge.shards import Shard, StreamInfo, StreamUnavailable, check_view_type

log = logging.getLogger(__name__)


class LeaseStore(Protocol):
    def ensure_table(self) -> None:
        """Create the lease table if missing and wait until it is ACTIVE."""

    def leases(self) -> list[Lease]:
        """Every lease in the table (strongly consistent)."""

    def create(self, lease: Lease) -> bool:
        """Write a new lease; False if one with its key exists."""

    def replace(self, old: Lease, new: Lease) -> bool:
        """Write ``new`` if the row still has ``old``'s counter and owner; else False."""

    def delete(self, lease: Lease) -> bool:
        """Delete a lease if its row still has the lease's counter; else False."""


class ShardDiscovery(Protocol):
    def describe_table(self, table: str) -> StreamInfo: ...

    def shards(self, stream_arn: str) -> list[Shard]:
        """Every shard of the stream (all DescribeStream pages)."""

    def child_shards(self, stream_arn: str, parent_shard_id: str) -> list[Shard]:
        """The children of a closed shard (possibly none yet)."""

    def shard_gone(self, stream_arn: str, shard_id: str) -> bool:
        """True if the service says the shard no longer exists (trimmed); False if it exists."""


def timing_problem(settings: BridgeSettings) -> str | None:
    """Why the lease timings cannot work, or None."""
    if settings.lease_renew_interval_s * 2 > settings.lease_duration_s:
        return (
            f"bridge.lease_renew_interval_s ({settings.lease_renew_interval_s}) must be at most "
            f"half of bridge.lease_duration_s ({settings.lease_duration_s}), or healthy "
            "workers' leases look expired to others; KCL uses a third"
        )
    return None


CHILD_LOOKUP_DELAYS_S = (0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0)
"""Pauses between the lookups of a finished shard's children that DescribeStream does not list
yet (it is eventually consistent); after the last one the next shard sync finds them."""


@dataclass(frozen=True, slots=True)
class ChildLookup:
    """A finished shard whose children were not found yet: the next lookup and its number."""

    attempt: int
    due_at: float


class LeaseCoordinator:
    def __init__(
        self,
        store: LeaseStore,
        discovery: ShardDiscovery,
        *,
        worker_id: str,
        tables: Sequence[str],
        settings: BridgeSettings,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        on_gap: Callable[[str], None] = lambda table: None,
    ) -> None:
        if problem := timing_problem(settings):
            raise ConfigError(problem)
        if not tables:
            raise ConfigError("bridge.tables is empty: list at least one DynamoDB table")
        self._store = store
        self._discovery = discovery
        self._worker_id = worker_id
        self._tables = list(tables)
        self._settings = settings
        self._clock = clock
        self._rng = rng or random.Random()
        self._on_gap = on_gap  # counts a gap of a table (the trimmed-gaps metric)
        self._streams: dict[str, StreamInfo] = {}  # by stream ARN
        self._leases: dict[str, Lease] = {}  # every lease of our streams, by key
        self._present: dict[str, frozenset[str]] = {}  # stream ARN -> shard ids last listed
        self._gone: dict[str, frozenset[str]] = {}  # stream ARN -> shards the service says are gone
        self._child_lookups: dict[str, ChildLookup] = {}  # by the finished parent's lease key
        self._shards: dict[str, Shard] = {}  # listed shards by lease key: their sequence ranges
        self._others: list[Lease] = []  # rows of older streams of our tables
        self._held: dict[str, float] = {}  # lease key -> our clock at the last accepted write
        self._seen: dict[str, Sighting] = {}
        self._lost: set[str] = set()
        # Lease key -> its shard's load, folded into every write of the row (bridge/load.py).
        # A lock of its own: the loop counts pages without waiting for lease-table calls.
        self._meters: dict[str, LoadMeter] = {}
        self._meters_lock = threading.Lock()
        self._live: frozenset[str] = frozenset({worker_id})  # as of the last Scan
        self._next_sync = self._next_renew = self._next_take = 0.0
        self._last_steal = -math.inf  # our clock at the last steal: one steal round per interval
        # Held across lease-table calls (a Scan must not interleave with our own writes, or it
        # would show an older counter of a lease we hold), never across DescribeStream.
        self._lock = threading.Lock()
        self._closed = False  # release_all() ran: nothing may be renewed or taken again
        self._draining = False  # drain() ran: renew, but take nothing more

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> list[StreamInfo]:
        infos = []
        for table in self._tables:
            info = self._discovery.describe_table(table)
            check_view_type(info, require_images=self._settings.require_images)
            infos.append(info)
        self._streams = {info.stream_arn: info for info in infos}
        self._store.ensure_table()
        listings = self._listings()
        with self._lock:
            self._refresh(self._clock())
        self._probe(listings)
        with self._lock:
            now = self._clock()
            self._sync(listings, now)
            self._check_checkpoints()
            self._next_sync = now + self._settings.shard_sync_interval_s
            self._next_renew = now + self._settings.lease_renew_interval_s
            self._next_take = now
        return infos

    def tick(self) -> None:
        """Renew, look for children, sync shards and take leases as far as the clock says."""
        with self._lock:
            if self._closed:
                return
            now = self._clock()
            renewals: list[str] = []
            if now >= self._next_renew:
                renewals = sorted(self._held)
                self._next_renew = now + self._settings.lease_renew_interval_s
        self._renew(renewals)
        with self._lock:
            if self._closed:
                return
            now = self._clock()
            lookups = [key for key, due in self._child_lookups.items() if due.due_at <= now]
            sync_due, take_due = now >= self._next_sync, now >= self._next_take
            if sync_due or take_due:
                try:
                    self._refresh(now)
                except LeaseTableUnavailable as exc:
                    log.warning("lease table unavailable, retrying next take interval: %s", exc)
                    # Both rounds wait: otherwise the keeper would Scan again at once, in a loop.
                    retry_at = now + self._settings.lease_take_interval_s
                    self._next_take = retry_at
                    if sync_due:
                        self._next_sync = retry_at
                    sync_due = take_due = False
        for key in lookups:
            self._look_for_children(key)
        if not (sync_due or take_due):
            return
        listings = self._listings() if sync_due else {}
        self._probe(listings)
        with self._lock:
            if self._closed:
                return
            now = self._clock()
            if sync_due:
                self._sync(listings, now)
                self._next_sync = now + self._settings.shard_sync_interval_s
            if take_due:
                if not self._draining:
                    self._take(now)
                self._next_take = self._next_take_at(now)
            self._check_checkpoints()

    def due_at(self) -> float:
        """When (our clock) :meth:`tick` has something to do next; never after release_all()."""
        with self._lock:
            if self._closed:
                return math.inf
            lookups = [lookup.due_at for lookup in self._child_lookups.values()]
            return min(self._next_renew, self._next_sync, self._next_take, *lookups)

    def drain(self) -> None:
        """Stopping: keep renewing what we hold until release_all(), but take nothing more (a
        lease taken now would only be released again moments later). Never waits for a
        lease-table call: a take round already running finishes, the next one takes nothing."""
        self._draining = True

    def release_all(self) -> None:
        """Give every held lease up; afterwards :meth:`tick` renews and takes nothing."""
        with self._lock:
            self._closed = True
            for key in sorted(self._held):
                lease = self._leases[key]
                try:
                    if self._store.replace(lease, lm.released(lease)):
                        self._leases[key] = lm.released(lease)
                        log.info("released lease %s", key)
                except LeaseTableUnavailable as exc:
                    log.warning("could not release lease %s (it will expire instead): %s", key, exc)
            self._held.clear()
            self._forget_load()

    # -- queries ------------------------------------------------------------------------

    def readable(self) -> list[Lease]:
        with self._lock:
            now = self._clock()
            fresh = [
                self._leases[key]
                for key, written_at in self._held.items()
                if now - written_at < self._settings.lease_duration_s
            ]
            return [
                lease
                for lease in lineage.readable(fresh, self._leases, self._present, self._gone)
                if checkpoints.out_of_range(lease, self._shards.get(lease.lease_key)) is None
            ]

    def lost(self) -> set[str]:
        with self._lock:
            lost, self._lost = self._lost, set()
            return lost

    def leases(self) -> list[Lease]:
        with self._lock:
            rows = list(self._leases.values())
        return sorted(rows, key=lambda lease: (lease.table, lease.shard_id))

    def workers(self) -> set[str]:
        """Workers alive by our clock as of the last Scan: owners of unexpired live leases, and
        ourselves. Never waits for a lease-table call."""
        return set(self._live)

    # -- the shards' load, carried by every write of their rows -------------------------

    def observe(
        self, lease_key: str, records: int, last_creation_ms: int | None, caught_up: bool
    ) -> None:
        """One page read from a held shard: counted into the load its next write carries."""
        with self._meters_lock:
            meter = self._meters.get(lease_key)
            if meter is None:
                meter = self._meters[lease_key] = LoadMeter(
                    busy_per_s=self._settings.busy_records_per_s
                )
            meter.observe(records, last_creation_ms, caught_up)

    def _load_now(self, lease_key: str, now: float) -> ShardLoad:
        """The load a write of a held lease carries. Seeded from the row: a new owner goes on
        from the old one's measure, so a busy shard does not look idle right after it moved."""
        with self._meters_lock:
            meter = self._meters.get(lease_key)
            if meter is None:
                meter = self._meters[lease_key] = LoadMeter(
                    busy_per_s=self._settings.busy_records_per_s
                )
            since = self._held.get(lease_key, now)  # measuring since it became ours
            return meter.snapshot(now, self._leases[lease_key].load, since)

    def _forget_load(self, keep: frozenset[str] | None = None) -> None:
        """Drop the meters of leases no longer held (all without ``keep``)."""
        with self._meters_lock:
            for key in [k for k in self._meters if keep is None or k not in keep]:
                del self._meters[key]

    # -- writes on behalf of the reader -------------------------------------------------

    def checkpoint(self, lease_key: str, sequence_number: str, last_version: int) -> bool:
        with self._lock:
            return self._advance(lease_key, sequence_number, last_version)

    def shard_end(self, lease_key: str, last_version: int) -> bool:
        """Write SHARD_END, then lease the shard's children to ourselves (looked up at once)."""
        with self._lock:
            if not self._advance(lease_key, SHARD_END, last_version):
                return False
            self._held.pop(lease_key, None)  # finished: nothing left to renew or read
            # Looked up here, at once; the keeper's first retry is due after the first pause.
            retry_at = self._clock() + CHILD_LOOKUP_DELAYS_S[0]
            self._child_lookups[lease_key] = ChildLookup(0, retry_at)
        self._look_for_children(lease_key)
        return True

    def record_gap(self, lease_key: str, gap: str) -> bool:
        with self._lock:
            if lease_key not in self._held:
                return False
            return self._write_held(lease_key, lm.with_gap(self._leases[lease_key], gap))

    # -- internals ----------------------------------------------------------------------

    def _advance(self, lease_key: str, checkpoint: str, last_version: int) -> bool:
        if lease_key not in self._held:
            return False
        lease = self._leases[lease_key]
        return self._write_held(lease_key, lm.checkpointed(lease, checkpoint, last_version))

    def _write_held(self, lease_key: str, new: Lease) -> bool:
        """Conditional write of a held lease; a refusal means it was lost."""
        # Freshness counts from the moment the write was sent, not answered: another worker
        # may have started its expiry clock on this counter while the response was slow.
        sent_at = self._clock()
        new = lm.with_load(new, self._load_now(lease_key, sent_at))
        if not self._store.replace(self._leases[lease_key], new):
            self._lose(lease_key, "conditional write refused")
            return False
        self._leases[lease_key] = new
        self._held[lease_key] = sent_at
        return True

    def _lose(self, lease_key: str, why: str) -> None:
        if self._held.pop(lease_key, None) is not None:
            self._lost.add(lease_key)
            log.warning("lost lease %s: %s", lease_key, why)

    def _refresh(self, now: float) -> None:
        """Re-read the lease table; a held lease now owned by another (or moved) is lost."""
        rows = {lease.lease_key: lease for lease in self._store.leases()}
        ours = {key: lease for key, lease in rows.items() if lease.stream_arn in self._streams}
        tables = {info.table for info in self._streams.values()}
        self._others = [
            lease for key, lease in rows.items() if key not in ours and lease.table in tables
        ]
        for key in list(self._held):
            row = ours.get(key)
            mine = self._leases[key]
            if row is None or row.owner != self._worker_id or row.counter != mine.counter:
                self._lose(key, "the lease table shows another owner or a newer write")
        self._leases = ours
        self._seen = lm.sightings(self._seen, ours.values(), now)
        self._forget_load(keep=frozenset(self._held))
        counts = lm.loads(
            ours.values(),
            self._seen,
            now,
            worker_id=self._worker_id,
            held=frozenset(self._held),
            lease_duration_s=self._settings.lease_duration_s,
        )
        self._live = frozenset(counts)

    def _renew(self, keys: Sequence[str]) -> None:
        """One conditional write per lease, each under the lock on its own: a slow lease table
        delays the worker's checkpoints by one write at a time, never by a whole round."""
        for key in keys:
            with self._lock:
                if self._closed or key not in self._held:
                    continue  # released, finished or lost since the round began
                try:
                    self._write_held(key, lm.renewed(self._leases[key]))
                except LeaseTableUnavailable as exc:
                    if self._clock() - self._held[key] >= self._settings.lease_duration_s:
                        self._lose(key, f"not renewed for lease_duration_s ({exc})")
                    else:
                        log.warning("renew of %s failed, retrying: %s", key, exc)

    def _listings(self) -> dict[str, list[Shard]]:
        """Every stream's shards (DescribeStream: called without the lock); failures skipped."""
        listings: dict[str, list[Shard]] = {}
        for arn, info in self._streams.items():
            try:
                listings[arn] = self._discovery.shards(arn)
            except StreamUnavailable as exc:
                log.warning("shard sync of table %s failed, retrying later: %s", info.table, exc)
        return listings

    def _probe(self, listings: Mapping[str, Sequence[Shard]]) -> None:
        """Ask the service about parents a listing omits and no lease knows (without the lock)."""
        with self._lock:
            leases = list(self._leases.values())
        for arn, shards in listings.items():
            gone = self._gone.get(arn, frozenset())
            ours = [lease for lease in leases if lease.stream_arn == arn]
            for shard_id in sorted(lineage.parents_to_probe(shards, ours, gone)):
                table = self._streams[arn].table
                try:
                    is_gone = self._discovery.shard_gone(arn, shard_id)
                except StreamUnavailable as exc:
                    log.warning(
                        "cannot tell whether shard %s of %s still exists (its children wait): %s",
                        shard_id, table, exc,
                    )  # fmt: skip
                    continue
                if is_gone:
                    log.info(
                        "shard %s of %s is gone from the stream and has no lease: its children "
                        "start as lineage roots",
                        shard_id, table,
                    )  # fmt: skip
                    with self._lock:
                        self._gone[arn] = self._gone.get(arn, frozenset()) | {shard_id}
                else:
                    log.warning(
                        "shard %s of %s exists but DescribeStream did not list it: its children "
                        "wait until a listing shows it",
                        shard_id, table,
                    )  # fmt: skip

    def _sync(self, listings: dict[str, list[Shard]], now: float) -> None:
        start_latest = self._settings.start_position == StartPosition.LATEST
        for arn, shards in listings.items():
            info = self._streams[arn]
            self._present[arn] = frozenset(shard.shard_id for shard in shards)
            self._shards = {
                key: shard for key, shard in self._shards.items() if not key.startswith(arn + "#")
            }
            self._shards.update({lm.lease_key(arn, shard.shard_id): shard for shard in shards})
            existing = [lease for lease in self._leases.values() if lease.stream_arn == arn]
            created = lineage.new_leases(
                info, shards, existing, start_latest=start_latest, gone=self._gone.get(arn, ())
            )
            for lease in created:
                try:
                    self._create(lease, now)
                except LeaseTableUnavailable as exc:
                    # Parents come first: stopping here never leaves a child leased without
                    # its parent. The rest waits for the next sync.
                    log.warning(
                        "could not create lease %s, next sync retries: %s", lease.lease_key, exc
                    )
                    break
        for lease in lineage.deletable(self._leases.values(), self._present):
            try:
                if self._store.delete(lease):
                    del self._leases[lease.lease_key]
                    log.info("deleted finished lease %s (shard left the stream)", lease.lease_key)
            except LeaseTableUnavailable as exc:
                log.warning("could not delete lease %s: %s", lease.lease_key, exc)

    def _create(self, lease: Lease, now: float) -> bool:
        """Write a new lease (LeaseTableUnavailable propagates); False if it already existed."""
        created = self._store.create(lease)
        if created:
            self._leases[lease.lease_key] = lease
            self._seen[lease.lease_key] = Sighting(lease.counter, now)
            if lease.owner == self._worker_id:
                self._held[lease.lease_key] = now
            log.info("created lease %s at %s", lease.lease_key, lease.checkpoint)
        return created

    def _look_for_children(self, parent_key: str) -> None:
        """One lookup of a finished shard's children; none listed yet: look again shortly."""
        with self._lock:
            parent = self._leases.get(parent_key)
            lookup = self._child_lookups.get(parent_key)
        if parent is None or lookup is None:
            return
        try:
            found = self._discovery.child_shards(parent.stream_arn, parent.shard_id)
            with self._lock:
                if self._closed:  # released: leasing children now would strand them
                    self._child_lookups.clear()
                    return
                adopted = self._adopt_children(parent, found)
        except (StreamUnavailable, LeaseTableUnavailable) as exc:
            log.warning("children of %s not leased yet, retrying: %s", parent_key, exc)
            adopted = False
        with self._lock:
            if adopted or lookup.attempt >= len(CHILD_LOOKUP_DELAYS_S):
                self._child_lookups.pop(parent_key, None)
                if not adopted:
                    log.info(
                        "no children of %s listed yet: the next shard sync looks again", parent_key
                    )
                return
            delay_s = CHILD_LOOKUP_DELAYS_S[lookup.attempt]
            self._child_lookups[parent_key] = ChildLookup(
                lookup.attempt + 1, self._clock() + delay_s
            )

    def _adopt_children(self, parent: Lease, found: Sequence[Shard]) -> bool:
        """Lease the children of a finished shard to ourselves: no reassignment gap. False if
        none is listed yet."""
        now = self._clock()
        info = self._streams[parent.stream_arn]
        kids = lineage.children_of(parent.shard_id, found)
        self._present[parent.stream_arn] = self._present.get(parent.stream_arn, frozenset()) | {
            kid.shard_id for kid in kids
        }
        for kid in kids:
            key = lm.lease_key(parent.stream_arn, kid.shard_id)
            self._shards[key] = kid
            existing = self._leases.get(key)
            if existing is None:
                child = lm.new_lease(
                    info.table, info.stream_arn, kid.shard_id, (parent.shard_id,),
                    TRIM_HORIZON, owner=self._worker_id,
                )  # fmt: skip
                self._create(child, now)
            elif existing.owner is None and key not in self._held:
                self._take_one(existing, now, "child of a shard we finished")
        return bool(kids)

    def _check_checkpoints(self) -> None:
        """Report every checkpoint that cannot be resumed; ``trimmed_policy`` says what next."""
        held = [self._leases[key] for key in sorted(self._held)]
        current = {info.table: arn for arn, info in self._streams.items()}
        for problem in checkpoints.unusable(held, self._shards, self._others, current):
            lease = problem.lease
            self._on_gap(lease.table)
            policy = self._settings.trimmed_policy
            log.error(
                "unusable checkpoint: %s (trimmed_policy=%s: %s)",
                problem.gap, policy.value,
                "stopping" if policy is TrimmedPolicy.FAIL else problem.remedy.value,
            )  # fmt: skip
            if policy is TrimmedPolicy.FAIL:
                raise checkpoints.UnusableCheckpointError(
                    f"{problem.gap}; to go on ({problem.remedy.value} and record the gap in the "
                    "lease row) set bridge.trimmed_policy=skip, then backfill the table"
                )
            new = checkpoints.repaired(problem)
            try:
                if lease.lease_key in self._held:
                    self._write_held(lease.lease_key, new)
                elif self._store.replace(lease, new):
                    self._others = [row for row in self._others if row.lease_key != new.lease_key]
            except LeaseTableUnavailable as exc:
                log.warning("could not record the gap of %s, retrying: %s", lease.lease_key, exc)

    def _take(self, now: float) -> None:
        # Early rounds (a lease about to expire) take free leases, but steal no sooner than a
        # take interval after the last steal: at most one steal round per interval.
        settings = self._settings
        may_steal = now - self._last_steal >= settings.lease_take_interval_s
        takes = lm.to_take(
            list(self._leases.values()),
            self._seen,
            now,
            worker_id=self._worker_id,
            held=frozenset(self._held),
            lease_duration_s=settings.lease_duration_s,
            max_leases_to_steal=settings.max_leases_to_steal if may_steal else 0,
            rng=self._rng,
        )
        for take in takes:
            try:
                taken = self._take_one(take.lease, now, take.reason.value)
            except LeaseTableUnavailable as exc:
                log.warning("take round stopped, lease table unavailable: %s", exc)
                return
            if taken and take.reason in (lm.TakeReason.STEAL, lm.TakeReason.BALANCE):
                self._last_steal = now

    def _take_one(self, lease: Lease, now: float, reason: str) -> bool:
        new = lm.taken(lease, self._worker_id)
        if self._store.replace(lease, new):
            self._leases[lease.lease_key] = new
            self._held[lease.lease_key] = now
            self._seen[lease.lease_key] = Sighting(new.counter, now)
            log.info("took lease %s from %s (%s)", lease.lease_key, lease.owner, reason)
            return True
        log.info("lease %s changed before we could take it", lease.lease_key)
        return False

    def _next_take_at(self, now: float) -> float:
        """The next take round, early enough to catch the next lease that expires."""
        regular = now + self._settings.lease_take_interval_s
        others = [lease for key, lease in self._leases.items() if key not in self._held]
        due = lm.expiry_due(others, self._seen, now, self._settings.lease_duration_s)
        return min(regular, due) if due is not None else regular
