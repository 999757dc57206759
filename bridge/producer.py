"""Kafka adapter: the idempotent producer the bridge publishes with, and topic creation.

Idempotence (``enable.idempotence``, ``acks=all``) means librdkafka's own retries can neither
duplicate nor reorder records within a partition; every delivery report, success or failure,
reaches the caller's callback, and a fatal client error latches and is raised by the next call.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

from confluent_kafka import (  # noqa: TID251 - the Kafka adapter
    KafkaError,
    KafkaException,
    Message,
    Producer,
)
from confluent_kafka.admin import AdminClient  # noqa: TID251 - the Kafka adapter
from confluent_kafka.admin._config import (  # noqa: TID251 - not re-exported for typing
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
)
from confluent_kafka.admin._resource import ResourceType  # noqa: TID251
from confluent_kafka.cimpl import NewTopic  # noqa: TID251 - the Kafka adapter

from bridge.acks import DeliveryError
from bridge.contract import (
    MAX_RECORD_BYTES,
    PARTITIONER,
    ChangeEvent,
    Encoder,
    headers,
    kafka_key,
    topic_name,
)
from bridge.runtime.kafka_security import SecurityWatch, first_answer
from bridge.runtime.settings import KafkaSettings, TopicSettings

log = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = MAX_RECORD_BYTES

THROUGHPUT_DEFAULTS: dict[str, Any] = {
    # A record waits at most this long for others to share its batch: every change pays it
    # when the stream is quiet, while under load batches fill behind the requests in flight.
    "linger.ms": 5,
    "batch.size": 1_000_000,
    "batch.num.messages": 10_000,
    "compression.type": "lz4",
    # The local queue is where records wait when Kafka is slower than the stream: bounded, it
    # turns a slow Kafka into backpressure on the fetching (bridge.fetch_max_bytes) instead of
    # up to a gigabyte of memory (librdkafka's default). 64 MiB is seconds of full speed, and
    # it always holds two of the largest records (a larger one could never be queued).
    "queue.buffering.max.messages": 100_000,
    "queue.buffering.max.kbytes": max(65_536, 2 * MAX_MESSAGE_BYTES // 1024),
    "message.max.bytes": MAX_MESSAGE_BYTES,
}
"""Overridable through ``kafka.extra``."""

GUARANTEES: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "max.in.flight.requests.per.connection": 5,
    "partitioner": PARTITIONER,
}
"""Not overridable: the ordering and no-loss arguments depend on them."""


def producer_config(kafka: KafkaSettings) -> dict[str, Any]:
    return {**THROUGHPUT_DEFAULTS, **kafka.client_config(), **GUARANTEES}


def _reported(callback: Callable[[str | None], None], error: KafkaError | None, _: Message) -> None:
    callback(None if error is None else f"{error.name()}: {error.str()}")


class KafkaPublisher:
    """:class:`bridge.worker.Publisher` over a confluent-kafka producer."""

    def __init__(
        self,
        kafka: KafkaSettings,
        encoder: Encoder,
        *,
        producer_factory: Callable[[dict[str, Any]], Producer] = Producer,
    ) -> None:
        self._prefix = kafka.topic_prefix
        self._encoder = encoder
        self._topics: dict[str, str] = {}
        self._fatal: str | None = None
        self._watch = SecurityWatch(kafka)
        config = producer_config(kafka)
        config["error_cb"] = self._client_error
        self._producer = producer_factory(config)
        self._produce = self._producer.produce

    def _client_error(self, error: KafkaError) -> None:
        if error.fatal():
            self._fatal = self._fatal or f"{error.name()}: {error.str()}"
        self._watch(error)
        log.warning("Kafka client error: %s", error.str())

    def _raise_if_fatal(self) -> None:
        self._watch.check()  # credentials or certificates refused while running: exit 2
        if self._fatal is not None:
            raise DeliveryError(f"the Kafka producer failed for good: {self._fatal}")

    def topic(self, table: str) -> str:
        topic = self._topics.get(table)
        if topic is None:
            topic = self._topics[table] = topic_name(self._prefix, table)
        return topic

    def publish(self, event: ChangeEvent, on_delivery: Callable[[str | None], None]) -> None:
        """Queue one event; while the local queue is full, serve callbacks (backpressure)."""
        topic = self._topics.get(event.table) or self.topic(event.table)
        key, value, record_headers = (
            kafka_key(event.keys),
            self._encoder.encode(event),
            headers(event),
        )
        report = functools.partial(_reported, on_delivery)
        while True:
            try:
                self._produce(
                    topic,
                    value,
                    key,
                    headers=record_headers,  # type: ignore[arg-type]  # list[tuple[str, bytes]]
                    # The change's own time: a re-published duplicate is identical, timestamp too.
                    timestamp=event.approximate_creation_time_ms,
                    on_delivery=report,
                )
                return
            except BufferError:
                self._producer.poll(0.05)
                self._raise_if_fatal()
            except KafkaException as error:
                raise DeliveryError(f"Kafka refused a record of {event.table}: {error}") from error

    def poll(self, timeout_s: float) -> None:
        self._producer.poll(timeout_s)
        self._raise_if_fatal()

    def flush(self, timeout_s: float) -> int:
        remaining: int = self._producer.flush(timeout_s)
        return remaining


def ensure_topics(kafka: KafkaSettings, topics: TopicSettings, tables: Sequence[str]) -> None:
    """Create the tables' topics that do not exist yet; of an existing topic, only raise a
    ``max.message.bytes`` below ``MAX_RECORD_BYTES`` (it would refuse a legal change)."""
    watch = SecurityWatch(kafka)
    config: dict[str, Any] = {**kafka.client_config(), "error_cb": watch}
    admin = AdminClient(config)
    wanted = {topic_name(kafka.topic_prefix, table) for table in tables}
    try:
        # The first call proves the credentials and certificates: a refusal stops here.
        metadata = first_answer(
            lambda timeout_s: admin.list_topics(timeout=timeout_s),
            admin.poll,
            KafkaException,
            watch,
            15.0,
        )
    except KafkaException as error:
        raise DeliveryError(f"cannot list Kafka topics: {error}") from error
    existing = set(metadata.topics)
    _raise_size_limits(admin, sorted(wanted & existing))
    missing = sorted(wanted - existing)
    if not missing:
        return
    config = {
        **topics.config,
        "retention.ms": str(topics.retention_ms),
        "cleanup.policy": topics.cleanup_policy,
        "max.message.bytes": str(MAX_MESSAGE_BYTES),
    }
    futures = admin.create_topics(
        [NewTopic(t, topics.partitions, topics.replication_factor, config=config) for t in missing],
        request_timeout=30,
    )
    created_elsewhere = []
    for topic, future in futures.items():
        try:
            future.result(timeout=30)
            log.info(
                "created topic %s (%d partitions, replication %d, retention.ms %d)",
                topic,
                topics.partitions,
                topics.replication_factor,
                topics.retention_ms,
            )
        except KafkaException as error:
            if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise DeliveryError(f"cannot create topic {topic}: {error}") from error
            created_elsewhere.append(topic)  # by another worker, or not in the metadata yet
    _raise_size_limits(admin, created_elsewhere)


def _raise_size_limits(admin: AdminClient, topics: Sequence[str]) -> None:
    """``max.message.bytes`` of ``topics`` up to MAX_MESSAGE_BYTES where it is lower."""
    if not topics:
        return
    resources = [ConfigResource(ResourceType.TOPIC, topic) for topic in topics]
    try:
        small = [
            resource.name
            for resource, future in admin.describe_configs(resources).items()
            if (entry := future.result(timeout=30).get("max.message.bytes")) is None
            or int(entry.value) < MAX_MESSAGE_BYTES
        ]
    except KafkaException as error:
        raise DeliveryError(f"cannot read the settings of topics {topics}: {error}") from error
    raise_to = ConfigEntry(
        "max.message.bytes", str(MAX_MESSAGE_BYTES), incremental_operation=AlterConfigOpType.SET
    )
    changes = [
        ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[raise_to]) for topic in small
    ]
    for resource, future in (admin.incremental_alter_configs(changes) if changes else {}).items():
        try:
            future.result(timeout=30)
        except KafkaException as error:
            raise DeliveryError(
                f"topic {resource.name} takes records of at most its max.message.bytes, less "
                f"than a legal change can be; raising it to {MAX_MESSAGE_BYTES} failed: {error} "
                "(raise it by hand, or grant the bridge AlterConfigs on its topics)"
            ) from error
        log.info("raised max.message.bytes of %s to %d", resource.name, MAX_MESSAGE_BYTES)
