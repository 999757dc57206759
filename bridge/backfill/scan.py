"""DynamoDB adapter for the backfill: DescribeTable and one Scan page, AWS errors translated.

The only backfill module calling DynamoDB for the table itself; everything it returns is plain
data (``bridge.aws.TableDescription``, :class:`ScanPage`), every error a BackfillError.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bridge.aws import (
    AwsCallError,
    AwsUnavailable,
    ResourceNotFound,
    TableDescription,
    call,
    describe_table,
    with_hint,
)
from bridge.backfill.errors import (
    BackfillError,
    ScanThrottled,
    ScanUnavailable,
    StreamNotEnabled,
    TableNotFound,
)
from bridge.contract import Item

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_THROTTLED = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
    }
)
_VIEWS_WITH_IMAGES = frozenset({"NEW_IMAGE", "NEW_AND_OLD_IMAGES"})


@dataclass(frozen=True, slots=True)
class ScanPage:
    items: list[Item]
    last_key: Item | None
    consumed_rcu: float


class DynamoTable:
    """The table being backfilled, through a boto3 ``dynamodb`` client."""

    def __init__(self, client: DynamoDBClient) -> None:
        self._client = client

    def describe(self, table: str) -> TableDescription:
        """The table's key and size; refuses a table without a stream that carries images."""
        try:
            description = describe_table(self._client, table)
        except ResourceNotFound:
            raise TableNotFound(
                f"table {table!r} does not exist (check the name and aws.region / aws.endpoint_url)"
            ) from None
        except AwsCallError as error:
            raise _translated(error) from error
        if description.stream_arn is None:
            raise StreamNotEnabled(
                f"table {table!r} has no stream: changes made during the scan would be lost. "
                "Enable it (StreamViewType NEW_AND_OLD_IMAGES or NEW_IMAGE), start `dynabridge "
                "bridge run` on the table, then run the backfill"
            )
        if description.view_type not in _VIEWS_WITH_IMAGES:
            raise StreamNotEnabled(
                f"table {table!r} streams {description.view_type}: the bridge needs "
                "NEW_IMAGE or NEW_AND_OLD_IMAGES, so the index could not follow changes"
            )
        return description

    def page(
        self,
        table: str,
        segment: int,
        total_segments: int,
        start_key: Item | None,
        *,
        limit: int | None,
        consistent: bool,
    ) -> ScanPage:
        kwargs: dict[str, Any] = {
            "TableName": table,
            "Segment": segment,
            "TotalSegments": total_segments,
            "ConsistentRead": consistent,
            "ReturnConsumedCapacity": "TOTAL",
        }
        if start_key is not None:
            kwargs["ExclusiveStartKey"] = start_key
        if limit is not None:
            kwargs["Limit"] = limit
        try:
            response: Any = call(self._client.scan, f"Scan {table} segment {segment}", **kwargs)
        except AwsCallError as error:
            raise _translated(error) from error
        capacity = response.get("ConsumedCapacity") or {}
        return ScanPage(
            items=response.get("Items", []),
            last_key=response.get("LastEvaluatedKey") or None,
            consumed_rcu=float(capacity.get("CapacityUnits", 0.0)),
        )


def _translated(error: AwsCallError) -> BackfillError:
    if error.code in _THROTTLED:
        return ScanThrottled(str(error))
    if isinstance(error, ResourceNotFound):
        return TableNotFound(f"{error}: the table no longer exists")
    if isinstance(error, AwsUnavailable):
        return ScanUnavailable(str(error))
    return BackfillError(
        with_hint(error, "the backfill needs dynamodb:DescribeTable and dynamodb:Scan on the table")
    )
