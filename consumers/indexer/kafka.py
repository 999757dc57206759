"""The indexer's Kafka consumer: a group member with manual commits, translated to plain records.

Invariant owned here: librdkafka never commits or stores an offset by itself
(``enable.auto.commit=false``, ``enable.auto.offset.store=false``); the only commits are the
explicit, synchronous ones the loop asks for, with offsets from ``offsets.CommitTracker``.

Assignment strategy: ``cooperative-sticky``. A rebalance revokes only the partitions that move,
so the others keep flowing (and keep their pending retries) while a member joins or leaves; the
eager strategies (range, roundrobin) would stop every member and drop every in-flight batch on
each rebalance. Rebalance callbacks run inside ``consume``; the revoke callback commits what has
settled on the revoked partitions synchronously before librdkafka lets them go.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping, Sequence

import confluent_kafka  # noqa: TID251 - this is the consumer adapter
from confluent_kafka import KafkaError, KafkaException, TopicPartition  # noqa: TID251

from bridge.contract import MAX_RECORD_BYTES
from bridge.runtime.kafka_security import SecurityWatch
from bridge.runtime.settings import Settings
from consumers.indexer.records import CommitFailed, ConsumerError, Partition, Record
from consumers.indexer.worker import RebalanceListener

log = logging.getLogger(__name__)

CLIENT_ID = "dynabridge-indexer"
FETCH_MAX_BYTES = max(52_428_800, MAX_RECORD_BYTES)
"""librdkafka's default fetch.max.bytes (50 MiB), or a whole record if that is larger."""
RECEIVE_MARGIN_BYTES = 47_571_200
"""receive.message.max.bytes must exceed fetch.max.bytes by 512 bytes; this keeps librdkafka's
default (100 MB) above the default fetch."""


def consumer_config(settings: Settings) -> dict[str, object]:
    """librdkafka properties of the indexer's consumer (security from ``kafka.*``)."""
    indexer = settings.indexer
    return {
        **settings.kafka.client_config(),
        "client.id": CLIENT_ID,
        "group.id": indexer.group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": indexer.session_timeout_ms,
        "max.poll.interval.ms": indexer.max_poll_interval_ms,
        "partition.assignment.strategy": "cooperative-sticky",
        # A fetch returns a batch larger than these limits anyway; stating them keeps the largest
        # legal change (MAX_RECORD_BYTES, uncompressed if the producer did not compress) inside
        # the hard limit, receive.message.max.bytes.
        "fetch.max.bytes": FETCH_MAX_BYTES,
        "receive.message.max.bytes": FETCH_MAX_BYTES + RECEIVE_MARGIN_BYTES,
    }


class KafkaConsumer:
    """The :class:`consumers.indexer.worker.Consumer` over ``confluent_kafka.Consumer``."""

    def __init__(
        self,
        config: Mapping[str, object],
        topics: Sequence[str],
        watch: SecurityWatch | None = None,
    ) -> None:
        self._topics = list(topics)
        self._fatal: str | None = None
        self._watch = watch
        self._consumer = confluent_kafka.Consumer({**config, "error_cb": self._on_error})

    def _on_error(self, error: KafkaError) -> None:
        if error.fatal():
            self._fatal = error.str()
        if self._watch is not None:
            self._watch(error)
        log.warning("kafka: %s", error.str())

    def subscribe(self, listener: RebalanceListener) -> None:
        def on_assign(consumer: confluent_kafka.Consumer, tps: list[TopicPartition]) -> None:
            # Assign first, so the listener may pause partitions that are really ours.
            consumer.incremental_assign(tps)
            listener.on_assigned(_partitions(tps))

        def on_revoke(consumer: confluent_kafka.Consumer, tps: list[TopicPartition]) -> None:
            listener.on_revoked(_partitions(tps))

        def on_lost(consumer: confluent_kafka.Consumer, tps: list[TopicPartition]) -> None:
            listener.on_lost(_partitions(tps))

        self._consumer.subscribe(
            self._topics, on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost
        )

    def consume(self, max_records: int, timeout_s: float) -> list[Record]:
        try:
            messages = self._consumer.consume(num_messages=max_records, timeout=timeout_s)
        except KafkaException as error:
            self._raise_if_fatal(error)
            log.warning("kafka consume: %s", error)
            return []
        if self._watch is not None:
            self._watch.check()  # refused credentials or certificates: exit 2, not a retry loop
        if self._fatal is not None:
            raise ConsumerError(f"kafka consumer failed: {self._fatal}")
        records: list[Record] = []
        for message in messages:
            problem = message.error()
            if problem is not None:
                if problem.fatal():
                    raise ConsumerError(f"kafka consumer failed: {problem.str()}")
                if problem.code() != KafkaError._PARTITION_EOF:
                    log.warning("kafka: %s", problem.str())
                continue
            records.append(_record(message))
        return records

    def assignment(self) -> list[Partition]:
        return _partitions(self._consumer.assignment())

    def pause(self, partitions: Collection[Partition]) -> None:
        if partitions:
            self._consumer.pause(_topic_partitions(partitions))

    def resume(self, partitions: Collection[Partition]) -> None:
        if partitions:
            self._consumer.resume(_topic_partitions(partitions))

    def commit(self, offsets: Mapping[Partition, int]) -> None:
        tps = [TopicPartition(p.topic, p.partition, offset) for p, offset in offsets.items()]
        try:
            answered = self._consumer.commit(offsets=tps, asynchronous=False)
        except KafkaException as error:
            self._raise_if_fatal(error)
            raise CommitFailed(str(error)) from error
        failed = [tp for tp in answered or () if tp.error is not None]
        if failed:
            raise CommitFailed(
                ", ".join(f"{tp.topic}[{tp.partition}]: {tp.error}" for tp in failed)
            )

    def high_watermark(self, partition: Partition) -> int | None:
        tp = TopicPartition(partition.topic, partition.partition)
        try:
            watermarks = self._consumer.get_watermark_offsets(tp, cached=True)
        except KafkaException:
            return None
        if watermarks is None or watermarks[1] < 0:
            return None
        return int(watermarks[1])

    def close(self) -> None:
        """Leave the group (the revoke callback commits what settled), then release the client."""
        try:
            self._consumer.close()
        except KafkaException as error:
            log.warning("kafka close: %s", error)

    @staticmethod
    def _raise_if_fatal(error: KafkaException) -> None:
        kafka_error = error.args[0] if error.args else None
        if isinstance(kafka_error, KafkaError) and kafka_error.fatal():
            raise ConsumerError(f"kafka consumer failed: {kafka_error.str()}") from error


def _record(message: confluent_kafka.Message) -> Record:
    # Headers are kept as librdkafka hands them over (a list of (str, bytes) pairs): converting
    # each value on the hot path costs more than decoding small events, and only dead letters
    # ever read them.
    headers = message.headers()
    return Record(
        message.topic() or "",
        message.partition() or 0,
        message.offset() or 0,
        message.key(),
        message.value(),
        tuple(headers) if isinstance(headers, list) else (),  # type: ignore[arg-type]
        message.timestamp()[1],
    )


def _partitions(tps: Sequence[TopicPartition]) -> list[Partition]:
    return [Partition(tp.topic, tp.partition) for tp in tps]


def _topic_partitions(partitions: Collection[Partition]) -> list[TopicPartition]:
    return [TopicPartition(p.topic, p.partition) for p in partitions]
