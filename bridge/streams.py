"""DynamoDB Streams adapter: GetShardIterator/GetRecords, botocore errors -> the reader's own.

The only module of the read path that touches boto3; the reader sees :class:`Page` and the
:class:`~bridge.reader.ShardReadError` tree, never a botocore exception (a fatal failure is a
``bridge.aws.AwsCallError``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botocore.exceptions import (  # noqa: TID251 - the Streams adapter
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from bridge.aws import error_code, translated
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

if TYPE_CHECKING:
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
    """The reader's exception for ``error``; a fatal one as ``bridge.aws.AwsCallError``."""
    if isinstance(error, ReadTimeoutError):
        return TimedOutError(f"{call}: {error}")
    if isinstance(error, _TRANSIENT):
        return ThrottledError(f"{call}: {error}")
    assert isinstance(error, ClientError)
    code = error_code(error)
    message = error.response.get("Error", {}).get("Message", "")
    kind = _ERRORS.get(code)
    return translated(error, call) if kind is None else kind(f"{call}: {code}: {message}")
