"""Where one item's latest change is in the pipeline, and the stage it is stuck at, if any.

The stages in order: stream (read and checkpointed by the bridge's lease) -> Kafka (a record
with the item's key) -> the indexer group's commit -> the index (``_version`` = event version).
The verdict names the first stage the latest change has not passed.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from bridge.contract import EventName


class Stage(enum.StrEnum):
    IN_SYNC = "in_sync"
    NOT_PUBLISHED = "not_published"
    NOT_IN_KAFKA = "not_in_kafka"
    INDEXER_LAG = "indexer_lag"
    NOT_INDEXED = "not_indexed"
    INDEX_DIFFERS = "index_differs"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class StreamChange:
    shard_id: str
    sequence_number: str
    event_name: EventName
    version: int
    """Counted from the scan's start: the bridge's own for a lineage root from TRIM_HORIZON."""
    created_ms: int
    checkpoint: str | None
    """The shard's lease checkpoint, None when the shard has no lease."""
    owner: str | None

    @property
    def published(self) -> bool:
        """The bridge checkpointed at or past this change (so Kafka acknowledged it)."""
        if self.checkpoint is None or not self.checkpoint.isdigit():
            return self.checkpoint == "SHARD_END"
        return int(self.sequence_number) <= int(self.checkpoint)


@dataclass(frozen=True, slots=True)
class KafkaChange:
    offset: int
    version: int | None
    sequence_number: str | None
    event_name: str | None


@dataclass(frozen=True, slots=True)
class Facts:
    table_document: dict[str, Any] | None
    """``source_document`` of the item now in the table; None when it does not exist."""
    stream: StreamChange | None
    kafka: KafkaChange | None
    kafka_scanned: int
    topic: str
    partition: int
    committed: int | None
    end: int
    index_version: int | None
    index_document: dict[str, Any] | None
    differing_fields: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Verdict:
    stage: Stage
    text: str


def verdict(facts: Facts) -> Verdict:
    where = f"{facts.topic}[{facts.partition}]"
    stream, record = facts.stream, facts.kafka
    if stream is not None and not _in_kafka(stream, record):
        if not stream.published:
            owner = stream.owner or "no worker"
            return Verdict(
                Stage.NOT_PUBLISHED,
                f"not yet published: the change at sequence {stream.sequence_number} "
                f"(shard {stream.shard_id}) is after the lease checkpoint {stream.checkpoint} "
                f"(owner {owner}): the bridge is behind or not running",
            )
        return Verdict(
            Stage.NOT_IN_KAFKA,
            f"checkpointed by the bridge but not among the last {facts.kafka_scanned} records "
            f"of {where}: further back than the scan (raise --kafka-limit), or deleted by "
            "topic retention",
        )
    if record is not None and (facts.committed is None or facts.committed <= record.offset):
        committed = "nothing" if facts.committed is None else str(facts.committed)
        behind = facts.end - (facts.committed or 0)
        return Verdict(
            Stage.INDEXER_LAG,
            f"in Kafka at offset {record.offset} of {where} but the indexer group committed "
            f"{committed}: lag ({behind} record(s) behind on this partition)",
        )
    return _index_verdict(facts, where)


def _in_kafka(stream: StreamChange, record: KafkaChange | None) -> bool:
    if record is None or record.sequence_number is None:
        return False
    if record.sequence_number == stream.sequence_number:
        return True
    # A later record of the key (e.g. from a child shard) carries this change's effect too.
    return record.sequence_number.isdigit() and int(record.sequence_number) > int(
        stream.sequence_number
    )


def _index_verdict(facts: Facts, where: str) -> Verdict:
    record, dlq = facts.kafka, f"{facts.topic}.dlq"
    if facts.table_document is None:
        if facts.index_document is None:
            return Verdict(Stage.IN_SYNC, "deleted in the table and absent from the index")
        return Verdict(
            Stage.NOT_INDEXED,
            f"deleted in the table but the index still holds version {facts.index_version}: "
            f"the delete was committed without being applied; look in {dlq}",
        )
    if facts.index_document is None:
        past = "" if record is None else f" past offset {record.offset} of {where}"
        return Verdict(
            Stage.NOT_INDEXED,
            f"the indexer committed{past} but the index has no document: look in {dlq}",
        )
    if (
        record is not None
        and record.version is not None
        and facts.index_version is not None
        and facts.index_version < record.version
    ):
        return Verdict(
            Stage.NOT_INDEXED,
            f"the index holds version {facts.index_version}, older than Kafka's "
            f"{record.version} at offset {record.offset}: look in {dlq}",
        )
    if facts.differing_fields:
        return Verdict(
            Stage.INDEX_DIFFERS,
            "the index document differs from the table in "
            f"{', '.join(facts.differing_fields)} (a change in flight? trace again)",
        )
    if facts.stream is None and record is None:
        return Verdict(
            Stage.IN_SYNC,
            "the index equals the table (no recent change found in the stream or Kafka)",
        )
    return Verdict(Stage.IN_SYNC, "the index equals the table: nothing is stuck")
