"""A page of DynamoDB stream records (boto3's low-level shape) -> versioned change events.

Conversion is deterministic: the same records read after the same ``previous`` version give
byte-identical events, which is what makes a re-read after a crash a harmless duplicate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bridge.contract.event import ChangeEvent, EventName, Item
from bridge.versions import next_version

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MS = dt.timedelta(milliseconds=1)
TTL_PRINCIPAL = "dynamodb.amazonaws.com"
_EVENT_NAMES = {name.value: name for name in EventName}


class RecordError(ValueError):
    """A stream record lacks something every DynamoDB stream record carries."""


@dataclass(frozen=True, slots=True)
class ShardSource:
    """Where a page was read: stamped on every event it yields."""

    table: str
    stream_arn: str
    shard_id: str


def creation_time_ms(record: Mapping[str, Any]) -> int:
    """``ApproximateCreationDateTime`` as epoch milliseconds, floored."""
    value = record["dynamodb"]["ApproximateCreationDateTime"]
    if isinstance(value, dt.datetime):
        aware = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return (aware - _EPOCH) // _MS
    if isinstance(value, int | float):
        # Raw JSON gives epoch seconds; go through integers to avoid float rounding up.
        return int(value * 1000) if isinstance(value, int) else _float_seconds_to_ms(value)
    raise RecordError(f"ApproximateCreationDateTime of unexpected type {type(value).__name__}")


def _float_seconds_to_ms(seconds: float) -> int:
    return (dt.datetime.fromtimestamp(seconds, dt.UTC) - _EPOCH) // _MS


def is_ttl_delete(record: Mapping[str, Any]) -> bool:
    """A REMOVE done by DynamoDB's TTL sweeper (boto3 and Lambda spell the keys differently)."""
    identity = record.get("userIdentity")
    if not identity:
        return False
    kind: object = identity.get("Type", identity.get("type"))
    principal: object = identity.get("PrincipalId", identity.get("principalId"))
    return kind == "Service" and principal == TTL_PRINCIPAL


def change_event(
    record: Mapping[str, Any], source: ShardSource, version: int, creation_ms: int
) -> ChangeEvent:
    """One record as a change event; ``version`` comes from :func:`change_events`."""
    body = record["dynamodb"]
    try:
        event_name = _EVENT_NAMES[record["eventName"]]
    except KeyError as error:
        raise RecordError(f"unknown eventName {record.get('eventName')!r}") from error
    keys: Item = body["Keys"]
    return ChangeEvent(
        table=source.table,
        event_name=event_name,
        event_id=record["eventID"],
        stream_arn=source.stream_arn,
        shard_id=source.shard_id,
        sequence_number=body["SequenceNumber"],
        approximate_creation_time_ms=creation_ms,
        version=version,
        keys=keys,
        new_image=body.get("NewImage"),
        old_image=body.get("OldImage"),
        ttl_delete=event_name is EventName.REMOVE and is_ttl_delete(record),
    )


def change_events(
    records: Sequence[Mapping[str, Any]], source: ShardSource, previous_version: int
) -> tuple[list[ChangeEvent], int]:
    """Events for a page, in stream order, and the version of the last one (or ``previous``)."""
    events: list[ChangeEvent] = []
    version = previous_version
    for record in records:
        try:
            creation_ms = creation_time_ms(record)
            version = next_version(version, creation_ms)
            events.append(change_event(record, source, version, creation_ms))
        except KeyError as error:
            raise RecordError(
                f"stream record in {source.shard_id} lacks {error.args[0]!r}: "
                f"{record.get('eventID', '?')}"
            ) from error
    return events, version
