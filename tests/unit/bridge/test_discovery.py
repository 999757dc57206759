"""StreamDiscovery against botocore's Stubber: real request validation, scripted answers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3  # noqa: TID251 - builds clients for the Stubber
import pytest
from botocore.stub import Stubber  # noqa: TID251 - scripted DynamoDB/Streams answers

from bridge.discovery import StreamDiscovery
from bridge.shards import (
    Shard,
    StreamError,
    StreamInfo,
    StreamNotEnabled,
    StreamUnavailable,
    TableNotFound,
)

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/2026-01-01T00:00:00.000"
CREDS = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Rig:
    def __init__(self) -> None:
        self.dynamodb: DynamoDBClient = boto3.client("dynamodb", **CREDS)  # type: ignore[call-overload]
        self.streams: DynamoDBStreamsClient = boto3.client("dynamodbstreams", **CREDS)  # type: ignore[call-overload]
        self.table_stub = Stubber(self.dynamodb)
        self.stream_stub = Stubber(self.streams)
        self.time = FakeTime()
        self.discovery = StreamDiscovery(
            self.dynamodb, self.streams, clock=self.time.clock, sleep=self.time.sleep
        )

    def page(self, shards: list[dict[str, Any]], last: str | None = None, **expected: Any) -> None:
        description: dict[str, Any] = {"StreamArn": ARN, "Shards": shards}
        if last is not None:
            description["LastEvaluatedShardId"] = last
        self.stream_stub.add_response(
            "describe_stream",
            {"StreamDescription": description},
            {"StreamArn": ARN, "Limit": 100, **expected},
        )


@pytest.fixture
def rig() -> Iterator[Rig]:
    rig = Rig()
    with rig.table_stub, rig.stream_stub:
        yield rig
        rig.table_stub.assert_no_pending_responses()
        rig.stream_stub.assert_no_pending_responses()


START = "1000000000000000000001"
END = "9000000000000000000009"


def sid(name: str) -> str:
    """A shard id long enough for the API model (28+ characters)."""
    return f"shardId-{name:0>20}"


def raw(name: str, parent: str | None = None, *, closed: bool = False) -> dict[str, Any]:
    numbers = {"StartingSequenceNumber": START}
    if closed:
        numbers["EndingSequenceNumber"] = END
    shard: dict[str, Any] = {"ShardId": sid(name), "SequenceNumberRange": numbers}
    if parent is not None:
        shard["ParentShardId"] = sid(parent)
    return shard


def table(stream: dict[str, Any] | None, arn: str | None = ARN) -> dict[str, Any]:
    description: dict[str, Any] = {
        "TableName": "orders",
        "KeySchema": [
            {"AttributeName": "sk", "KeyType": "RANGE"},
            {"AttributeName": "pk", "KeyType": "HASH"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "N"},
        ],
    }
    if stream is not None:
        description["StreamSpecification"] = stream
    if arn is not None:
        description["LatestStreamArn"] = arn
    return {"Table": description}


def test_describe_table_gives_stream_and_keys_hash_first(rig: Rig) -> None:
    spec = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    rig.table_stub.add_response("describe_table", table(spec), {"TableName": "orders"})
    info = rig.discovery.describe_table("orders")
    assert info == StreamInfo("orders", ARN, "NEW_IMAGE", ("pk", "sk"))


def test_missing_table_and_disabled_stream_are_named(rig: Rig) -> None:
    rig.table_stub.add_client_error("describe_table", "ResourceNotFoundException")
    with pytest.raises(TableNotFound, match="'orders' does not exist"):
        rig.discovery.describe_table("orders")
    rig.table_stub.add_response("describe_table", table({"StreamEnabled": False}))
    with pytest.raises(StreamNotEnabled, match="table 'orders' has no enabled stream"):
        rig.discovery.describe_table("orders")
    rig.table_stub.add_response("describe_table", table(None, arn=None))
    with pytest.raises(StreamNotEnabled):
        rig.discovery.describe_table("orders")


def test_shards_follow_every_page_and_keep_to_ten_calls_per_second(rig: Rig) -> None:
    rig.page([raw("a", closed=True), raw("b", "a")], last=sid("b"))
    rig.page([raw("c", "a")], last=sid("c"), ExclusiveStartShardId=sid("b"))
    rig.page([], ExclusiveStartShardId=sid("c"))
    shards = rig.discovery.shards(ARN)
    assert shards == [
        Shard(sid("a"), None, START, END),
        Shard(sid("b"), sid("a"), START, None),
        Shard(sid("c"), sid("a"), START, None),
    ]
    assert rig.time.sleeps == pytest.approx([0.1, 0.1])


def test_a_repeated_page_token_is_not_followed_forever(rig: Rig) -> None:
    rig.page([raw("a")], last=sid("a"))
    rig.page([raw("a")], last=sid("a"), ExclusiveStartShardId=sid("a"))
    with pytest.raises(StreamUnavailable, match="repeated"):
        rig.discovery.shards(ARN)


def test_child_lookup_uses_shard_filter_and_filters_what_comes_back(rig: Rig) -> None:
    shard_filter = {"Type": "CHILD_SHARDS", "ShardId": sid("a")}
    # An emulator that ignores the filter returns every shard.
    rig.page([raw("a", closed=True), raw("b", "a"), raw("x")], ShardFilter=shard_filter)
    assert [s.shard_id for s in rig.discovery.child_shards(ARN, sid("a"))] == [sid("b")]


def test_child_lookup_falls_back_to_the_full_listing_when_the_filter_is_refused(rig: Rig) -> None:
    rig.stream_stub.add_client_error("describe_stream", "ValidationException")
    rig.page([raw("a", closed=True), raw("b", "a")])
    rig.page([raw("a", closed=True), raw("b", "a"), raw("c", "a")])  # remembered: no second try
    assert [s.shard_id for s in rig.discovery.child_shards(ARN, sid("a"))] == [sid("b")]
    assert [s.shard_id for s in rig.discovery.child_shards(ARN, sid("a"))] == [sid("b"), sid("c")]


def test_errors_are_translated(rig: Rig) -> None:
    rig.stream_stub.add_client_error("describe_stream", "LimitExceededException")
    with pytest.raises(StreamUnavailable):
        rig.discovery.shards(ARN)
    rig.stream_stub.add_client_error("describe_stream", "InternalServerError", http_status_code=500)
    with pytest.raises(StreamUnavailable):
        rig.discovery.shards(ARN)
    rig.stream_stub.add_client_error("describe_stream", "AccessDeniedException")
    with pytest.raises(StreamError, match="IAM") as denied:
        rig.discovery.shards(ARN)
    assert not isinstance(denied.value, StreamUnavailable)
    rig.stream_stub.add_client_error("describe_stream", "ResourceNotFoundException")
    with pytest.raises(StreamNotEnabled, match="no longer exists"):
        rig.discovery.shards(ARN)


def test_a_shard_is_gone_only_when_get_shard_iterator_says_it_does_not_exist(rig: Rig) -> None:
    expected = {"StreamArn": ARN, "ShardId": sid("a"), "ShardIteratorType": "TRIM_HORIZON"}
    rig.stream_stub.add_client_error(
        "get_shard_iterator", "ResourceNotFoundException", expected_params=expected
    )
    assert rig.discovery.shard_gone(ARN, sid("a"))
    rig.stream_stub.add_response(
        "get_shard_iterator", {"ShardIterator": "x" * 40}, expected_params=expected
    )
    assert not rig.discovery.shard_gone(ARN, sid("a"))
    rig.stream_stub.add_client_error("get_shard_iterator", "LimitExceededException")
    with pytest.raises(StreamUnavailable):
        rig.discovery.shard_gone(ARN, sid("a"))
