"""The demo's DynamoDB adapter: create the sample table with its stream, apply changes, drop it.

The only demo module importing boto3; botocore errors leave it as :class:`DemoError`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Final

import boto3  # noqa: TID251 - the demo's DynamoDB adapter
from botocore.config import Config  # noqa: TID251 - the demo's DynamoDB adapter
from botocore.exceptions import BotoCoreError, ClientError  # noqa: TID251 - the demo's adapter

from bridge.aws import error_code
from dynabridge.demo.errors import DemoError
from dynabridge.demo.workload import Change, ChangeKind

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

STREAM_VIEW: Final = "NEW_AND_OLD_IMAGES"
_CREDENTIALS = {"aws_access_key_id": "demo", "aws_secret_access_key": "demo"}  # moto takes any


def client(endpoint_url: str, region: str, pool: int = 10) -> DynamoDBClient:
    config = Config(
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=20,
        max_pool_connections=pool,
    )
    return boto3.client(  # type: ignore[call-overload, no-any-return]
        "dynamodb", endpoint_url=endpoint_url, region_name=region, config=config, **_CREDENTIALS
    )


class DemoTable:
    def __init__(self, dynamodb: DynamoDBClient, name: str) -> None:
        self._dynamodb = dynamodb
        self.name = name

    def create(self) -> bool:
        """Create the table (pk S, sk N) with a NEW_AND_OLD_IMAGES stream; False if it existed
        with such a stream already (reused)."""
        try:
            self._dynamodb.create_table(
                TableName=self.name,
                KeySchema=[
                    {"AttributeName": "pk", "KeyType": "HASH"},
                    {"AttributeName": "sk", "KeyType": "RANGE"},
                ],
                AttributeDefinitions=[
                    {"AttributeName": "pk", "AttributeType": "S"},
                    {"AttributeName": "sk", "AttributeType": "N"},
                ],
                BillingMode="PAY_PER_REQUEST",
                StreamSpecification={"StreamEnabled": True, "StreamViewType": STREAM_VIEW},
            )
        except ClientError as error:
            if error_code(error) != "ResourceInUseException":
                raise DemoError(f"creating table {self.name}: {error}") from None
            self._check_stream()
            return False
        except BotoCoreError as error:
            raise DemoError(f"creating table {self.name}: {error}") from None
        self._wait_active()
        return True

    def _check_stream(self) -> None:
        spec = self._describe().get("StreamSpecification") or {}
        if not spec.get("StreamEnabled") or spec.get("StreamViewType") != STREAM_VIEW:
            raise DemoError(
                f"table {self.name} exists without a {STREAM_VIEW} stream: pick another --table"
            )

    def _describe(self) -> dict[str, Any]:
        try:
            return dict(self._dynamodb.describe_table(TableName=self.name)["Table"])
        except (ClientError, BotoCoreError) as error:
            raise DemoError(f"describing table {self.name}: {error}") from None

    def _wait_active(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self._describe().get("TableStatus") != "ACTIVE":
            if time.monotonic() > deadline:
                raise DemoError(f"table {self.name} did not become ACTIVE in {timeout_s:.0f} s")
            time.sleep(0.2)

    def write(self, change: Change) -> None:
        try:
            if change.kind is ChangeKind.DELETE:
                self._dynamodb.delete_item(TableName=self.name, Key=change.keys)
            elif change.update is not None:
                self._dynamodb.update_item(
                    TableName=self.name,
                    Key=change.keys,
                    UpdateExpression=change.update.expression,
                    ExpressionAttributeNames=change.update.names,
                    ExpressionAttributeValues=change.update.values,
                )
            elif change.image is not None:
                self._dynamodb.put_item(TableName=self.name, Item=change.image)
        except (ClientError, BotoCoreError) as error:
            raise DemoError(f"{change.kind.value} #{change.seq} on {self.name}: {error}") from None

    def drop(self) -> None:
        """Delete the table; a table already gone is fine."""
        try:
            self._dynamodb.delete_table(TableName=self.name)
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                raise DemoError(f"deleting table {self.name}: {error}") from None
        except BotoCoreError as error:
            raise DemoError(f"deleting table {self.name}: {error}") from None
