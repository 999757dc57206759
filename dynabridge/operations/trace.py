"""``dynabridge trace``: follow one item from the table through stream and Kafka to the index.

Bounded reads only: at most ``stream_limit`` records per shard (from TRIM_HORIZON) and the last
``kafka_limit`` records of the key's partition, read backwards in windows from the end.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from bridge.contract import (
    HEADER_EVENT_NAME,
    HEADER_SEQUENCE_NUMBER,
    HEADER_VERSION,
    Item,
    canonical_keys,
    kafka_key,
    topic_name,
)
from bridge.leases import Lease
from bridge.records import ShardSource
from bridge.shards import Shard
from consumers.indexer.documents import doc_id, index_name, source_document, to_plain_json
from consumers.indexer.records import Record
from dynabridge.operations.comparison import differing_fields
from dynabridge.operations.dynamo import ShardScan, TableInfo
from dynabridge.operations.index_reader import StoredDocument
from dynabridge.operations.murmur2 import partition
from dynabridge.operations.offset_targets import Watermarks
from dynabridge.operations.verdict import Facts, KafkaChange, StreamChange, Verdict, verdict

KAFKA_WINDOW = 500


class TraceTables(Protocol):
    def item(self, table: str, keys: Item) -> Item | None: ...
    def shard_events(self, source: ShardSource, after: str | None, limit: int) -> ShardScan: ...


class TraceKafka(Protocol):
    def partitions(self, topic: str) -> list[int]: ...
    def watermarks(self, topic: str, partitions: Iterable[int]) -> dict[int, Watermarks]: ...
    def committed(
        self, group: str, topic: str, partitions: Iterable[int]
    ) -> dict[int, int | None]: ...
    def read(self, topic: str, partition: int, start: int, end: int) -> list[Record]: ...


class TraceIndex(Protocol):
    def document(self, index: str, doc_id: str) -> StoredDocument | None: ...


@dataclass(frozen=True, slots=True)
class TraceRequest:
    info: TableInfo
    keys: Item
    group_id: str
    topic_prefix: str
    index_prefix: str
    stream_limit: int
    kafka_limit: int


@dataclass(frozen=True, slots=True)
class TraceReport:
    table: str
    keys: dict[str, Any]
    kafka_key: str
    doc_id: str
    index: str
    facts: Facts
    stream_records_scanned: int
    stream_scan_complete: bool
    verdict: Verdict

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def trace(
    request: TraceRequest,
    tables: TraceTables,
    shards: Sequence[Shard],
    leases: Sequence[Lease],
    kafka: TraceKafka,
    index_reader: TraceIndex,
) -> TraceReport:
    info, keys = request.info, canonical_keys(request.keys)
    key_bytes = kafka_key(keys)
    topic = topic_name(request.topic_prefix, info.table)
    index, identifier = index_name(request.index_prefix, info.table), doc_id(keys)
    item = tables.item(info.table, keys)
    stream, scanned, complete = _latest_stream_change(request, tables, shards, leases, keys)
    partitions = kafka.partitions(topic)
    where = partition(key_bytes, len(partitions))
    marks = kafka.watermarks(topic, [where])[where]
    committed = kafka.committed(request.group_id, topic, [where]).get(where)
    record, kafka_scanned = _latest_record(
        kafka, topic, where, marks, key_bytes, request.kafka_limit
    )
    stored = index_reader.document(index, identifier)
    table_document = None if item is None else source_document(item)
    facts = Facts(
        table_document=table_document,
        stream=stream,
        kafka=record,
        kafka_scanned=kafka_scanned,
        topic=topic,
        partition=where,
        committed=committed,
        end=marks.high,
        index_version=None if stored is None else stored.version,
        index_document=None if stored is None else stored.source,
        differing_fields=(
            differing_fields(table_document, stored.source)
            if table_document is not None and stored is not None
            else ()
        ),
    )
    return TraceReport(
        table=info.table,
        keys=to_plain_json(keys),
        kafka_key=key_bytes.decode("utf-8"),
        doc_id=identifier,
        index=index,
        facts=facts,
        stream_records_scanned=scanned,
        stream_scan_complete=complete,
        verdict=verdict(facts),
    )


def _latest_stream_change(
    request: TraceRequest,
    tables: TraceTables,
    shards: Sequence[Shard],
    leases: Sequence[Lease],
    keys: Item,
) -> tuple[StreamChange | None, int, bool]:
    arn = request.info.stream_arn
    if arn is None:
        return None, 0, True
    by_shard = {lease.shard_id: lease for lease in leases if lease.stream_arn == arn}
    latest: StreamChange | None = None
    scanned, complete = 0, True
    for shard in shards:
        scan = tables.shard_events(
            ShardSource(request.info.table, arn, shard.shard_id), None, request.stream_limit
        )
        scanned += scan.records_read
        complete = complete and scan.complete
        lease = by_shard.get(shard.shard_id)
        for event in scan.events:
            if canonical_keys(event.keys) != keys:
                continue
            if latest is None or int(event.sequence_number) > int(latest.sequence_number):
                latest = StreamChange(
                    shard_id=shard.shard_id,
                    sequence_number=event.sequence_number,
                    event_name=event.event_name,
                    version=event.version,
                    created_ms=event.approximate_creation_time_ms,
                    checkpoint=None if lease is None else lease.checkpoint,
                    owner=None if lease is None else lease.owner,
                )
    return latest, scanned, complete


def _latest_record(
    kafka: TraceKafka, topic: str, where: int, marks: Watermarks, key: bytes, limit: int
) -> tuple[KafkaChange | None, int]:
    """The highest-offset record with ``key``, reading windows backwards from the end."""
    end, scanned = marks.high, 0
    while end > marks.low and scanned < limit:
        start = max(marks.low, end - min(KAFKA_WINDOW, limit - scanned))
        records = kafka.read(topic, where, start, end)
        scanned += end - start
        matches = [r for r in records if r.key == key]
        if matches:
            return _change(max(matches, key=lambda r: r.offset)), scanned
        end = start
    return None, scanned


def _change(record: Record) -> KafkaChange:
    headers = dict(record.headers)
    version = headers.get(HEADER_VERSION)
    sequence = headers.get(HEADER_SEQUENCE_NUMBER)
    name = headers.get(HEADER_EVENT_NAME)
    return KafkaChange(
        offset=record.offset,
        version=int(version) if version and version.isdigit() else None,
        sequence_number=sequence.decode("ascii") if sequence else None,
        event_name=name.decode("ascii") if name else None,
    )
