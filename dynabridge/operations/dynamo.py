"""DynamoDB for operator commands: a table's key schema, consistent Scan pages and GetItem, and
bounded reads of a stream shard. botocore errors leave it as :class:`OperationError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bridge.aws import AwsCallError, ResourceNotFound, call, describe_table, with_hint
from bridge.contract import ChangeEvent, Item
from bridge.reader import IteratorRequest, IteratorType, ShardReadError
from bridge.records import ShardSource, change_events
from bridge.streams import DynamoStreams
from dynabridge.operations.errors import OperationError
from dynabridge.operations.item_keys import KeyAttribute, KeySchema, ScalarType

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient

EMPTY_PAGES_TO_STOP = 3
"""An open shard answers empty pages at its end (and, on AWS, sometimes before it)."""


@dataclass(frozen=True, slots=True)
class TableInfo:
    table: str
    key_schema: KeySchema
    stream_arn: str | None
    item_count: int
    """DescribeTable's approximate count (refreshed about every six hours on AWS)."""


@dataclass(frozen=True, slots=True)
class ShardScan:
    events: list[ChangeEvent]
    records_read: int
    complete: bool
    """False when the record limit stopped the read before the shard's current end."""


class DynamoTables:
    def __init__(self, dynamodb: DynamoDBClient, streams: DynamoDBStreamsClient) -> None:
        self._dynamodb = dynamodb
        self._streams = DynamoStreams(streams)

    def describe(self, table: str) -> TableInfo:
        try:
            description = describe_table(self._dynamodb, table)
        except ResourceNotFound:
            raise OperationError(
                f"table {table!r} does not exist (check the name, aws.region and aws.endpoint_url)"
            ) from None
        except AwsCallError as error:
            raise _translated(error) from None
        schema = KeySchema(
            tuple(KeyAttribute(k.name, ScalarType(k.type)) for k in description.key_schema)
        )
        return TableInfo(table, schema, description.stream_arn, description.item_count)

    def pages(self, table: str, page_size: int = 1000) -> Iterator[list[Item]]:
        """Every item, by a strongly consistent paginated Scan."""
        kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True, "Limit": page_size}
        while True:
            page = self._call(self._dynamodb.scan, f"Scan {table}", **kwargs)
            yield list(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def item(self, table: str, keys: Item) -> Item | None:
        page = self._call(
            self._dynamodb.get_item,
            f"GetItem {table}",
            TableName=table,
            Key=keys,
            ConsistentRead=True,
        )
        found: Item | None = page.get("Item")
        return found

    def shard_events(
        self, source: ShardSource, after: str | None, limit: int, page_limit: int = 1000
    ) -> ShardScan:
        """Change events of a shard from TRIM_HORIZON (or after sequence ``after``), at most
        ``limit`` records. Versions are counted from 0 at the start position: equal to the
        bridge's own for a lineage root read from TRIM_HORIZON, an estimate otherwise."""
        request = (
            IteratorRequest(IteratorType.TRIM_HORIZON)
            if after is None
            else IteratorRequest(IteratorType.AFTER_SEQUENCE_NUMBER, after)
        )
        events: list[ChangeEvent] = []
        read, empty, version = 0, 0, 0
        try:
            iterator: str | None = self._streams.shard_iterator(
                source.stream_arn, source.shard_id, request
            )
            while iterator is not None and read < limit and empty < EMPTY_PAGES_TO_STOP:
                page = self._streams.records(iterator, min(page_limit, limit - read))
                batch, version = change_events(page.records, source, version)
                events.extend(batch)
                read += len(page.records)
                empty = 0 if page.records else empty + 1
                iterator = page.next_iterator
        except (ShardReadError, AwsCallError) as error:
            raise OperationError(f"reading shard {source.shard_id}: {error}") from None
        return ShardScan(events, read, complete=read < limit)

    def _call(self, method: Callable[..., Any], doing: str, **kwargs: Any) -> Any:
        try:
            return call(method, doing, **kwargs)
        except AwsCallError as error:
            raise _translated(error) from None


def _translated(error: AwsCallError) -> OperationError:
    return OperationError(
        with_hint(
            error,
            "check credentials and the IAM policy: dynamodb:DescribeTable, Scan, GetItem, "
            "dynamodb:GetShardIterator, GetRecords",
        )
    )
