"""Helpers for the indexer's integration tests: topics, change streams, group offsets, indices."""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (  # noqa: TID251 - tests build real clients
    ConsumerGroupTopicPartitions,
    KafkaException,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient  # noqa: TID251
from confluent_kafka.admin._listoffsets import OffsetSpec  # noqa: TID251
from confluent_kafka.cimpl import NewTopic  # noqa: TID251

from bridge.contract import PARTITIONER, ChangeEvent, Encoder, EventName, headers, kafka_key
from bridge.runtime.settings import Settings
from consumers.indexer.main import run_indexer
from tests.oracle import expected_id, expected_source

BASE_VERSION = 1_700_000_000 * 1_000_000

LATEST = OffsetSpec.latest()  # type: ignore[no-untyped-call]
EARLIEST = OffsetSpec.earliest()  # type: ignore[no-untyped-call]


@dataclass
class Stream:
    """A table's change history, and the documents the index must end with."""

    table: str
    events: list[ChangeEvent]

    def expected(self) -> dict[str, dict[str, Any]]:
        final: dict[str, ChangeEvent] = {}
        for event in self.events:
            key = expected_id(event.keys)
            if key not in final or final[key].version < event.version:
                final[key] = event
        return {
            key: expected_source(e.new_image)
            for key, e in final.items()
            if e.event_name is not EventName.REMOVE and e.new_image is not None
        }


def change(table: str, item_id: str, version: int, name: EventName, **attrs: Any) -> ChangeEvent:
    keys = {"pk": {"S": item_id}}
    image = None
    if name is not EventName.REMOVE:
        image = {**keys, "v": {"N": str(version - BASE_VERSION)}, **attrs}
    return ChangeEvent(
        table=table,
        event_name=name,
        event_id=f"{item_id}-{version}",
        stream_arn=f"arn:aws:dynamodb:us-east-1:000000000000:table/{table}/stream/1",
        shard_id="shardId-1",
        sequence_number=str(10**20 + version - BASE_VERSION),
        approximate_creation_time_ms=int(time.time() * 1000),
        version=version,
        keys=keys,
        new_image=image,
        old_image=None,
    )


def random_stream(table: str, items: int, changes: int, seed: int = 7) -> Stream:
    """Inserts, updates and deletes (and re-inserts) over ``items`` ids, versions increasing."""
    rng = random.Random(seed)
    alive: set[str] = set()
    events = []
    for n in range(changes):
        item = f"item-{rng.randrange(items)}"
        version = BASE_VERSION + n + 1
        if item not in alive:
            name = EventName.INSERT
            alive.add(item)
        elif rng.random() < 0.2:
            name = EventName.REMOVE
            alive.discard(item)
        else:
            name = EventName.MODIFY
        payload = {"tags": {"SS": ["a", "b"]}, "note": {"S": "x" * rng.randrange(1, 200)}}
        events.append(change(table, item, version, name, **payload))
    return Stream(table, events)


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    futures = admin.create_topics(
        [NewTopic(topic, num_partitions=partitions, replication_factor=1)]
    )
    futures[topic].result(timeout=30)


def delete_topics(bootstrap: str, topics: Iterable[str]) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.delete_topics(list(topics), operation_timeout=10).values():
        with contextlib.suppress(KafkaException):  # cleanup: the DLQ topic may never have existed
            future.result(timeout=30)


def produce(
    bootstrap: str, topic: str, events: Iterable[ChangeEvent], timestamp_ms: int | None = None
) -> int:
    """Like the bridge (key, value, headers, partitioner); ``timestamp_ms`` sets the records'
    timestamps (default: now)."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "partitioner": PARTITIONER, "linger.ms": 20}
    )
    encoder = Encoder()
    count = 0
    for event in events:
        while True:
            try:
                producer.produce(
                    topic,
                    key=kafka_key(event.keys),
                    value=encoder.encode(event),
                    headers=list(headers(event)),
                    timestamp=timestamp_ms or 0,  # 0: now
                )
                break
            except BufferError:
                producer.poll(0.1)
        count += 1
    assert producer.flush(60) == 0
    return count


def produce_raw(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "partitioner": PARTITIONER})
    producer.produce(topic, key=key, value=value)
    assert producer.flush(30) == 0


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    parts = admin.list_topics(topic, timeout=10).topics[topic].partitions
    futures = admin.list_offsets({TopicPartition(topic, p): LATEST for p in parts})
    return {tp.partition: f.result(timeout=10).offset for tp, f in futures.items()}


def committed(bootstrap: str, group: str, topic: str) -> dict[int, int]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    request = [ConsumerGroupTopicPartitions(group)]
    result = admin.list_consumer_group_offsets(request)[group].result(timeout=10)
    return {
        tp.partition: tp.offset
        for tp in result.topic_partitions
        if tp.topic == topic and tp.offset >= 0
    }


def fully_committed(bootstrap: str, group: str, topic: str) -> bool:
    ends = end_offsets(bootstrap, topic)
    done = committed(bootstrap, group, topic)
    return all(done.get(p, 0) >= end for p, end in ends.items() if end > 0)


def group_members(bootstrap: str, group: str) -> tuple[str, int]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    description = admin.describe_consumer_groups([group])[group].result(timeout=10)
    return str(description.state), len(description.members)


def reset_to_earliest(bootstrap: str, group: str, topic: str) -> None:
    """Local-stack recipe A.5: the group must have no live member."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    parts = admin.list_topics(topic, timeout=10).topics[topic].partitions
    futures = admin.list_offsets({TopicPartition(topic, p): EARLIEST for p in parts})
    target = [
        TopicPartition(tp.topic, tp.partition, f.result(10).offset) for tp, f in futures.items()
    ]
    done = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, target)])
    result = done[group].result(timeout=10)
    failed = [tp for tp in result.topic_partitions if tp.error]
    assert not failed, f"offset reset refused (live members?): {failed}"


def http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - local stack
    request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def index_documents(url: str, index: str) -> dict[str, tuple[int, dict[str, Any]]]:
    """Every document of ``index``: id -> (version, source)."""
    http("POST", f"{url}/{index}/_refresh")
    status, body = http(
        "POST",
        f"{url}/{index}/_search",
        {"size": 10000, "version": True, "query": {"match_all": {}}},
    )
    assert status == 200, body
    return {h["_id"]: (h["_version"], h["_source"]) for h in body["hits"]["hits"]}


def sources(url: str, index: str) -> dict[str, dict[str, Any]]:
    return {key: source for key, (_, source) in index_documents(url, index).items()}


@dataclass
class Pipeline:
    bootstrap: str
    backend: str
    url: str
    table: str
    topic: str
    group: str
    index: str

    def settings(self, url: str | None = None, **indexer: Any) -> Settings:
        return Settings.model_validate(
            {
                "kafka": {"bootstrap_servers": self.bootstrap, "topic_prefix": "it."},
                "topics": {"partitions": 1},
                "indexer": {
                    "group_id": self.group,
                    "tables": [self.table],
                    "session_timeout_ms": 6000,
                    "batch_max_docs": 200,
                    "linger_ms": 20,
                    "retry_initial_backoff_s": 0.2,
                    "retry_max_backoff_s": 2.0,
                    "shutdown_timeout_s": 5.0,
                    **indexer,
                },
                "search": {
                    "backend": self.backend,
                    "hosts": [url or self.url],
                    "index_prefix": "it-",
                    "request_timeout_s": 5,
                    "index_settings": {"number_of_replicas": 0},
                },
                "metrics": {"port": 0},
            }
        )

    def done(self) -> bool:
        return fully_committed(self.bootstrap, self.group, self.topic)


class Running:
    """``run_indexer`` in a thread, stopped like SIGTERM would stop it."""

    def __init__(self, settings: Settings) -> None:
        self.stop = threading.Event()
        self.code: int | None = None
        self.thread = threading.Thread(target=self._run, args=(settings,), daemon=True)
        self.thread.start()

    def _run(self, settings: Settings) -> None:
        self.code = run_indexer(settings, self.stop)

    def finish(self, timeout_s: float = 30) -> int | None:
        self.stop.set()
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), "indexer did not stop within its shutdown timeout"
        return self.code
