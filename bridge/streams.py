"""DynamoDB Streams adapter: GetShardIterator/GetRecords, botocore errors -> the reader's own.

The only module of the read path that touches boto3; the reader sees :class:`Page` and the
:class:`~bridge.reader.ShardReadError` tree, never a botocore exception.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3  # noqa: TID251 - the Streams adapter
from botocore.config import Config  # noqa: TID251 - the Streams adapter
from botocore.exceptions import (  # noqa: TID251 - the Streams adapter
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from bridge.discovery import error_code
from bridge.reader import (
    ExpiredIteratorError,
    IteratorRequest,
    Page,
    ShardGoneError,
    ShardReadError,
    ThrottledError,
    TimedOutError,
    TrimmedDataError,
)
from bridge.settings import AwsSettings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient

_ERRORS: dict[str, type[ShardReadError]] = {
    "ExpiredIteratorException": ExpiredIteratorError,
    "TrimmedDataAccessException": TrimmedDataError,
    "ResourceNotFoundException": ShardGoneError,
    "LimitExceededException": ThrottledError,
    "ThrottlingException": ThrottledError,
    "ProvisionedThroughputExceededException": ThrottledError,
    "RequestLimitExceeded": ThrottledError,
    # botocore already retried these; backing off here keeps the loop (and the heartbeat) alive.
    "InternalServerError": ThrottledError,
    "ServiceUnavailable": ThrottledError,
}
_TRANSIENT = (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError)


STREAMS_READ_TIMEOUT_S = 10
"""A GetRecords page (at most 1 MB) that takes this long is not coming: the reader backs off and
asks for a smaller page instead of blocking its loop (every other shard of the worker waits)."""
STREAMS_ATTEMPTS = 2
"""botocore's own attempts per Streams call; a GetRecords blocks at most this many connect +
read timeouts (30 s, below ``bridge.stall_timeout_s``), then the reader's jittered backoff takes
over. Retrying the same oversized page more often only repeats the timeout."""


def aws_clients(aws: AwsSettings) -> tuple[DynamoDBClient, DynamoDBStreamsClient]:
    """DynamoDB and Streams clients: standard credential chain, bounded retries and timeouts."""
    tables = Config(
        retries={"max_attempts": 5, "mode": "standard"},
        connect_timeout=5,
        read_timeout=20,
        max_pool_connections=20,
    )
    streams = tables.merge(
        Config(
            retries={"total_max_attempts": STREAMS_ATTEMPTS, "mode": "standard"},
            read_timeout=STREAMS_READ_TIMEOUT_S,
        )
    )
    common: dict[str, Any] = {"region_name": aws.region}
    if aws.endpoint_url:
        common["endpoint_url"] = aws.endpoint_url
    session = boto3.session.Session()
    return (
        session.client("dynamodb", config=tables, **common),
        session.client("dynamodbstreams", config=streams, **common),
    )


class DynamoStreams:
    """:class:`bridge.reader.StreamsClient` over a boto3 ``dynamodbstreams`` client."""

    def __init__(self, client: DynamoDBStreamsClient) -> None:
        self._client = client

    def shard_iterator(self, stream_arn: str, shard_id: str, request: IteratorRequest) -> str:
        kwargs: dict[str, Any] = {
            "StreamArn": stream_arn,
            "ShardId": shard_id,
            "ShardIteratorType": request.kind.value,
        }
        if request.sequence_number is not None:
            kwargs["SequenceNumber"] = request.sequence_number
        try:
            response = self._client.get_shard_iterator(**kwargs)
        except (ClientError, *_TRANSIENT) as error:
            raise _translated(error, f"GetShardIterator {shard_id}") from error
        iterator = response.get("ShardIterator")
        if not iterator:
            raise ShardGoneError(f"GetShardIterator {shard_id} returned no iterator")
        return iterator

    def records(self, iterator: str, limit: int) -> Page:
        try:
            response = self._client.get_records(ShardIterator=iterator, Limit=limit)
        except (ClientError, *_TRANSIENT) as error:
            raise _translated(error, "GetRecords") from error
        records: list[Any] = response.get("Records", [])
        return Page(records, response.get("NextShardIterator"))


def _translated(error: Exception, call: str) -> Exception:
    """The reader's exception for ``error``, or ``error`` itself when it is fatal."""
    if isinstance(error, ReadTimeoutError):
        return TimedOutError(f"{call}: {error}")
    if isinstance(error, _TRANSIENT):
        return ThrottledError(f"{call}: {error}")
    assert isinstance(error, ClientError)
    code = error_code(error)
    message = error.response.get("Error", {}).get("Message", "")
    kind = _ERRORS.get(code)
    return error if kind is None else kind(f"{call}: {code}: {message}")
