"""Every legal change is published: a MODIFY of a 400 KB item of each worst shape (tests/
worst_items.py), both images, goes through the bridge's producer into a topic the bridge set
up, comes out of the indexer's consumer byte for byte, and through the indexer's dead-letter
producer into the dead-letter topic. Real Kafka from the local stack.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Collection, Iterator

import pytest
from confluent_kafka import KafkaException  # noqa: TID251 - tests set up and clean up topics
from confluent_kafka.admin import AdminClient  # noqa: TID251
from confluent_kafka.admin._config import ConfigResource  # noqa: TID251
from confluent_kafka.admin._resource import ResourceType  # noqa: TID251
from confluent_kafka.cimpl import NewTopic  # noqa: TID251

from bridge.contract import (
    MAX_RECORD_BYTES,
    ChangeEvent,
    Encoder,
    EventName,
    decode,
    dlq_topic,
    topic_name,
)
from bridge.producer import KafkaPublisher, ensure_topics
from bridge.runtime.settings import KafkaSettings, Settings, TopicSettings
from consumers.indexer.dlq import DeadLetterProducer, ensure_dlq_topics
from consumers.indexer.kafka import KafkaConsumer, consumer_config
from consumers.indexer.records import DeadLetter, Partition, Record
from tests.polling import wait_for
from tests.worst_items import MAX_ITEM_BYTES, SHAPES, item_size

TABLE = "worst"
OLD_LIMIT = 4 * 1024 * 1024  # what topics were created with before


class Listener:
    def on_assigned(self, partitions: Collection[Partition]) -> None: ...
    def on_revoked(self, partitions: Collection[Partition]) -> None: ...
    def on_lost(self, partitions: Collection[Partition]) -> None: ...


@pytest.fixture
def prefix(kafka_bootstrap: str, unique_name: Callable[[str], str]) -> Iterator[str]:
    prefix = unique_name("worst") + "."
    yield prefix
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    topic = topic_name(prefix, TABLE)
    for future in admin.delete_topics([topic, dlq_topic(topic)]).values():
        with contextlib.suppress(KafkaException):  # a topic the test never created
            future.result(timeout=30)


def _event(shape: str) -> ChangeEvent:
    item = SHAPES[shape]()
    assert item_size(item) <= MAX_ITEM_BYTES
    keys = {"pk": {"S": shape}}
    new = {**item, **keys}
    return ChangeEvent(
        table=TABLE,
        event_name=EventName.MODIFY,
        event_id=f"event-{shape}",
        stream_arn="arn:aws:dynamodb:us-east-1:1:table/worst/stream/x",
        shard_id="shardId-00000000000000000000-00000001",
        sequence_number="1" * 21,
        approximate_creation_time_ms=int(time.time()) * 1000,
        version=int(time.time()) * 1_000_000,
        keys=keys,
        new_image=new,
        old_image=new,
    )


def _max_message_bytes(admin: AdminClient, topic: str) -> int:
    resource = ConfigResource(ResourceType.TOPIC, topic)
    entries = admin.describe_configs([resource])[resource].result(timeout=30)
    return int(entries["max.message.bytes"].value)


def _consume(kafka: KafkaSettings, topic: str, count: int) -> list[Record]:
    settings = Settings.model_validate(
        {"kafka": kafka.model_dump(), "indexer": {"group_id": f"{topic}-check"}}
    )
    consumer = KafkaConsumer(consumer_config(settings), [topic])
    consumer.subscribe(Listener())
    records: list[Record] = []

    def all_read() -> bool:
        records.extend(consumer.consume(10, 1.0))
        return len(records) >= count

    try:
        wait_for(all_read, 180, f"{count} records read back from {topic}")
    finally:
        consumer.close()
    return records


def test_a_modify_of_every_worst_shape_is_published_consumed_and_dead_lettered(
    kafka_bootstrap: str, prefix: str
) -> None:
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix)
    topics = TopicSettings(partitions=2, replication_factor=1)
    topic = topic_name(prefix, TABLE)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    config = {"max.message.bytes": str(OLD_LIMIT)}
    admin.create_topics([NewTopic(topic, 2, 1, config=config)])[topic].result(timeout=30)

    ensure_topics(kafka, topics, [TABLE])  # an existing topic's smaller limit is raised
    assert _max_message_bytes(admin, topic) == MAX_RECORD_BYTES

    encoder = Encoder()
    events = {shape: _event(shape) for shape in SHAPES}
    values = {shape: encoder.encode(event) for shape, event in events.items()}
    largest = max(len(value) for value in values.values())
    assert largest > 50 * 1024 * 1024, "the worst shape is no longer worst: check worst_items"
    assert largest < MAX_RECORD_BYTES
    reports: dict[str, str | None] = {}
    publisher = KafkaPublisher(kafka, encoder)
    for shape, event in events.items():
        publisher.publish(event, functools.partial(reports.__setitem__, shape))
    assert publisher.flush(180) == 0
    assert reports == dict.fromkeys(SHAPES), reports

    records = _consume(kafka, topic, len(SHAPES))
    by_shape = {decode(record.value or b"").keys["pk"]["S"]: record for record in records}
    assert sorted(by_shape) == sorted(SHAPES)
    for shape, record in by_shape.items():
        assert record.value == values[shape], f"{shape}: not the bytes the bridge encoded"

    ensure_dlq_topics(kafka, topics, [topic])
    letters = [
        DeadLetter(record, "test", f"{shape} dead-lettered on purpose", 400, "index", 1)
        for shape, record in by_shape.items()
    ]
    DeadLetterProducer(kafka).publish(letters)
    dead = _consume(kafka, dlq_topic(topic), len(letters))
    assert sorted(record.value or b"" for record in dead) == sorted(values.values())
