"""Fakes of the coordinator's collaborators: a lease store with DynamoDB's conditional writes,
and a Streams topology the test rewrites (child lookups ignore the filter, like moto)."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import replace

from bridge.coordinator import LeaseCoordinator
from bridge.leases import Lease, LeaseTableUnavailable
from bridge.runtime.settings import BridgeSettings
from bridge.shards import Shard, StreamInfo, StreamUnavailable, TableNotFound

ARN = "arn:aws:dynamodb:us-east-1:1:table/t/stream/s"
SETTINGS = BridgeSettings(
    tables=["t"],
    lease_duration_s=10,
    lease_renew_interval_s=3,
    lease_take_interval_s=5,
    shard_sync_interval_s=10,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class MemoryStore:
    """Conditional writes exactly as the DynamoDB adapter does them: on counter and owner."""

    def __init__(self) -> None:
        self.rows: dict[str, Lease] = {}
        self.ensured = False
        self.unavailable = False

    def ensure_table(self) -> None:
        self.ensured = True

    def leases(self) -> list[Lease]:
        self._check()
        return list(self.rows.values())

    def create(self, lease: Lease) -> bool:
        self._check()
        if lease.lease_key in self.rows:
            return False
        self.rows[lease.lease_key] = lease
        return True

    def replace(self, old: Lease, new: Lease) -> bool:
        self._check()
        row = self.rows.get(old.lease_key)
        if row is None or (row.counter, row.owner) != (old.counter, old.owner):
            return False
        self.rows[old.lease_key] = new
        return True

    def delete(self, lease: Lease) -> bool:
        self._check()
        row = self.rows.get(lease.lease_key)
        if row is None or row.counter != lease.counter:
            return False
        del self.rows[lease.lease_key]
        return True

    def _check(self) -> None:
        if self.unavailable:
            raise LeaseTableUnavailable("scripted outage")

    def by_shard(self, shard_id: str) -> Lease:
        return self.rows[f"{ARN}#{shard_id}"]


class Streams:
    """A stream whose topology the test rewrites; child lookups ignore the filter, like moto."""

    def __init__(self, *shards: Shard, view_type: str = "NEW_AND_OLD_IMAGES") -> None:
        self.topology = list(shards)
        self.view_type = view_type
        self.unavailable = False
        self.child_calls: list[str] = []
        self.gone: set[str] = set()  # shards the service says no longer exist
        self.probes: list[str] = []

    def describe_table(self, table: str) -> StreamInfo:
        if table != "t":
            raise TableNotFound(f"table {table!r} does not exist")
        return StreamInfo("t", ARN, self.view_type, ("pk",))

    def shards(self, stream_arn: str) -> list[Shard]:
        assert stream_arn == ARN
        if self.unavailable:
            raise StreamUnavailable("scripted throttling")
        return list(self.topology)

    def child_shards(self, stream_arn: str, parent_shard_id: str) -> list[Shard]:
        self.child_calls.append(parent_shard_id)
        return list(self.topology)

    def shard_gone(self, stream_arn: str, shard_id: str) -> bool:
        self.probes.append(shard_id)
        if self.unavailable:
            raise StreamUnavailable("scripted throttling")
        return shard_id in self.gone


def open_shard(shard_id: str, parent: str | None = None) -> Shard:
    return Shard(shard_id, parent, "100", None)


def closed(shard: Shard) -> Shard:
    return replace(shard, ending_sequence_number="900")


def coordinator(
    store: MemoryStore,
    streams: Streams,
    clock: Clock,
    worker: str = "w1",
    settings: BridgeSettings = SETTINGS,
    on_gap: Callable[[str], None] = lambda table: None,
) -> LeaseCoordinator:
    return LeaseCoordinator(
        store,
        streams,
        worker_id=worker,
        tables=["t"],
        settings=settings,
        clock=clock,
        rng=random.Random(7),
        on_gap=on_gap,
    )


def readable_ids(coord: LeaseCoordinator) -> list[str]:
    return sorted(lease.shard_id for lease in coord.readable())
