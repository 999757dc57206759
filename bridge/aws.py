"""The AWS boundary shared by every process and tool: boto3 clients, and botocore's errors and
DescribeTable answers turned into the project's own, once.

AwsCallError                a DynamoDB or Streams call failed; ``code`` and ``status`` say how
 ├── AwsUnavailable         throttled, 5xx or unreachable: transient, try again later
 ├── ResourceNotFound       ResourceNotFoundException: no such table, stream or shard
 ├── ResourceInUse          ResourceInUseException: the table is being created or deleted
 └── ConditionFailed        ConditionalCheckFailedException: a conditional write lost its race

Each caller turns these into its own tree (the lease table's, backfill's, the operator
commands'); none of them sees a botocore exception.
"""

from __future__ import annotations

import email.utils
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3  # noqa: TID251 - the AWS adapter
from botocore.config import Config  # noqa: TID251 - the AWS adapter
from botocore.exceptions import (  # noqa: TID251 - the AWS adapter
    BotoCoreError,
    ClientError,
    ConnectionError,
    HTTPClientError,
)

from bridge.runtime.settings import AwsSettings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient

TRANSIENT_CODES = frozenset(
    {
        "ThrottlingException",
        "LimitExceededException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "InternalServerError",
        "InternalFailure",
        "ServiceUnavailable",
    }
)
"""Error codes that mean "not now": throttling and the service's own failures."""

STREAMS_READ_TIMEOUT_S = 10
"""A GetRecords page (at most 1 MB) that takes this long is not coming: the reader backs off and
asks for a smaller page instead of blocking its shard."""
STREAMS_ATTEMPTS = 2
"""botocore's own attempts per Streams call; a GetRecords blocks at most this many connect +
read timeouts (30 s, below ``bridge.stall_timeout_s``), then the reader's jittered backoff takes
over. Retrying the same oversized page more often only repeats the timeout."""
TABLES_READ_TIMEOUT_S = 20
"""botocore's read timeout of table calls (Scan, lease table); backfill's tombstone window
counts on it."""


def aws_clients(
    aws: AwsSettings,
    *,
    streams_connections: int = 20,
    session: boto3.session.Session | None = None,
) -> tuple[DynamoDBClient, DynamoDBStreamsClient]:
    """DynamoDB and Streams clients: standard credential chain, bounded retries and timeouts.

    ``streams_connections``: the Streams client's connection pool, at least the number of
    threads calling it at once (a smaller pool opens and drops a connection per extra call).
    ``session``: tests pass their own (a credential provider of their own, for example).
    """
    tables = table_config()
    common: dict[str, Any] = {"region_name": aws.region}
    if aws.endpoint_url:
        common["endpoint_url"] = aws.endpoint_url
    session = session or boto3.session.Session()
    return (
        session.client("dynamodb", config=tables, **common),
        session.client("dynamodbstreams", config=streams_config(streams_connections), **common),
    )


def table_config() -> Config:
    """DynamoDB calls (lease table, backfill Scans): patient retries, a long read timeout."""
    return Config(
        retries={"max_attempts": 5, "mode": "standard"},
        connect_timeout=5,
        read_timeout=TABLES_READ_TIMEOUT_S,
        max_pool_connections=20,
    )


def streams_config(connections: int = 20) -> Config:
    """Streams calls: few attempts and a shorter read timeout (see the constants above)."""
    return table_config().merge(
        Config(
            retries={"total_max_attempts": STREAMS_ATTEMPTS, "mode": "standard"},
            read_timeout=STREAMS_READ_TIMEOUT_S,
            max_pool_connections=connections,
        )
    )


# -- errors -------------------------------------------------------------------------------------


class AwsCallError(Exception):
    """A DynamoDB or Streams call failed; the message names the call, code and AWS's message."""

    def __init__(self, message: str, *, code: str = "", status: int = 0) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


class AwsUnavailable(AwsCallError):  # noqa: N818 - a condition to wait out
    """Throttling, a 5xx or a connection error: transient, try again later."""


class ResourceNotFound(AwsCallError):  # noqa: N818 - AWS's own name
    pass


class ResourceInUse(AwsCallError):  # noqa: N818 - AWS's own name
    pass


class ConditionFailed(AwsCallError):  # noqa: N818 - AWS's own name
    pass


_BY_CODE: dict[str, type[AwsCallError]] = {
    "ResourceNotFoundException": ResourceNotFound,
    "ResourceInUseException": ResourceInUse,
    "ConditionalCheckFailedException": ConditionFailed,
}


def error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def translated(error: Exception, what: str) -> AwsCallError:
    """``error`` (a botocore error) as an :class:`AwsCallError`.

    Connection errors and timeouts are transient; botocore's other own errors (no credentials,
    no region, an invalid parameter) are not.
    """
    if isinstance(error, ClientError):
        code = error_code(error)
        status = int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
        message = error.response.get("Error", {}).get("Message", "")
        text = f"{what}: {code} {message}".rstrip()
        if code in TRANSIENT_CODES or status >= 500:
            return AwsUnavailable(text, code=code, status=status)
        return _BY_CODE.get(code, AwsCallError)(text, code=code, status=status)
    if isinstance(error, ConnectionError | HTTPClientError):
        return AwsUnavailable(f"{what}: {error}")
    return AwsCallError(
        f"{what}: {error} (check the AWS credentials, aws.region and aws.endpoint_url)"
    )


def with_hint(error: AwsCallError, hint: str) -> str:
    """The error's message, and ``hint`` (an IAM policy to check) when AWS itself refused: a
    botocore error (no credentials, no region) already says what to fix."""
    return f"{error} ({hint})" if error.code else str(error)


def call(method: Callable[..., Any], what: str, **kwargs: Any) -> Any:
    """``method(**kwargs)`` (a boto3 client method); botocore errors leave as AwsCallError."""
    try:
        return method(**kwargs)
    except (ClientError, BotoCoreError) as error:
        raise translated(error, what) from error


def conditional(method: Callable[..., Any], what: str, **kwargs: Any) -> bool:
    """A conditional write: True if written, False if its condition no longer held."""
    try:
        call(method, what, **kwargs)
    except ConditionFailed:
        return False
    return True


# -- DescribeTable ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyAttribute:
    name: str
    type: str
    """``S``, ``N`` or ``B``."""


@dataclass(frozen=True, slots=True)
class TableDescription:
    """What every part of dynabridge reads of a DynamoDB table, in one shape."""

    table: str
    key_schema: tuple[KeyAttribute, ...]
    """Hash key, then range key if any."""
    status: str
    stream_arn: str | None
    """``LatestStreamArn`` while the stream is enabled; None otherwise."""
    view_type: str | None
    item_count: int
    """DynamoDB's estimate (refreshed about every six hours on AWS)."""
    size_bytes: int
    server_now_s: float | None
    """DynamoDB's clock (the response's Date header), whole seconds; None if absent."""

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(key.name for key in self.key_schema)


def describe_table(client: DynamoDBClient, table: str) -> TableDescription:
    """DescribeTable of ``table``; raises ResourceNotFound, AwsUnavailable or AwsCallError."""
    response = call(client.describe_table, f"DescribeTable {table!r}", TableName=table)
    return table_description(response)


def table_description(response: Any) -> TableDescription:
    """A DescribeTable response (boto3's low-level shape) as a :class:`TableDescription`."""
    description = response["Table"]
    types = {d["AttributeName"]: d["AttributeType"] for d in description["AttributeDefinitions"]}
    ordered = sorted(description["KeySchema"], key=lambda key: key["KeyType"] != "HASH")
    spec = description.get("StreamSpecification") or {}
    arn = description.get("LatestStreamArn")
    enabled = bool(spec.get("StreamEnabled")) and bool(arn)
    return TableDescription(
        table=description["TableName"],
        key_schema=tuple(
            KeyAttribute(key["AttributeName"], types[key["AttributeName"]]) for key in ordered
        ),
        status=str(description.get("TableStatus", "")),
        stream_arn=str(arn) if enabled else None,
        view_type=str(spec["StreamViewType"]) if enabled and "StreamViewType" in spec else None,
        item_count=int(description.get("ItemCount", 0)),
        size_bytes=int(description.get("TableSizeBytes", 0)),
        server_now_s=_server_time_s(response),
    )


def _server_time_s(response: Any) -> float | None:
    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    if not date:
        return None
    try:
        return email.utils.parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return None
