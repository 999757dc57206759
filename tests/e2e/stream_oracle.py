"""The checks of a bridge run on simulated streams, against the simulator's own record of what
it emitted (independent of the bridge's code; events are read with a plain fastavro reader).

- every change the stream emitted is in the topic, unless it was trimmed before being read and
  the bridge recorded that gap (lease row) and logged it as an ERROR;
- a record read twice (after a crash or a lease move) is byte-identical every time;
- per item (Kafka key), the first copies are in stream order (lineage depth, then sequence
  number) with strictly increasing versions, across rotations, splits and restarts;
- no record of a child shard was appended to Kafka before the last record of its parent (first
  copies: a worker that lost a lease may still deliver records it had handed to Kafka, later,
  as byte-identical duplicates): the topics use ``message.timestamp.type=LogAppendTime``, so
  the broker's own clock orders records across partitions.
"""

from __future__ import annotations

import io
import itertools
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import fastavro
from confluent_kafka import (  # noqa: TID251 - the oracle reads the real topics
    TIMESTAMP_LOG_APPEND_TIME,
    Consumer,
    KafkaException,
    TopicPartition,
)

from dynabridge.streamsim.client import EmittedRecord, ShardInfo

SCHEMA = fastavro.parse_schema(
    json.loads(resources.files("bridge.contract").joinpath("change_event.avsc").read_text())
)


@dataclass(frozen=True, slots=True)
class Published:
    partition: int
    offset: int
    appended_ms: int
    key: bytes
    value: bytes
    stream_arn: str
    shard_id: str
    sequence_number: str
    version: int
    event_name: str
    keys: Any


def decode_plain(value: bytes) -> dict[str, Any]:
    """What a consumer with only the .avsc does: skip the single-object header, read Avro."""
    assert value[:2] == b"\xc3\x01", "Avro single-object encoding"
    record = fastavro.schemaless_reader(io.BytesIO(value[10:]), SCHEMA, None)
    assert isinstance(record, dict)
    return record


class TopicReader:
    """Reads a topic from its beginning, incrementally, up to the high watermarks of each call."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.topic = topic
        self.records: list[Published] = []
        self._consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"{topic}-oracle",
                "enable.auto.commit": False,
            }
        )
        partitions = self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self._next = dict.fromkeys(partitions, 0)
        self._consumer.assign([TopicPartition(topic, p, 0) for p in partitions])

    def catch_up(self, timeout_s: float = 30.0) -> list[Published]:
        try:
            highs = {
                p: self._consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=10)[
                    1
                ]
                for p in self._next
            }
        except KafkaException:  # a new topic's leader not elected yet: ask again next time
            return self.records
        budget = int(timeout_s / 0.5)
        while any(self._next[p] < highs[p] for p in self._next) and budget:
            budget -= 1
            for message in self._consumer.consume(1000, timeout=0.5):
                assert message.error() is None, message.error()
                kind, stamp = message.timestamp()
                assert kind == TIMESTAMP_LOG_APPEND_TIME, "the topic must use LogAppendTime"
                value: bytes = message.value()  # type: ignore[assignment]
                event = decode_plain(value)
                partition: int = message.partition()  # type: ignore[assignment]
                offset: int = message.offset()  # type: ignore[assignment]
                self._next[partition] = offset + 1
                self.records.append(
                    Published(
                        partition,
                        offset,
                        stamp,
                        message.key() or b"",
                        value,
                        event["stream_arn"],
                        event["shard_id"],
                        event["sequence_number"],
                        event["version"],
                        event["event_name"],
                        json.loads(event["keys"]),
                    )
                )
        return self.records

    def close(self) -> None:
        self._consumer.close()


def depths(shards: Iterable[ShardInfo]) -> dict[str, int]:
    """Each shard's generation in its lineage (a root is 0)."""
    parent = {shard.shard_id: shard.parent_shard_id for shard in shards}
    found: dict[str, int] = {}
    for shard_id in parent:
        chain: list[str] = []
        current: str | None = shard_id
        while current is not None and current in parent and current not in found:
            chain.append(current)
            current = parent[current]
        base = found.get(current, -1) if current is not None else -1
        for offset, member in enumerate(reversed(chain), start=1):
            found[member] = base + offset
    return found


@dataclass
class Report:
    emitted: int
    published: int
    duplicates: int
    missing: list[tuple[str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def assert_clean(self) -> None:
        assert not self.problems, "\n".join(self.problems[:20])


def check(
    emitted: list[EmittedRecord],
    shards: list[ShardInfo],
    published: list[Published],
    *,
    stream_arn: str,
    excused: Mapping[str, Iterable[str]] = {},
) -> Report:
    """Check the records of ``stream_arn`` in ``published`` against ``emitted``; ``excused``
    maps a shard id to sequence numbers that may be missing (trimmed before read, with a
    recorded gap)."""
    published = [record for record in published if record.stream_arn == stream_arn]
    by_position = {(r.shard_id, r.sequence_number): r for r in emitted}
    depth = depths(shards)
    first: dict[tuple[str, str], Published] = {}
    duplicates = 0
    problems: list[str] = []
    for record in sorted(published, key=lambda r: (r.partition, r.offset)):
        position = (record.shard_id, record.sequence_number)
        if position not in by_position:
            problems.append(f"published {position}, which the stream never emitted")
            continue
        seen = first.get(position)
        if seen is None:
            first[position] = record
            source = by_position[position]
            if record.keys != source.keys or record.event_name != source.event_name:
                problems.append(f"{position}: keys or event name differ from the stream's")
            continue
        duplicates += 1
        if (seen.key, seen.value) != (record.key, record.value):
            problems.append(f"{position}: a re-published copy differs from the first")
    excused_positions = {(s, q) for s, seqs in excused.items() for q in seqs}
    missing = sorted(set(by_position) - set(first))
    unexcused = [position for position in missing if position not in excused_positions]
    if unexcused:
        problems.append(f"{len(unexcused)} emitted change(s) never published, e.g. {unexcused[:5]}")
    per_item: dict[bytes, list[Published]] = defaultdict(list)
    for record in sorted(first.values(), key=lambda r: (r.partition, r.offset)):
        per_item[record.key].append(record)
    for key, records in per_item.items():
        order = [(depth[r.shard_id], int(r.sequence_number)) for r in records]
        if order != sorted(order):
            problems.append(f"item {key!r}: published out of stream order: {order}")
        versions = [r.version for r in records]
        if any(a >= b for a, b in itertools.pairwise(versions)):
            problems.append(f"item {key!r}: versions do not strictly increase: {versions}")
    # First copies: a worker that lost a lease may still deliver what it had handed to Kafka
    # (byte-identical, checked above), after the new owner finished the shard.
    appended: dict[str, list[int]] = defaultdict(list)
    for record in first.values():
        appended[record.shard_id].append(record.appended_ms)
    for shard in shards:
        parent = shard.parent_shard_id
        if parent in appended and shard.shard_id in appended:
            last_parent, first_child = max(appended[parent]), min(appended[shard.shard_id])
            if first_child < last_parent:
                problems.append(
                    f"child {shard.shard_id} appended at {first_child} before the last record "
                    f"of its parent {parent} ({last_parent})"
                )
    return Report(len(emitted), len(first), duplicates, missing, problems)
