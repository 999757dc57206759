"""Each server of the local stack works through the client the project uses with it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from confluent_kafka import Consumer, Producer  # noqa: TID251
from confluent_kafka.admin import AdminClient  # noqa: TID251
from confluent_kafka.cimpl import NewTopic  # noqa: TID251
from elasticsearch import Elasticsearch  # noqa: TID251
from opensearchpy import OpenSearch  # noqa: TID251

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient

pytestmark = pytest.mark.integration

DOCUMENT = {"pk": "order#1", "status": "shipped", "total": 42}


def test_kafka_produce_then_consume(
    kafka_bootstrap: str, unique_name: Callable[[str], str]
) -> None:
    topic, group = unique_name("smoke"), unique_name("smoke-group")
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(10)

    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    producer.produce(topic, key=b"order#1", value=b'{"status":"shipped"}', headers={"t": b"orders"})
    assert producer.flush(10) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    try:
        consumer.subscribe([topic])
        message = None
        for _ in range(30):
            message = consumer.poll(1.0)
            if message is not None:
                break
        assert message is not None, "no message consumed within 30 s"
        assert message.error() is None
        assert (message.key(), message.value()) == (b"order#1", b'{"status":"shipped"}')
        assert message.headers() == [("t", b"orders")]
        assert (message.partition(), message.offset()) == (0, 0)
    finally:
        consumer.close()
        admin.delete_topics([topic])


@pytest.fixture
def es(es_url: str) -> Iterator[Elasticsearch]:
    client = Elasticsearch(es_url, request_timeout=30)
    yield client
    client.close()


@pytest.fixture
def opensearch(opensearch_url: str) -> Iterator[OpenSearch]:
    client = OpenSearch(hosts=[opensearch_url], timeout=30)
    yield client
    client.close()


def test_elasticsearch_index_get_search(
    es: Elasticsearch, unique_name: Callable[[str], str]
) -> None:
    index = unique_name("smoke")
    es.indices.create(index=index, settings={"number_of_shards": 1, "number_of_replicas": 0})
    try:
        es.index(index=index, id="order#1", document=DOCUMENT, refresh=True)
        assert es.get(index=index, id="order#1")["_source"] == DOCUMENT
        hits = es.search(index=index, query={"match": {"status": "shipped"}})["hits"]["hits"]
        assert [(h["_id"], h["_source"]) for h in hits] == [("order#1", DOCUMENT)]
        # The integ-test-zip lacks the rest-root module, so GET / (es.info()) answers 405.
        nodes = es.nodes.info(node_id="_local", metric="plugins")["nodes"]
        assert all(node["version"].startswith("9.") for node in nodes.values())
    finally:
        es.indices.delete(index=index)


def test_opensearch_index_get_search(
    opensearch: OpenSearch, unique_name: Callable[[str], str]
) -> None:
    index = unique_name("smoke")
    body = {"settings": {"number_of_shards": 1, "number_of_replicas": 0}}
    opensearch.indices.create(index=index, body=body)
    try:
        opensearch.index(index=index, id="order#1", body=DOCUMENT, refresh=True)
        assert opensearch.get(index=index, id="order#1")["_source"] == DOCUMENT
        query = {"query": {"match": {"status": "shipped"}}}
        hits = opensearch.search(index=index, body=query)["hits"]["hits"]
        assert [(h["_id"], h["_source"]) for h in hits] == [("order#1", DOCUMENT)]
        assert opensearch.info()["version"]["distribution"] == "opensearch"
    finally:
        opensearch.indices.delete(index=index)


def test_dynamodb_stream_records_changes(
    dynamodb: DynamoDBClient,
    dynamodbstreams: DynamoDBStreamsClient,
    unique_name: Callable[[str], str],
) -> None:
    table = unique_name("smoke")
    created = dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )
    try:
        stream_arn = created["TableDescription"]["LatestStreamArn"]
        dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}, "n": {"N": "1"}})
        dynamodb.put_item(TableName=table, Item={"pk": {"S": "a"}, "n": {"N": "2"}})
        dynamodb.delete_item(TableName=table, Key={"pk": {"S": "a"}})

        stream = dynamodbstreams.describe_stream(StreamArn=stream_arn)["StreamDescription"]
        shards = stream["Shards"]
        iterator = dynamodbstreams.get_shard_iterator(
            StreamArn=stream_arn, ShardId=shards[0]["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        records = dynamodbstreams.get_records(ShardIterator=iterator)["Records"]

        changes = [
            (r["eventName"], r["dynamodb"].get("OldImage"), r["dynamodb"].get("NewImage"))
            for r in records
        ]
        assert changes == [
            ("INSERT", None, {"pk": {"S": "a"}, "n": {"N": "1"}}),
            ("MODIFY", {"pk": {"S": "a"}, "n": {"N": "1"}}, {"pk": {"S": "a"}, "n": {"N": "2"}}),
            ("REMOVE", {"pk": {"S": "a"}, "n": {"N": "2"}}, None),
        ]
        assert all(r["dynamodb"]["Keys"] == {"pk": {"S": "a"}} for r in records)
        sequence_numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
        assert sequence_numbers == sorted(sequence_numbers)
    finally:
        dynamodb.delete_table(TableName=table)
