"""DescribeTable / DescribeStream adapter: a table's stream, its shards (as ``bridge.shards``),
and whether a shard a listing omits still exists.

DescribeStream is paginated to the end and spaced to at most 10 calls/s per stream (the API
limit); AWS errors (``bridge.aws``) leave this module only as ``bridge.shards.StreamError``
subclasses.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
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
from bridge.lineage import children_of
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

log = logging.getLogger(__name__)

DESCRIBE_STREAM_PER_S = 10.0
PAGE_LIMIT = 100  # DescribeStream's maximum


class StreamDiscovery:
    def __init__(
        self,
        dynamodb: DynamoDBClient,
        streams: DynamoDBStreamsClient,
        *,
        calls_per_s: float = DESCRIBE_STREAM_PER_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._dynamodb = dynamodb
        self._streams = streams
        self._spacing_s = 1.0 / calls_per_s
        self._clock = clock
        self._sleep = sleep
        self._next_call: dict[str, float] = {}
        self._pacing = threading.Lock()
        self._shard_filter = True

    def describe_table(self, table: str) -> StreamInfo:
        try:
            description = describe_table(self._dynamodb, table)
        except ResourceNotFound:
            raise TableNotFound(
                f"table {table!r} does not exist in this region/account: create it, or "
                "remove it from bridge.tables (check aws.region and aws.endpoint_url)"
            ) from None
        except AwsCallError as error:
            raise _translate(error) from error
        return stream_info(description)

    def shards(self, stream_arn: str) -> list[Shard]:
        return list(self._pages(stream_arn, {}))

    def child_shards(self, stream_arn: str, parent_shard_id: str) -> list[Shard]:
        """Children of a closed shard; emulators that ignore the filter are filtered here."""
        if self._shard_filter:
            shard_filter = {"Type": "CHILD_SHARDS", "ShardId": parent_shard_id}
            try:
                found = list(self._pages(stream_arn, {"ShardFilter": shard_filter}))
            except StreamError as exc:
                cause = exc.__cause__
                if not isinstance(cause, AwsCallError) or cause.code != "ValidationException":
                    raise
                log.warning("ShardFilter refused (%s); listing the whole stream instead", exc)
                self._shard_filter = False
            else:
                return children_of(parent_shard_id, found)
        return [
            shard for shard in self.shards(stream_arn) if shard.parent_shard_id == parent_shard_id
        ]

    def shard_gone(self, stream_arn: str, shard_id: str) -> bool:
        """Whether the shard no longer exists: GetShardIterator(TRIM_HORIZON) answers
        ResourceNotFoundException for a shard trimmed from the stream (DescribeStream, being
        eventually consistent, may merely omit a shard that still exists)."""
        try:
            call(
                self._streams.get_shard_iterator,
                f"GetShardIterator {shard_id}",
                StreamArn=stream_arn,
                ShardId=shard_id,
                ShardIteratorType="TRIM_HORIZON",
            )
        except ResourceNotFound:
            return True
        except AwsCallError as exc:
            raise _translate(exc) from exc
        return False

    def _pages(self, stream_arn: str, extra: dict[str, Any]) -> Iterator[Shard]:
        start: str | None = None
        seen_starts: set[str] = set()
        while True:
            page = self._describe(stream_arn, start, extra)
            yield from (_shard(raw) for raw in page.get("Shards", []))
            start = page.get("LastEvaluatedShardId")
            if start is None:
                return
            if start in seen_starts:  # a looping paginator would spin forever at 10 calls/s
                raise StreamUnavailable(
                    f"DescribeStream {stream_arn}: page token {start} repeated; retrying later"
                )
            seen_starts.add(start)

    def _describe(self, stream_arn: str, start: str | None, extra: dict[str, Any]) -> Any:
        self._pace(stream_arn)
        kwargs: dict[str, Any] = {"StreamArn": stream_arn, "Limit": PAGE_LIMIT, **extra}
        if start is not None:
            kwargs["ExclusiveStartShardId"] = start
        try:
            answer = call(self._streams.describe_stream, f"DescribeStream {stream_arn}", **kwargs)
        except ResourceNotFound as exc:
            raise StreamNotEnabled(
                f"stream {stream_arn} no longer exists (disabled more than 24 h ago?): "
                "re-enable the table's stream, restart, and backfill"
            ) from exc
        except AwsCallError as exc:
            raise _translate(exc) from exc
        return answer["StreamDescription"]

    def _pace(self, stream_arn: str) -> None:
        # The lease keeper's shard sync and the worker's child lookups share this budget: a
        # slot is reserved under the lock, and the wait for it happens outside.
        with self._pacing:
            now = self._clock()
            due = self._next_call.get(stream_arn, now)
            self._next_call[stream_arn] = max(now, due) + self._spacing_s
        if due > now:
            self._sleep(due - now)


def stream_info(description: TableDescription) -> StreamInfo:
    """The stream of a described table; raises StreamNotEnabled when it has none."""
    table = description.table
    if description.stream_arn is None:
        raise StreamNotEnabled(
            f"table {table!r} has no enabled stream: enable one with `aws dynamodb "
            f"update-table --table-name {table} --stream-specification "
            "StreamEnabled=true,StreamViewType=NEW_AND_OLD_IMAGES`"
        )
    return StreamInfo(
        table=table,
        stream_arn=description.stream_arn,
        view_type=description.view_type or "",
        key_names=description.key_names,
    )


def _translate(exc: AwsCallError) -> StreamError:
    if isinstance(exc, AwsUnavailable):
        return StreamUnavailable(f"{exc}; retrying later")
    return StreamError(
        with_hint(
            exc,
            "check the IAM policy: dynamodb:DescribeTable and dynamodb:DescribeStream on the "
            "table and its stream",
        )
    )


def _shard(raw: Any) -> Shard:
    numbers = raw.get("SequenceNumberRange", {})
    return Shard(
        shard_id=raw["ShardId"],
        parent_shard_id=raw.get("ParentShardId"),
        starting_sequence_number=numbers.get("StartingSequenceNumber", "0"),
        ending_sequence_number=numbers.get("EndingSequenceNumber"),
    )
