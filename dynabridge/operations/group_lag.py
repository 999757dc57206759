"""The indexer group's lag per partition: in records, in seconds, and the rates around it.

Lag is what the group has still to read: from its committed offset, or from the low watermark
when it never committed (or committed below what retention kept). Its age is the Kafka timestamp
of the first record still to read (the bridge stamps each record with its change's time in
DynamoDB). Rates are the growth of the end offset (arriving) and of the committed offset
(consumed) between two reads ``elapsed_s`` apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Protocol

from consumers.indexer.records import Record
from dynabridge.operations.errors import OperationError
from dynabridge.operations.offset_targets import Watermarks


class GroupOffsets(Protocol):
    def partitions(self, topic: str) -> list[int]: ...
    def watermarks(self, topic: str, partitions: Iterable[int]) -> dict[int, Watermarks]: ...
    def committed(
        self, group: str, topic: str, partitions: Iterable[int]
    ) -> dict[int, int | None]: ...
    def read(self, topic: str, partition: int, start: int, end: int) -> list[Record]: ...


@dataclass(frozen=True, slots=True)
class PartitionStatus:
    partition: int
    committed: int | None
    end: int
    lag: int
    lag_s: float | None = None
    """Age of the oldest record the group has still to read (its Kafka timestamp)."""
    produced_per_s: float | None = None
    consumed_per_s: float | None = None
    """Offsets' growth between the two reads; None with --interval 0."""


def partition_lag(partition: int, marks: Watermarks, committed: int | None) -> PartitionStatus:
    """Lag is what the group has still to read; with no commit it starts at the low watermark."""
    position = marks.low if committed is None else max(committed, marks.low)
    return PartitionStatus(partition, committed, marks.high, max(marks.high - position, 0))


@dataclass(frozen=True, slots=True)
class Offsets:
    marks: dict[int, Watermarks]
    committed: dict[int, int | None]


def offsets(kafka: GroupOffsets, topic: str, group: str) -> Offsets:
    found = kafka.partitions(topic)
    return Offsets(kafka.watermarks(topic, found), kafka.committed(group, topic, found))


def partitions(
    kafka: GroupOffsets,
    topic: str,
    group: str,
    before: Offsets | None,
    elapsed_s: float,
    now_s: float,
) -> list[PartitionStatus]:
    """Every partition's lag now, its age, and the rates since ``before``."""
    now = offsets(kafka, topic, group)
    rows = []
    for p, marks in sorted(now.marks.items()):
        row = partition_lag(p, marks, now.committed.get(p))
        produced, consumed = partition_rates(before, p, marks, now.committed.get(p), elapsed_s)
        age = lag_s(kafka, topic, row, marks, now_s)
        rows.append(replace(row, lag_s=age, produced_per_s=produced, consumed_per_s=consumed))
    return rows


def partition_rates(
    before: Offsets | None,
    partition: int,
    marks: Watermarks,
    committed: int | None,
    elapsed_s: float,
) -> tuple[float | None, float | None]:
    """(records/s arriving, records/s the group committed) between the two reads."""
    if before is None or elapsed_s <= 0 or partition not in before.marks:
        return None, None
    produced = max(0, marks.high - before.marks[partition].high) / elapsed_s
    then = before.committed.get(partition)
    consumed = 0.0
    if then is not None and committed is not None:
        consumed = max(0, committed - then) / elapsed_s
    return produced, consumed


def lag_s(
    kafka: GroupOffsets, topic: str, row: PartitionStatus, marks: Watermarks, now_s: float
) -> float | None:
    """The age of the first record the group has still to read (0 without lag)."""
    if row.lag == 0:
        return 0.0
    position = marks.low if row.committed is None else max(row.committed, marks.low)
    try:
        records = kafka.read(topic, row.partition, position, position + 1)
    except OperationError:
        return None
    if not records:
        return None
    return max(0.0, now_s - records[0].timestamp_ms / 1000)
