"""A table's dead letters as operators see them: what, why, and whether they still matter.

Read from ``<topic>.dlq`` (every partition, start to end); each letter is the original change
record with the indexer's ``dlq.*`` headers. Pure apart from the reads it is handed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bridge.contract import HEADER_EVENT_NAME, HEADER_VERSION, ContractError, keys_from_kafka_key
from consumers.indexer.dlq import (
    HEADER_ERROR_TYPE,
    HEADER_INDEX,
    HEADER_REASON,
    HEADER_SOURCE_OFFSET,
    HEADER_SOURCE_PARTITION,
    HEADER_SOURCE_TOPIC,
    HEADER_STATUS,
)
from consumers.indexer.documents import doc_id
from consumers.indexer.records import Record
from dynabridge.operations.offset_targets import Watermarks


class TopicReader(Protocol):
    def exists(self, topic: str) -> bool: ...
    def partitions(self, topic: str) -> list[int]: ...
    def watermarks(self, topic: str, partitions: Iterable[int]) -> dict[int, Watermarks]: ...
    def read(self, topic: str, partition: int, start: int, end: int) -> list[Record]: ...


@dataclass(frozen=True, slots=True)
class Letter:
    partition: int
    offset: int
    doc_id: str | None
    """None when the record's key is not a primary key (a record that was never a change)."""
    version: int | None
    event_name: str
    error_type: str
    reason: str
    status: str
    index: str
    source: str
    """``topic[partition]@offset`` of the change record it was."""
    record: Record

    @property
    def position(self) -> str:
        return f"{self.partition}:{self.offset}"

    def as_json(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "id": self.doc_id,
            "version": self.version,
            "event_name": self.event_name,
            "error_type": self.error_type,
            "reason": self.reason,
            "status": self.status,
            "index": self.index,
            "source": self.source,
        }


def read_letters(reader: TopicReader, topic: str, batch: int = 5000) -> list[Letter]:
    """Every dead letter on ``topic`` (a ``.dlq`` topic), by partition then offset; none when
    the topic does not exist (nothing was ever dead-lettered)."""
    if not reader.exists(topic):
        return []
    partitions = reader.partitions(topic)
    letters: list[Letter] = []
    for partition, marks in sorted(reader.watermarks(topic, partitions).items()):
        start = marks.low
        while start < marks.high:
            records = reader.read(topic, partition, start, min(marks.high, start + batch))
            if not records:
                break
            letters.extend(letter(record) for record in records)
            start = records[-1].offset + 1
    return letters


def letter(record: Record) -> Letter:
    headers = _headers(record.headers)
    return Letter(
        partition=record.partition,
        offset=record.offset,
        doc_id=_doc_id(record.key),
        version=_int(headers.get(HEADER_VERSION)),
        event_name=headers.get(HEADER_EVENT_NAME, "?"),
        error_type=headers.get(HEADER_ERROR_TYPE, "unknown"),
        reason=headers.get(HEADER_REASON, ""),
        status=headers.get(HEADER_STATUS, ""),
        index=headers.get(HEADER_INDEX, ""),
        source="{}[{}]@{}".format(
            headers.get(HEADER_SOURCE_TOPIC, "?"),
            headers.get(HEADER_SOURCE_PARTITION, "?"),
            headers.get(HEADER_SOURCE_OFFSET, "?"),
        ),
        record=record,
    )


def newest_by_id(letters: Iterable[Letter]) -> dict[str, Letter]:
    """Per document id, its dead letter of the highest version (the one that matters now)."""
    newest: dict[str, Letter] = {}
    for item in letters:
        if item.doc_id is None:
            continue
        kept = newest.get(item.doc_id)
        if kept is None or (item.version or 0) >= (kept.version or 0):
            newest[item.doc_id] = item
    return newest


def matching(letters: Sequence[Letter], reason: str | None) -> list[Letter]:
    """The letters of one error type (``--reason``), or all."""
    return [item for item in letters if reason is None or item.error_type == reason]


def summary(letters: Sequence[Letter]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in letters:
        counts[item.error_type] = counts.get(item.error_type, 0) + 1
    return dict(sorted(counts.items()))


def _headers(headers: Iterable[tuple[str, bytes | None]]) -> Mapping[str, str]:
    found: dict[str, str] = {}
    for name, value in headers:
        if value is not None:
            found[name] = value.decode("utf-8", "replace")
    return found


def _doc_id(key: bytes | None) -> str | None:
    if key is None:
        return None
    try:
        return doc_id(keys_from_kafka_key(key))
    except ContractError:
        return None


def _int(text: str | None) -> int | None:
    try:
        return None if text is None else int(text)
    except ValueError:
        return None


def dead_lettered_ids(letters: Iterable[Letter]) -> dict[str, tuple[str, str]]:
    """What ``verify`` needs: id -> (error type and reason, position) of its newest letter."""
    return {
        doc: (f"{item.error_type}: {item.reason[:200]}", item.position)
        for doc, item in newest_by_id(letters).items()
    }
