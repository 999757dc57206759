"""The lease table in DynamoDB: one row per shard, every write conditional on the lease counter.

Rows are replaced whole (PutItem) only if ``lease_counter`` and ``lease_owner`` still hold what
the writer read, which makes each row a compare-and-set register. AWS errors (``bridge.aws``)
leave this module only as ``LeaseTableError`` / ``LeaseTableUnavailable``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bridge.aws import (
    AwsCallError,
    AwsUnavailable,
    ConditionFailed,
    ResourceInUse,
    ResourceNotFound,
    call,
    with_hint,
)
from bridge.leases import BACKFILL_ROW_PREFIX, Lease, LeaseTableError, LeaseTableUnavailable
from bridge.load import ShardLoad

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger(__name__)

HASH_KEY = "lease_key"


class DynamoLeaseStore:
    def __init__(
        self,
        client: DynamoDBClient,
        table_name: str,
        *,
        active_timeout_s: float = 60.0,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        self._table = table_name
        self._active_timeout_s = active_timeout_s
        self._wall_clock = wall_clock  # only for the informational updated_at attribute
        self._sleep = sleep

    def ensure_table(self) -> None:
        """Create the table (on demand billing) if missing; wait until it is ACTIVE."""
        try:
            description = self._call(self._client.describe_table, TableName=self._table)["Table"]
        except LeaseTableError as exc:
            if not isinstance(exc.__cause__, ResourceNotFound):
                raise
            self._create_table()
            description = self._wait_active()
        if description.get("TableStatus") != "ACTIVE":
            description = self._wait_active()
        hash_keys = [k["AttributeName"] for k in description["KeySchema"] if k["KeyType"] == "HASH"]
        if hash_keys != [HASH_KEY] or len(description["KeySchema"]) != 1:
            raise LeaseTableError(
                f"table {self._table!r} exists but is not a dynabridge lease table (its key is "
                f"{hash_keys}, expected {HASH_KEY!r} alone): set bridge.lease_table to another name"
            )

    def leases(self) -> list[Lease]:
        rows: list[Lease] = []
        kwargs: dict[str, Any] = {"TableName": self._table, "ConsistentRead": True}
        while True:
            page = self._call(self._client.scan, **kwargs)
            rows.extend(
                _lease(item)
                for item in page.get("Items", [])
                if not item[HASH_KEY]["S"].startswith(BACKFILL_ROW_PREFIX)
            )
            if "LastEvaluatedKey" not in page:
                return rows
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def create(self, lease: Lease) -> bool:
        return self._put(lease, "attribute_not_exists(#key)", {"#key": HASH_KEY}, {})

    def replace(self, old: Lease, new: Lease) -> bool:
        if old.lease_key != new.lease_key:
            raise ValueError(f"cannot replace {old.lease_key} with {new.lease_key}")
        condition = "#counter = :counter AND " + (
            "attribute_not_exists(#owner)" if old.owner is None else "#owner = :owner"
        )
        values: dict[str, Any] = {":counter": {"N": str(old.counter)}}
        if old.owner is not None:
            values[":owner"] = {"S": old.owner}
        names = {"#counter": "lease_counter", "#owner": "lease_owner"}
        return self._put(new, condition, names, values)

    def delete(self, lease: Lease) -> bool:
        try:
            self._call(
                self._client.delete_item,
                TableName=self._table,
                Key={HASH_KEY: {"S": lease.lease_key}},
                ConditionExpression="#counter = :counter",
                ExpressionAttributeNames={"#counter": "lease_counter"},
                ExpressionAttributeValues={":counter": {"N": str(lease.counter)}},
            )
        except ConditionFailed:
            return False
        return True

    # -- internals ----------------------------------------------------------------------

    def _put(
        self, lease: Lease, condition: str, names: dict[str, str], values: dict[str, Any]
    ) -> bool:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Item": _item(lease, self._wall_clock()),
            "ConditionExpression": condition,
            "ExpressionAttributeNames": names,
        }
        if values:
            kwargs["ExpressionAttributeValues"] = values
        try:
            self._call(self._client.put_item, **kwargs)
        except ConditionFailed:
            return False
        return True

    def _create_table(self) -> None:
        try:
            self._call(
                self._client.create_table,
                TableName=self._table,
                AttributeDefinitions=[{"AttributeName": HASH_KEY, "AttributeType": "S"}],
                KeySchema=[{"AttributeName": HASH_KEY, "KeyType": "HASH"}],
                BillingMode="PAY_PER_REQUEST",
            )
            log.info("created lease table %s", self._table)
        except LeaseTableError as exc:
            # Another worker created it first: fine, wait for it like for our own.
            if not isinstance(exc.__cause__, ResourceInUse):
                raise

    def _wait_active(self) -> Any:
        deadline = time.monotonic() + self._active_timeout_s
        delay_s = 0.1
        while True:
            try:
                table = self._call(self._client.describe_table, TableName=self._table)["Table"]
                if table.get("TableStatus") == "ACTIVE":
                    return table
            except LeaseTableError as exc:
                # Just created: may not be visible yet.
                if not isinstance(exc.__cause__, ResourceNotFound):
                    raise
            if time.monotonic() >= deadline:
                raise LeaseTableUnavailable(
                    f"lease table {self._table!r} not ACTIVE after {self._active_timeout_s} s"
                )
            self._sleep(delay_s)
            delay_s = min(delay_s * 2, 2.0)

    def _call(self, method: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return call(method, f"lease table {self._table!r}", **kwargs)
        except ConditionFailed:
            raise  # not an error: the caller's answer is False
        except AwsUnavailable as exc:
            raise LeaseTableUnavailable(f"{exc}; retrying later") from exc
        except AwsCallError as exc:
            raise LeaseTableError(
                with_hint(
                    exc,
                    "the bridge needs dynamodb:DescribeTable, CreateTable, Scan, PutItem and "
                    "DeleteItem on bridge.lease_table",
                )
            ) from exc


def _item(lease: Lease, updated_at: float) -> dict[str, Any]:
    item: dict[str, Any] = {
        HASH_KEY: {"S": lease.lease_key},
        "table_name": {"S": lease.table},
        "stream_arn": {"S": lease.stream_arn},
        "shard_id": {"S": lease.shard_id},
        "parent_shard_ids": {"L": [{"S": parent} for parent in lease.parent_shard_ids]},
        "lease_counter": {"N": str(lease.counter)},
        "checkpoint": {"S": lease.checkpoint},
        "last_version": {"N": str(lease.last_version)},
        "gaps": {"L": [{"S": gap} for gap in lease.gaps]},
        "updated_at": {"N": f"{updated_at:.3f}"},  # for operators; never used to judge expiry
        # The owner's measure of the shard, for balancing and scaling (bridge/load.py).
        "read_per_s": {"N": f"{lease.load.read_per_s:.3f}"},
        "busy": {"BOOL": lease.load.busy},
    }
    if lease.owner is not None:
        item["lease_owner"] = {"S": lease.owner}
    if lease.load.unread_since_ms is not None:
        item["unread_since_ms"] = {"N": str(lease.load.unread_since_ms)}
    if lease.released_by is not None:
        item["released_by"] = {"S": lease.released_by}
    return item


def _load(item: dict[str, Any]) -> ShardLoad:
    """A row's load; rows written before these attributes existed read as idle."""
    since = item.get("unread_since_ms")
    return ShardLoad(
        read_per_s=float(item.get("read_per_s", {}).get("N", "0")),
        unread_since_ms=None if since is None else int(since["N"]),
        busy=bool(item.get("busy", {}).get("BOOL", False)),
    )


def _lease(item: dict[str, Any]) -> Lease:
    try:
        return Lease(
            lease_key=item[HASH_KEY]["S"],
            table=item["table_name"]["S"],
            stream_arn=item["stream_arn"]["S"],
            shard_id=item["shard_id"]["S"],
            parent_shard_ids=tuple(p["S"] for p in item.get("parent_shard_ids", {}).get("L", [])),
            owner=item["lease_owner"]["S"] if "lease_owner" in item else None,
            counter=int(item["lease_counter"]["N"]),
            checkpoint=item["checkpoint"]["S"],
            last_version=int(item["last_version"]["N"]),
            gaps=tuple(gap["S"] for gap in item.get("gaps", {}).get("L", [])),
            load=_load(item),
            released_by=item["released_by"]["S"] if "released_by" in item else None,
        )
    except (KeyError, ValueError) as exc:
        raise LeaseTableError(
            f"row {item.get(HASH_KEY)} is not a dynabridge lease (missing or bad {exc}): the "
            "lease table is shared with something else; give bridge.lease_table its own table"
        ) from None
