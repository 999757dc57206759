"""Dead letters: the original record, byte for byte, on ``<topic>.dlq`` with headers saying why.

Invariant: ``publish`` returns only after Kafka acknowledged every letter (idempotent producer,
``acks=all``); the loop settles a dead-lettered record only then, so a record is never both
uncommitted-and-lost nor committed-and-missing from the DLQ.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import confluent_kafka  # noqa: TID251 - this is the dead-letter producer adapter
from confluent_kafka import KafkaError, KafkaException, Message  # noqa: TID251
from confluent_kafka.admin import AdminClient  # noqa: TID251
from confluent_kafka.admin._config import (  # noqa: TID251 - not re-exported for typing
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
)
from confluent_kafka.admin._resource import ResourceType  # noqa: TID251
from confluent_kafka.cimpl import NewTopic  # noqa: TID251

from bridge.contract import MAX_RECORD_BYTES, PARTITIONER, dlq_topic
from bridge.runtime.kafka_security import SecurityWatch, first_answer
from bridge.runtime.settings import KafkaSettings, TopicSettings
from consumers.indexer.records import DeadLetter, DeadLetterError

log = logging.getLogger(__name__)

HEADER_ERROR_TYPE = "dlq.error_type"
HEADER_REASON = "dlq.reason"
HEADER_STATUS = "dlq.status"
HEADER_INDEX = "dlq.index"
HEADER_SOURCE_TOPIC = "dlq.source_topic"
HEADER_SOURCE_PARTITION = "dlq.source_partition"
HEADER_SOURCE_OFFSET = "dlq.source_offset"
HEADER_ATTEMPTS = "dlq.attempts"
MAX_REASON_BYTES = 8192
"""Reasons are cut here: an engine's reason can quote a whole document."""
MAX_LETTER_BYTES = MAX_RECORD_BYTES + 64 * 1024
"""A dead letter is a change record (at most ``MAX_RECORD_BYTES``) plus its ``dlq.*`` headers:
the producer and the dead-letter topics accept that much, so any change can be dead-lettered."""


Headers = list[tuple[str, str | bytes | None]]
Delivered = Callable[[KafkaError | None, Message], None]


def dead_letter_headers(letter: DeadLetter) -> Headers:
    """The record's own headers, then the ``dlq.*`` headers (UTF-8 text values)."""
    record = letter.record
    why = {
        HEADER_ERROR_TYPE: letter.error_type,
        HEADER_REASON: letter.reason.encode("utf-8")[:MAX_REASON_BYTES].decode("utf-8", "ignore"),
        HEADER_STATUS: str(letter.status),
        HEADER_INDEX: letter.index,
        HEADER_SOURCE_TOPIC: record.topic,
        HEADER_SOURCE_PARTITION: str(record.partition),
        HEADER_SOURCE_OFFSET: str(record.offset),
        HEADER_ATTEMPTS: str(letter.attempts),
    }
    headers: Headers = list(record.headers)
    headers.extend((name, value.encode("utf-8")) for name, value in why.items())
    return headers


def ensure_dlq_topics(kafka: KafkaSettings, topics: TopicSettings, sources: Sequence[str]) -> None:
    """Create the dead-letter topics of ``sources`` that do not exist yet, and raise the record
    size limit of existing ones that take less than a whole change (idempotent)."""
    watch = SecurityWatch(kafka)
    config: dict[str, Any] = {**kafka.client_config(), "error_cb": watch}
    admin = AdminClient(config)
    try:
        # The first call proves the credentials and certificates: a refusal stops here.
        first_answer(
            lambda timeout_s: admin.list_topics(timeout=timeout_s),
            admin.poll,
            KafkaException,
            watch,
            15.0,
        )
    except KafkaException as error:
        raise DeadLetterError(f"cannot reach Kafka: {error}") from error
    wanted = [
        NewTopic(
            dlq_topic(source),
            num_partitions=topics.partitions,
            replication_factor=topics.replication_factor,
            config={
                "retention.ms": str(topics.retention_ms),
                "max.message.bytes": str(MAX_LETTER_BYTES),
            },
        )
        for source in sources
    ]
    existing: list[str] = []
    for topic, future in admin.create_topics(wanted, request_timeout=15).items():
        try:
            future.result(timeout=30)
            log.info("created dead-letter topic %s", topic)
        except KafkaException as error:
            code = error.args[0].code() if error.args else None
            if code != KafkaError.TOPIC_ALREADY_EXISTS:
                raise DeadLetterError(
                    f"cannot create dead-letter topic {topic}: {error}"
                ) from error
            existing.append(topic)
    _raise_size_limits(admin, existing)


def _raise_size_limits(admin: AdminClient, topics: Sequence[str]) -> None:
    """``max.message.bytes`` of ``topics`` up to MAX_LETTER_BYTES where it is lower."""
    if not topics:
        return
    resources = [ConfigResource(ResourceType.TOPIC, topic) for topic in topics]
    try:
        described = {
            resource.name: future.result(timeout=30)
            for resource, future in admin.describe_configs(resources).items()
        }
    except KafkaException as error:
        raise DeadLetterError(f"cannot read dead-letter topic settings: {error}") from error
    small = []
    for topic, entries in described.items():
        entry = entries.get("max.message.bytes")
        if entry is None or int(entry.value) < MAX_LETTER_BYTES:
            small.append(topic)
    if not small:
        return
    changes = [
        ConfigResource(
            ResourceType.TOPIC,
            topic,
            incremental_configs=[
                ConfigEntry(
                    "max.message.bytes",
                    str(MAX_LETTER_BYTES),
                    incremental_operation=AlterConfigOpType.SET,
                )
            ],
        )
        for topic in small
    ]
    for resource, future in admin.incremental_alter_configs(changes).items():
        try:
            future.result(timeout=30)
        except KafkaException as error:
            raise DeadLetterError(
                f"dead-letter topic {resource.name} takes records of at most its "
                f"max.message.bytes, less than a change can be; raising it to "
                f"{MAX_LETTER_BYTES} failed: {error} (raise it by hand, or grant AlterConfigs)"
            ) from error
        log.info("raised max.message.bytes of %s to %d", resource.name, MAX_LETTER_BYTES)


class DeadLetterProducer:
    """The :class:`consumers.indexer.worker.DeadLetterSink` over an idempotent producer."""

    def __init__(self, kafka: KafkaSettings, flush_timeout_s: float = 90.0) -> None:
        self._flush_timeout_s = flush_timeout_s
        self._producer = confluent_kafka.Producer(
            {
                **kafka.client_config(),
                "client.id": "dynabridge-indexer-dlq",
                "enable.idempotence": True,
                "acks": "all",
                "partitioner": PARTITIONER,
                "linger.ms": 5,
                "message.max.bytes": MAX_LETTER_BYTES,
                # A change of the worst shape is tens of MB of repetitive JSON: a few on the wire.
                "compression.type": "lz4",
                # Below flush_timeout_s, so every letter has an answer when flush returns.
                "message.timeout.ms": int(flush_timeout_s * 1000) - 30_000,
            }
        )

    def publish(self, letters: Sequence[DeadLetter]) -> None:
        failures: list[str] = []

        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is not None:
                failures.append(f"{message.topic()}: {error.str()}")

        for letter in letters:
            record = letter.record
            self._produce(
                dlq_topic(record.topic),
                record.key,
                record.value,
                dead_letter_headers(letter),
                delivered,
            )
        remaining = self._producer.flush(self._flush_timeout_s)
        if remaining:
            raise DeadLetterError(f"{remaining} dead letters unacknowledged after flush")
        if failures:
            raise DeadLetterError("; ".join(failures[:3]))

    def _produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers,
        delivered: Delivered,
    ) -> None:
        while True:
            try:
                self._producer.produce(
                    topic, key=key, value=value, headers=headers, on_delivery=delivered
                )
                return
            except BufferError:
                self._producer.poll(0.1)  # local queue full: let deliveries drain
            except KafkaException as error:
                raise DeadLetterError(f"cannot produce to {topic}: {error}") from error

    def close(self) -> None:
        self._producer.flush(self._flush_timeout_s)
