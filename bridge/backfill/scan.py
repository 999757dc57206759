"""DynamoDB adapter for the backfill: DescribeTable and one Scan page, botocore errors translated.

The only backfill module touching boto3's DynamoDB calls for the table itself; everything it
returns is plain data (:class:`TableShape`, :class:`ScanPage`), every error a BackfillError.
"""

from __future__ import annotations

import email.utils
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import (  # noqa: TID251 - the Scan adapter
    ClientError,
    ConnectionClosedError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from bridge.backfill.errors import (
    BackfillError,
    ScanThrottled,
    ScanUnavailable,
    StreamNotEnabled,
    TableNotFound,
)
from bridge.contract import Item
from bridge.discovery import error_code

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_THROTTLED = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
    }
)
_TRANSIENT = (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError)
_VIEWS_WITH_IMAGES = frozenset({"NEW_IMAGE", "NEW_AND_OLD_IMAGES"})


@dataclass(frozen=True, slots=True)
class TableShape:
    table: str
    key_names: tuple[str, ...]
    """Hash key, then range key if any (the KeySchema order)."""
    item_count: int
    """DynamoDB's estimate (refreshed about every six hours on AWS)."""
    size_bytes: int
    stream_arn: str
    server_now_s: float | None
    """DynamoDB's clock (the response's Date header), whole seconds; None if absent."""


@dataclass(frozen=True, slots=True)
class ScanPage:
    items: list[Item]
    last_key: Item | None
    consumed_rcu: float


class DynamoTable:
    """The table being backfilled, through a boto3 ``dynamodb`` client."""

    def __init__(self, client: DynamoDBClient) -> None:
        self._client = client

    def describe(self, table: str) -> TableShape:
        """The table's key and size; refuses a table without a stream that carries images."""
        try:
            response: Any = self._client.describe_table(TableName=table)
        except ClientError as error:
            if error_code(error) == "ResourceNotFoundException":
                raise TableNotFound(
                    f"table {table!r} does not exist (check the name and aws.region / "
                    "aws.endpoint_url)"
                ) from None
            raise _translated(error, f"DescribeTable {table}") from error
        except _TRANSIENT as error:
            raise ScanUnavailable(f"DescribeTable {table}: {error}") from error
        description = response["Table"]
        spec = description.get("StreamSpecification") or {}
        arn = description.get("LatestStreamArn")
        if not spec.get("StreamEnabled") or not arn:
            raise StreamNotEnabled(
                f"table {table!r} has no stream: changes made during the scan would be lost. "
                "Enable it (StreamViewType NEW_AND_OLD_IMAGES or NEW_IMAGE), start `dynabridge "
                "bridge run` on the table, then run the backfill"
            )
        if spec.get("StreamViewType") not in _VIEWS_WITH_IMAGES:
            raise StreamNotEnabled(
                f"table {table!r} streams {spec.get('StreamViewType')}: the bridge needs "
                "NEW_IMAGE or NEW_AND_OLD_IMAGES, so the index could not follow changes"
            )
        schema = sorted(description["KeySchema"], key=lambda k: k["KeyType"] != "HASH")
        return TableShape(
            table=table,
            key_names=tuple(k["AttributeName"] for k in schema),
            item_count=int(description.get("ItemCount", 0)),
            size_bytes=int(description.get("TableSizeBytes", 0)),
            stream_arn=str(arn),
            server_now_s=_server_time_s(response),
        )

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
            response: Any = self._client.scan(**kwargs)
        except ClientError as error:
            raise _translated(error, f"Scan {table} segment {segment}") from error
        except _TRANSIENT as error:
            raise ScanUnavailable(f"Scan {table} segment {segment}: {error}") from error
        capacity = response.get("ConsumedCapacity") or {}
        return ScanPage(
            items=response.get("Items", []),
            last_key=response.get("LastEvaluatedKey") or None,
            consumed_rcu=float(capacity.get("CapacityUnits", 0.0)),
        )


def _translated(error: ClientError, call: str) -> BackfillError:
    code = error_code(error)
    message = error.response.get("Error", {}).get("Message", "")
    status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
    if code in _THROTTLED:
        return ScanThrottled(f"{call}: {code}")
    if code == "ResourceNotFoundException":
        return TableNotFound(f"{call}: the table no longer exists")
    if status >= 500:
        return ScanUnavailable(f"{call}: {code} {message}")
    return BackfillError(
        f"{call}: {code} {message} (the backfill needs dynamodb:DescribeTable and dynamodb:Scan "
        "on the table)"
    )


def _server_time_s(response: Any) -> float | None:
    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if not date:
        return None
    try:
        return email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return None
