"""A pipeline built by hand for the operator commands' integration tests."""

from __future__ import annotations

import functools
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from click.testing import CliRunner, Result
from confluent_kafka import Consumer, Producer  # noqa: TID251 - tests build real clients
from confluent_kafka.admin import AdminClient  # noqa: TID251 - tests build real clients
from confluent_kafka.cimpl import NewTopic  # noqa: TID251 - tests build real clients

from bridge.contract import PARTITIONER, ChangeEvent, Encoder, Item, headers, kafka_key
from bridge.lease_store import DynamoLeaseStore
from bridge.leases import Lease, checkpointed, new_lease, renewed
from bridge.records import ShardSource
from bridge.runtime.settings import KafkaSettings, SearchSettings
from bridge.runtime.settings import SearchBackend as BackendName
from consumers.indexer.backend import build_backend
from consumers.indexer.documents import build_action
from dynabridge.cli import main
from dynabridge.operations.dynamo import DynamoTables
from dynabridge.operations.kafka_admin import KafkaAdmin

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient


@dataclass
class Pipeline:
    dynamodb: DynamoDBClient
    streams: DynamoDBStreamsClient
    kafka: str
    search_url: str
    backend_name: BackendName
    table: str
    prefix: str
    group: str
    lease_table: str
    config: Path
    produced: list[tuple[int, int]] = field(default_factory=list)
    """(partition, offset) of every record published, in publish order."""

    @property
    def topic(self) -> str:
        return self.prefix + self.table

    @property
    def index(self) -> str:
        return self.table  # search.index_prefix is empty

    def run(self, *args: str) -> Result:
        return CliRunner().invoke(main, [*args, "--config", str(self.config)])

    def put(self, item: Item) -> None:
        self.dynamodb.put_item(TableName=self.table, Item=item)

    def stream_events(self) -> list[ChangeEvent]:
        arn = self.dynamodb.describe_table(TableName=self.table)["Table"]["LatestStreamArn"]
        shard = self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
        source = ShardSource(self.table, arn, shard["ShardId"])
        return DynamoTables(self.dynamodb, self.streams).shard_events(source, None, 10_000).events

    def create_topic(self, partitions: int) -> None:
        admin = AdminClient({"bootstrap.servers": self.kafka})
        future = admin.create_topics([NewTopic(self.topic, partitions, 1)])[self.topic]
        future.result(timeout=30)

    def publish(self, events: list[ChangeEvent], timestamps_ms: list[int] | None = None) -> None:
        """Produce like the bridge: contract value, key, headers, murmur2 partitioner."""
        producer = Producer({"bootstrap.servers": self.kafka, "partitioner": PARTITIONER})
        encoder = Encoder()

        delivered: dict[int, tuple[int, int]] = {}

        def report(index: int, error: Any, message: Any) -> None:
            assert error is None, error
            delivered[index] = (message.partition(), message.offset())

        for i, event in enumerate(events):
            producer.produce(
                self.topic,
                encoder.encode(event),
                kafka_key(event.keys),
                headers=headers(event),  # type: ignore[arg-type]  # list[tuple[str, bytes]]
                timestamp=timestamps_ms[i] if timestamps_ms else event.approximate_creation_time_ms,
                on_delivery=functools.partial(report, i),
            )
        assert producer.flush(30) == 0
        self.produced += [delivered[i] for i in range(len(events))]  # in produce order

    def index_events(self, events: list[ChangeEvent]) -> None:
        backend = build_backend(SearchSettings(backend=self.backend_name, hosts=[self.search_url]))
        try:
            results = backend.bulk([build_action(event, "") for event in events])
            assert all(200 <= r.status < 300 for r in results), results
        finally:
            backend.close()

    def commit(self, offsets: dict[int, int]) -> None:
        admin = KafkaAdmin(KafkaSettings(bootstrap_servers=self.kafka))
        try:
            admin.alter(self.group, self.topic, offsets)
        finally:
            admin.close()

    def committed(self) -> dict[int, int | None]:
        admin = KafkaAdmin(KafkaSettings(bootstrap_servers=self.kafka))
        try:
            return admin.committed(self.group, self.topic, admin.partitions(self.topic))
        finally:
            admin.close()

    def lease(self, checkpoint: str, owner: str | None = "worker-a") -> Lease:
        """A lease row for the table's one shard, as the bridge writes it."""
        store = DynamoLeaseStore(self.dynamodb, self.lease_table)
        store.ensure_table()
        arn = self.dynamodb.describe_table(TableName=self.table)["Table"]["LatestStreamArn"]
        shard = self.streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
        lease = new_lease(self.table, arn, shard["ShardId"], (), "TRIM_HORIZON", owner)
        assert store.create(lease)
        if checkpoint != "TRIM_HORIZON":
            moved = checkpointed(lease, checkpoint, 1)
            assert store.replace(lease, moved)
            lease = moved
        return lease

    def renew(self, lease: Lease) -> Lease:
        store = DynamoLeaseStore(self.dynamodb, self.lease_table)
        assert store.replace(lease, renewed(lease))
        return renewed(lease)

    def lease_checkpoint(self, lease: Lease, checkpoint: str) -> Lease:
        store = DynamoLeaseStore(self.dynamodb, self.lease_table)
        moved = checkpointed(lease, checkpoint, lease.last_version + 1)
        assert store.replace(lease, moved)
        return moved

    def member(self) -> Consumer:
        """A live member of the indexer group, holding its partitions (close() to leave)."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.kafka,
                "group.id": self.group,
                "session.timeout.ms": 6000,
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([self.topic])
        for _ in range(60):
            consumer.poll(0.5)
            if consumer.assignment():
                return consumer
        consumer.close()
        raise AssertionError("the test consumer never got an assignment")

    def refresh(self) -> None:
        _http("POST", f"{self.search_url}/{self.index}/_refresh")

    def delete_document(self, doc_id: str) -> None:
        _http(
            "DELETE", f"{self.search_url}/{self.index}/_doc/{urllib.parse.quote(doc_id, safe='')}"
        )


def _http(method: str, url: str) -> None:
    request = urllib.request.Request(url, method=method)  # noqa: S310 - the local stack
    urllib.request.urlopen(request, timeout=30).close()  # noqa: S310 - the local stack
