"""The DynamoDB Streams API over the world's streams: ListStreams, DescribeStream,
GetShardIterator, GetRecords, with AWS's limits and the configured faults.

Each operation takes the request's JSON and returns the response body (bytes), or raises
``ApiError`` (AWS's error) or ``Foreign`` (an ARN or iterator that is not ours: the server
passes the request to moto unchanged). Faults are decided here, latency is slept here with no
lock held, and every GetRecords is recorded in the stats.
"""

from __future__ import annotations

import bisect
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

import orjson

from dynabridge.streamsim import errors
from dynabridge.streamsim.errors import ApiError
from dynabridge.streamsim.iterators import InvalidIteratorError, ShardIterator, parse
from dynabridge.streamsim.model import InvalidPosition, IteratorKind, ShardGone
from dynabridge.streamsim.shard import Shard, Trimmed
from dynabridge.streamsim.world import SimStream, World

MAX_GET_RECORDS_LIMIT = 1000
MAX_DESCRIBE_LIMIT = 100
MAX_LIST_STREAMS_LIMIT = 100
TARGET_PREFIX = "DynamoDBStreams_20120810."


class Foreign(Exception):  # noqa: N818 - a routing signal, not a failure
    """The request names a stream or iterator the simulator does not own."""


Body = list[bytes]
"""A response body in chunks, sent without joining them (a page is ~1 MB of records that were
serialized one by one; joining them again would cost a copy per page)."""


class StreamsApi:
    def __init__(self, world: World, *, sleep: Callable[[float], None] = time.sleep) -> None:
        self._world = world
        self._sleep = sleep
        self._operations: dict[str, Callable[[dict[str, Any]], Body]] = {
            "ListStreams": lambda request: [self.list_streams(request)],
            "DescribeStream": lambda request: [self.describe_stream(request)],
            "GetShardIterator": lambda request: [self.get_shard_iterator(request)],
            "GetRecords": self.get_records_chunks,
        }

    def handle(self, operation: str, request: dict[str, Any]) -> bytes:
        return b"".join(self.handle_chunks(operation, request))

    def handle_chunks(self, operation: str, request: dict[str, Any]) -> Body:
        method = self._operations.get(operation)
        if method is None:
            raise errors.ApiError("UnknownOperationException", f"Unknown operation {operation}")
        self._world.stats.call(operation)
        try:
            return method(request)
        except ApiError as error:
            self._world.stats.error(operation, error.code)
            raise

    # -- ListStreams ---------------------------------------------------------------------

    def list_streams(self, request: dict[str, Any]) -> bytes:
        """The simulator's own streams only; the server merges moto's for other tables."""
        return orjson.dumps(self.list_streams_json(request))

    def list_streams_json(
        self, request: dict[str, Any], extra: list[dict[str, str]] | None = None
    ) -> dict[str, Any]:
        limit = _limit(request, "Limit", MAX_LIST_STREAMS_LIMIT, MAX_LIST_STREAMS_LIMIT)
        table_name = request.get("TableName")
        entries = [
            {"StreamArn": s.arn, "TableName": s.table.name, "StreamLabel": s.model.label}
            for s in self._world.streams()
            if table_name is None or s.table.name == table_name
        ]
        entries += extra or []
        entries.sort(key=lambda entry: entry["StreamArn"])
        arns = [entry["StreamArn"] for entry in entries]
        start = request.get("ExclusiveStartStreamArn")
        first = bisect.bisect_right(arns, start) if start else 0
        page = entries[first : first + limit]
        answer: dict[str, Any] = {"Streams": page}
        if first + limit < len(entries):
            answer["LastEvaluatedStreamArn"] = page[-1]["StreamArn"]
        return answer

    # -- DescribeStream ------------------------------------------------------------------

    def describe_stream(self, request: dict[str, Any]) -> bytes:
        stream = self._stream(_required(request, "StreamArn"))
        limit = _limit(request, "Limit", MAX_DESCRIBE_LIMIT, MAX_DESCRIBE_LIMIT)
        parent = _shard_filter(request)
        self._control_latency(stream)
        world = self._world
        with stream.lock:
            now = world.clock()
            self._rate_limit(stream, now)
            model = stream.model
            model.advance(now)
            listed = model.listing(now, parent_id=parent)
            start = request.get("ExclusiveStartShardId")
            ids = [shard.shard_id for shard in listed]
            first = bisect.bisect_right(ids, start) if start else 0
            page = listed[first : first + limit]
            more = first + limit < len(listed)
            last = page[-1].shard_id if more else None
            shown = model.omitted(page)
            description: dict[str, Any] = {
                "StreamArn": model.arn,
                "StreamLabel": model.label,
                "StreamStatus": model.status.value,
                "StreamViewType": model.view_type,
                "CreationRequestDateTime": round(model.created_s, 3),
                "TableName": model.table,
                "KeySchema": [
                    {"AttributeName": key.name, "KeyType": key.key_type}
                    for key in stream.table.key_schema
                ],
                "Shards": [
                    _shard_json(shard, now < (shard.closed_s or now) + model.config.ending_lag_s)
                    for shard in shown
                ],
            }
        if last is not None:
            description["LastEvaluatedShardId"] = last
        return orjson.dumps({"StreamDescription": description})

    def _rate_limit(self, stream: SimStream, now: float) -> None:
        per_s = stream.model.config.describe_stream_per_s
        if not per_s:
            return
        calls = stream.describe_calls
        while calls and calls[0] <= now - 1.0:
            calls.popleft()
        if len(calls) >= per_s:
            raise ApiError(
                stream.model.config.describe_stream_throttle_code,
                f"Rate exceeded for stream {stream.arn}: DescribeStream is limited to "
                f"{per_s:g} calls per second",
            )
        calls.append(now)

    # -- GetShardIterator ----------------------------------------------------------------

    def get_shard_iterator(self, request: dict[str, Any]) -> bytes:
        stream = self._stream(_required(request, "StreamArn"))
        shard_id = _required(request, "ShardId")
        kind = _iterator_kind(_required(request, "ShardIteratorType"))
        sequence_number = request.get("SequenceNumber")
        when_s = request.get("Timestamp")
        _check_iterator_arguments(kind, sequence_number, when_s)
        self._control_latency(stream)
        world = self._world
        with stream.lock:
            now = world.clock()
            model = stream.model
            model.advance(now)
            try:
                shard = model.shard(shard_id)
                if when_s is not None and float(when_s) > now:
                    raise errors.validation(f"Timestamp {when_s} is in the future (now {now:.3f})")
                horizon = max(now - model.config.retention_s, 0.0)
                start_s = None if when_s is None else max(float(when_s), horizon)
                after = model.position(
                    shard,
                    kind,
                    None if sequence_number is None else int(sequence_number),
                    start_s,
                )
            except ShardGone:
                raise errors.not_found("Shard does not exist") from None
            except Trimmed:
                raise errors.trimmed() from None
            except InvalidPosition as exc:
                raise errors.validation(str(exc)) from None
        token = ShardIterator(model.arn, shard_id, after, int(now * 1000)).token()
        return orjson.dumps({"ShardIterator": token})

    # -- GetRecords ----------------------------------------------------------------------

    def get_records(self, request: dict[str, Any]) -> bytes:
        return b"".join(self.get_records_chunks(request))

    def get_records_chunks(self, request: dict[str, Any]) -> Body:
        token = _required(request, "ShardIterator")
        limit = _limit(request, "Limit", MAX_GET_RECORDS_LIMIT, None)
        try:
            iterator = parse(token)
        except InvalidIteratorError:
            raise errors.validation("Invalid ShardIterator") from None
        if iterator is None:
            raise Foreign(token)
        stream = self._world.stream(iterator.stream_arn)
        if stream is None:
            raise errors.not_found(f"Stream: {iterator.stream_arn} not found")
        world = self._world
        started = world.clock()
        with stream.lock:
            model = stream.model
            shard = model.shards.get(iterator.shard_id) or model.gone.get(iterator.shard_id)
            if shard is None:
                raise errors.not_found("Invalid ShardId in ShardIterator")
            self._check_expiry(iterator, model.config.iterator_ttl_s, started)
            self._admit(stream, shard)
        try:
            self._sleep_ms(model.config.get_records_latency_ms, model.config.get_records_jitter_ms)
            with stream.lock:
                now = world.clock()
                model.advance(now)
                try:
                    page = shard.page(iterator.after, limit, model.config.page_max_bytes)
                except Trimmed:
                    raise errors.trimmed() from None
        finally:
            with stream.lock:
                stream.readers[shard.shard_id] -= 1
        records = page.bodies
        # [prefix, r0, ",", r1, ..., r(n-1), suffix]: the records are never copied.
        chunks = [b","] * (2 * len(records) + 1) if records else [b"", b""]
        chunks[0] = b'{"Records":['
        chunks[1:-1:2] = records
        if page.at_end:
            chunks[-1] = b"]}"
        else:
            token = ShardIterator(stream.arn, shard.shard_id, page.after, int(now * 1000)).token()
            chunks[-1] = b'],"NextShardIterator":"' + token.encode() + b'"}'
        world.stats.poll(stream.table.name, shard.shard_id, started, world.clock(), len(records))
        return chunks

    def _check_expiry(self, iterator: ShardIterator, ttl_s: float, now: float) -> None:
        age_ms = now * 1000 - iterator.issued_ms
        if age_ms > ttl_s * 1000:
            issued = _aws_time(iterator.issued_ms / 1000)
            raise ApiError(
                "ExpiredIteratorException",
                f"Iterator expired. The iterator was created at time {issued} while right now "
                f"it is {_aws_time(now)} which is further in the future than the tolerated "
                f"delay of {int(ttl_s * 1000)} milliseconds.",
            )

    def _admit(self, stream: SimStream, shard: Shard) -> None:
        """Count the reader in, or refuse it (LimitExceededException); caller holds the lock."""
        config = stream.model.config
        stats = self._world.stats
        readers = stream.readers.get(shard.shard_id, 0) + 1
        table = stream.table.name
        if config.max_readers_per_shard and readers > config.max_readers_per_shard:
            stats.throttled(table, shard.shard_id)
            raise errors.limit_exceeded(
                f"Too many concurrent readers of shard {shard.shard_id}: at most "
                f"{config.max_readers_per_shard} processes should read a shard at a time"
            )
        if config.throttle_rate and self._world.rng.random() < config.throttle_rate:
            stats.throttled(table, shard.shard_id)
            raise errors.limit_exceeded(f"Rate exceeded for shard {shard.shard_id}")
        stream.readers[shard.shard_id] = readers
        stats.readers(table, shard.shard_id, readers)

    # -- shared --------------------------------------------------------------------------

    def _stream(self, arn: str) -> SimStream:
        stream = self._world.stream(arn)
        if stream is None:
            raise Foreign(arn)
        return stream

    def _control_latency(self, stream: SimStream) -> None:
        self._sleep_ms(stream.model.config.control_latency_ms, 0.0)

    def _sleep_ms(self, fixed_ms: float, jitter_ms: float) -> None:
        delay_ms = fixed_ms + (self._world.rng.uniform(0, jitter_ms) if jitter_ms else 0.0)
        if delay_ms > 0:
            self._sleep(delay_ms / 1000)


def _required(request: dict[str, Any], name: str) -> str:
    value = request.get(name)
    if not isinstance(value, str) or not value:
        raise errors.validation(
            f"1 validation error detected: Value null at '{name[0].lower()}{name[1:]}' failed "
            "to satisfy constraint: Member must not be null"
        )
    return value


def _limit(request: dict[str, Any], name: str, maximum: int, default: int | None) -> int:
    value = request.get(name)
    if value is None:
        return default if default is not None else maximum
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise errors.validation(
            f"1 validation error detected: Value '{value}' at 'limit' failed to satisfy "
            "constraint: Member must have value greater than or equal to 1"
        )
    if value > maximum:
        if name == "Limit" and maximum == MAX_GET_RECORDS_LIMIT:
            # GetRecords answers an oversized Limit with LimitExceededException (its API docs).
            raise errors.limit_exceeded(
                f"Limit {value} is above the maximum of {MAX_GET_RECORDS_LIMIT} records"
            )
        raise errors.validation(
            f"1 validation error detected: Value '{value}' at 'limit' failed to satisfy "
            f"constraint: Member must have value less than or equal to {maximum}"
        )
    return value


def _shard_filter(request: dict[str, Any]) -> str | None:
    shard_filter = request.get("ShardFilter")
    if shard_filter is None:
        return None
    if not isinstance(shard_filter, dict) or shard_filter.get("Type") != "CHILD_SHARDS":
        raise errors.validation("ShardFilter Type must be CHILD_SHARDS")
    parent = shard_filter.get("ShardId")
    if not isinstance(parent, str) or not parent:
        raise errors.validation("ShardFilter of type CHILD_SHARDS needs a ShardId")
    return parent


def _iterator_kind(text: str) -> IteratorKind:
    try:
        return IteratorKind(text)
    except ValueError:
        raise errors.validation(
            f"1 validation error detected: Value '{text}' at 'shardIteratorType' failed to "
            "satisfy constraint: Member must satisfy enum value set: "
            f"[{', '.join(kind.value for kind in IteratorKind)}]"
        ) from None


def _check_iterator_arguments(kind: IteratorKind, sequence_number: object, when_s: object) -> None:
    needs_number = kind in (IteratorKind.AT_SEQUENCE_NUMBER, IteratorKind.AFTER_SEQUENCE_NUMBER)
    if needs_number and not (isinstance(sequence_number, str) and sequence_number.isdigit()):
        raise errors.validation(f"{kind.value} needs a SequenceNumber (decimal digits)")
    if not needs_number and sequence_number is not None:
        raise errors.validation(f"{kind.value} takes no SequenceNumber")
    if kind is IteratorKind.AT_TIMESTAMP and not isinstance(when_s, int | float):
        raise errors.validation("AT_TIMESTAMP needs a Timestamp")


def _shard_json(shard: Shard, ending_lags: bool) -> dict[str, Any]:
    numbers = {"StartingSequenceNumber": str(shard.starting)}
    if shard.ending is not None and not ending_lags:
        numbers["EndingSequenceNumber"] = str(shard.ending)
    entry: dict[str, Any] = {"ShardId": shard.shard_id, "SequenceNumberRange": numbers}
    if shard.parent_id is not None:
        entry["ParentShardId"] = shard.parent_id
    return entry


def _aws_time(epoch_s: float) -> str:
    return dt.datetime.fromtimestamp(epoch_s, dt.UTC).strftime("%a %b %d %H:%M:%S UTC %Y")
