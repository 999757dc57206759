"""What the indexer's loop sees of Kafka: partitions, consumed records, dead letters, errors.

Plain data, so the pure modules and the loop never touch a client library's type. The Kafka
adapters translate client errors into these::

    Exception
     ├── ConsumerError     the consumer cannot go on -> stop non-zero
     ├── CommitFailed      a commit was refused -> try again at the next commit
     └── DeadLetterError   a dead letter was not acknowledged -> stop non-zero
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


class Partition(NamedTuple):
    topic: str
    partition: int

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]"


@dataclass(frozen=True, slots=True)
class Record:
    """One consumed Kafka record, bytes exactly as they were on the topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes | None], ...] = ()
    timestamp_ms: int = 0

    @property
    def source(self) -> Partition:
        return Partition(self.topic, self.partition)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that cannot be indexed, with why: written to ``<topic>.dlq`` before it settles."""

    record: Record
    error_type: str
    reason: str
    status: int
    """HTTP status of the item, 0 when the record never reached the search engine."""
    index: str
    """Target index, empty when the record could not be decoded."""
    attempts: int


class ConsumerError(Exception):
    """The consumer cannot go on (a fatal librdkafka error, a topic it may not read): stop."""


class CommitFailed(Exception):  # noqa: N818 - a refused commit, retried at the next interval
    """The group coordinator refused a commit (rebalance in progress, member fenced)."""


class DeadLetterError(Exception):
    """A dead letter was not acknowledged by Kafka: its record must not settle, so stop."""
