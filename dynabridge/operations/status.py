"""``dynabridge status``: where each table's changes are, from shard to index, and who is alive.

Liveness of bridge workers: lease counters are bumped by every renew (every
``lease_renew_interval_s``), so an owner whose counters moved between two reads of the lease
table a little more than that apart is alive; one whose counters stood still is not renewing.
Time to trim: a stream record is readable for 24 h, so the oldest unread record (the first after
the checkpoint) is trimmed ``24 h - its age`` from now (age from ApproximateCreationDateTime).
The group's lag, its age and rates are ``group_lag.py``'s; the desired worker counts are
``scaling.py``'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from bridge.contract import ContractError, topic_name
from bridge.leases import SENTINELS, SHARD_END, TRIM_HORIZON, Lease
from bridge.records import ShardSource
from bridge.scaling import BridgeTargets, ShardSignal
from bridge.shards import Shard
from consumers.indexer.documents import index_name
from consumers.indexer.scaling import IndexerTargets
from dynabridge.operations.dynamo import ShardScan, TableInfo
from dynabridge.operations.errors import OperationError
from dynabridge.operations.fields import FieldStatus, field_report
from dynabridge.operations.group_lag import (
    GroupOffsets,
    Offsets,
    PartitionStatus,
    offsets,
    partitions,
)
from dynabridge.operations.offset_targets import GroupInfo
from dynabridge.operations.scaling import (
    BridgeScaling,
    IndexerScaling,
    PartitionRates,
    bridge_scaling,
    indexer_scaling,
)

RETENTION_S = 24 * 3600


class LeaseSource(Protocol):
    def leases(self) -> list[Lease]: ...


class ShardList(Protocol):
    def shards(self, stream_arn: str) -> list[Shard]: ...


class StatusTables(Protocol):
    def describe(self, table: str) -> TableInfo: ...
    def shard_events(self, source: ShardSource, after: str | None, limit: int) -> ShardScan: ...


class IndexMappings(Protocol):
    def mappings(self, index: str) -> Mapping[str, Any] | None:
        """The index's mappings; None when it does not exist."""


class StatusKafka(GroupOffsets, Protocol):
    def group(self, group: str) -> GroupInfo: ...


@dataclass(frozen=True, slots=True)
class ShardStatus:
    shard_id: str
    parent_shard_id: str | None
    owner: str | None
    checkpoint: str
    last_version: int
    renewing: bool | None
    """The lease counter moved between the two reads (None: one read only, or no lease)."""
    unread_age_s: float | None
    """Age of the oldest unread record (the iterator age); None when nothing is unread."""
    trim_in_s: float | None
    """Time until that record is trimmed by the 24 h retention; negative: already lost."""
    busy: bool = False
    read_per_s: float = 0.0
    """The owner's measure, from the lease row (``bridge/load.py``)."""


@dataclass(frozen=True, slots=True)
class BackfillSummary:
    """One table's backfill as status shows it (from the progress rows in the lease table)."""

    table: str
    state: str
    run_id: str
    segments_done: int
    segments: int
    items: int
    item_estimate: int
    started_at: float
    finished_at: float | None
    error: str | None


class BackfillSource(Protocol):
    def backfills(self) -> list[BackfillSummary]: ...


@dataclass(slots=True)
class TableStatus:
    table: str
    stream_arn: str | None = None
    topic: str = ""
    shards: list[ShardStatus] = field(default_factory=list)
    partitions: list[PartitionStatus] = field(default_factory=list)
    index: str = ""
    managed_mapping: bool | None = None
    """The index was created with dynabridge's mapping (None: not read, or no index yet)."""
    fields: list[FieldStatus] = field(default_factory=list)
    """Attributes not indexed as one field of their natural type, and why."""
    problems: list[str] = field(default_factory=list)

    @property
    def lag(self) -> int:
        return sum(p.lag for p in self.partitions)


@dataclass(slots=True)
class StatusReport:
    lease_table: str
    group: GroupInfo | None
    bridge_workers: dict[str, bool]
    """Lease owners and whether their counters moved (alive)."""
    tables: list[TableStatus]
    problems: list[str] = field(default_factory=list)
    backfills: list[BackfillSummary] = field(default_factory=list)
    bridge_scaling: BridgeScaling | None = None
    indexer_scaling: IndexerScaling | None = None

    def as_json(self) -> dict[str, Any]:
        tables = [{**asdict(t), "lag": t.lag} for t in self.tables]
        group = None if self.group is None else asdict(self.group)
        scaling = {
            "bridge": None if self.bridge_scaling is None else asdict(self.bridge_scaling),
            "indexer": None if self.indexer_scaling is None else asdict(self.indexer_scaling),
        }
        return {
            "lease_table": self.lease_table,
            "bridge_workers": self.bridge_workers,
            "indexer_group": group,
            "scaling": scaling,
            "tables": tables,
            "backfills": [asdict(b) for b in self.backfills],
            "problems": self.problems,
        }


def trim_in_s(created_ms: int, now_s: float) -> tuple[float, float]:
    """(age, time until trimmed) of a record created at ``created_ms``."""
    age_s = max(now_s - created_ms / 1000, 0.0)
    return age_s, RETENTION_S - age_s


def renewing(first: Sequence[Lease], second: Sequence[Lease]) -> dict[str, bool]:
    """Per lease key: did its counter move between the two reads?"""
    before = {lease.lease_key: lease.counter for lease in first}
    return {lease.lease_key: before.get(lease.lease_key) != lease.counter for lease in second}


def owners_alive(leases: Sequence[Lease], moved: dict[str, bool] | None) -> dict[str, bool]:
    alive: dict[str, bool] = {}
    for lease in leases:
        if lease.owner is None or lease.finished:
            continue
        moving = bool(moved and moved.get(lease.lease_key))
        alive[lease.owner] = alive.get(lease.owner, False) or moving
    return alive


@dataclass(frozen=True, slots=True)
class StatusInputs:
    tables: list[str]
    lease_table: str
    group_id: str
    topic_prefix: str
    interval_s: float
    """Between the two reads (leases, offsets); 0 reads once: no liveness, no rates."""
    index_prefix: str = ""
    bridge_targets: BridgeTargets = field(default_factory=BridgeTargets)
    indexer_targets: IndexerTargets = field(default_factory=IndexerTargets)


def collect(
    inputs: StatusInputs,
    tables: StatusTables,
    shards: ShardList,
    leases: LeaseSource,
    kafka: StatusKafka,
    backfills: BackfillSource | None = None,
    indices: IndexMappings | None = None,
    *,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> StatusReport:
    report = StatusReport(inputs.lease_table, None, {}, [])
    first = _leases(leases, report)
    before = _offsets_before(inputs, kafka)
    started = clock()
    second = first
    if inputs.interval_s > 0:
        sleep(inputs.interval_s)
        if first:
            second = _leases(leases, report)
    elapsed_s = clock() - started if inputs.interval_s > 0 else 0.0
    moved = renewing(first, second) if inputs.interval_s > 0 and first else None
    report.bridge_workers = owners_alive(second, moved)
    try:
        report.group = kafka.group(inputs.group_id)
    except OperationError as error:
        report.problems.append(str(error))
    if backfills is not None:
        try:
            wanted = set(inputs.tables)
            report.backfills = [b for b in backfills.backfills() if b.table in wanted]
        except OperationError as error:
            report.problems.append(str(error))
    for table in inputs.tables:
        status = TableStatus(table)
        report.tables.append(status)
        try:
            _table(status, inputs, tables, shards, second, moved, clock())
        except OperationError as error:
            status.problems.append(str(error))
        try:
            status.topic = topic_name(inputs.topic_prefix, status.table)
            status.partitions = partitions(
                kafka, status.topic, inputs.group_id, before.get(status.table), elapsed_s, clock()
            )
        except (OperationError, ContractError) as error:
            status.problems.append(str(error))
        if indices is not None:
            try:
                _fields(status, inputs, indices)
            except OperationError as error:
                status.problems.append(str(error))
    _scaling(report, inputs, alive_known=moved is not None)
    return report


def _scaling(report: StatusReport, inputs: StatusInputs, *, alive_known: bool) -> None:
    """The desired counts from everything read; owners count as alive without a second read."""
    workers = report.bridge_workers
    live = {w for w, alive in workers.items() if alive} if alive_known else set(workers)
    shards = [
        ShardSignal(t.table, s.shard_id, s.owner, s.busy, s.read_per_s, s.unread_age_s)
        for t in report.tables
        for s in t.shards
        if s.checkpoint != SHARD_END
    ]
    report.bridge_scaling = bridge_scaling(shards, live, inputs.bridge_targets)
    rates = [
        PartitionRates(p.lag, p.produced_per_s, p.consumed_per_s)
        for t in report.tables
        for p in t.partitions
    ]
    members = 0 if report.group is None else len(report.group.members)
    report.indexer_scaling = indexer_scaling(rates, members, inputs.indexer_targets)


def _offsets_before(inputs: StatusInputs, kafka: StatusKafka) -> dict[str, Offsets]:
    """Each table's offsets before the pause (a table that cannot be read now is left out: its
    problem is reported by the second read)."""
    found: dict[str, Offsets] = {}
    if inputs.interval_s <= 0:
        return found
    for table in inputs.tables:
        try:
            found[table] = offsets(kafka, topic_name(inputs.topic_prefix, table), inputs.group_id)
        except (OperationError, ContractError):
            continue
    return found


def _fields(status: TableStatus, inputs: StatusInputs, indices: IndexMappings) -> None:
    status.index = index_name(inputs.index_prefix, status.table)
    mappings = indices.mappings(status.index)
    if mappings is None:
        return
    status.managed_mapping, status.fields = field_report(mappings)
    if not status.managed_mapping:
        status.problems.append(
            f"index {status.index} was not created with dynabridge's mapping: items of mixed "
            "types may be refused; rebuild it with `dynabridge reindex` (docs/indexer.md)"
        )


def _leases(leases: LeaseSource, report: StatusReport) -> list[Lease]:
    try:
        return leases.leases()
    except Exception as error:  # noqa: BLE001 - any lease-table failure is reported, not fatal
        report.problems.append(f"lease table {report.lease_table}: {error}")
        return []


def _table(
    status: TableStatus,
    inputs: StatusInputs,
    tables: StatusTables,
    shards: ShardList,
    leases: Sequence[Lease],
    moved: dict[str, bool] | None,
    now_s: float,
) -> None:
    info = tables.describe(status.table)
    status.stream_arn = info.stream_arn
    if info.stream_arn is None:
        status.problems.append("the table has no enabled stream")
        return
    by_shard = {lease.shard_id: lease for lease in leases if lease.stream_arn == info.stream_arn}
    if not by_shard:
        status.problems.append("no lease for this stream: the bridge has not started on it")
    try:
        listed = shards.shards(info.stream_arn)
    except Exception as error:  # noqa: BLE001 - StreamError tree: reported, leases still shown
        status.problems.append(f"DescribeStream: {error}")
        listed = [Shard(sid, None, "0", None) for sid in by_shard]
    for shard in listed:
        lease = by_shard.get(shard.shard_id)
        source = ShardSource(status.table, info.stream_arn, shard.shard_id)
        status.shards.append(_shard(shard, lease, moved, tables, source, now_s))


def _shard(
    shard: Shard,
    lease: Lease | None,
    moved: dict[str, bool] | None,
    tables: StatusTables,
    source: ShardSource,
    now_s: float,
) -> ShardStatus:
    checkpoint = TRIM_HORIZON if lease is None else lease.checkpoint
    age = trim = None
    if checkpoint != SHARD_END and not (lease is not None and checkpoint == "LATEST"):
        after = None if checkpoint in SENTINELS else checkpoint
        scan = tables.shard_events(source, after, limit=1)
        if scan.events:
            age, trim = trim_in_s(scan.events[0].approximate_creation_time_ms, now_s)
    return ShardStatus(
        shard_id=shard.shard_id,
        parent_shard_id=shard.parent_shard_id,
        owner=None if lease is None else lease.owner,
        checkpoint="(no lease)" if lease is None else lease.checkpoint,
        last_version=0 if lease is None else lease.last_version,
        renewing=None if moved is None or lease is None else moved.get(lease.lease_key),
        unread_age_s=age,
        trim_in_s=trim,
        busy=lease is not None and lease.load.busy,
        read_per_s=0.0 if lease is None else lease.load.read_per_s,
    )
