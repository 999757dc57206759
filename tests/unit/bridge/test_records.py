"""Stream record -> change event: every field, TTL deletes, timestamps, determinism."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from bridge.contract import Encoder
from bridge.contract.event import EventName
from bridge.records import (
    RecordError,
    ShardSource,
    change_events,
    creation_time_ms,
    is_ttl_delete,
)

SOURCE = ShardSource("orders", "arn:aws:dynamodb:us-east-1:1:table/orders/stream/x", "shardId-1")
WHEN = dt.datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=dt.UTC)
WHEN_MS = 1714564800123


def record(
    seq: int, name: str = "MODIFY", when: object = WHEN, identity: dict[str, str] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": when,
        "Keys": {"pk": {"S": f"k{seq}"}, "sk": {"N": "1"}},
        "SequenceNumber": f"{seq:021d}",
        "SizeBytes": 42,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    if name != "REMOVE":
        body["NewImage"] = {"pk": {"S": f"k{seq}"}, "sk": {"N": "1"}, "n": {"N": "1e-130"}}
    if name != "INSERT":
        body["OldImage"] = {"pk": {"S": f"k{seq}"}, "sk": {"N": "1"}, "b": {"B": b"\x00"}}
    out: dict[str, Any] = {"eventID": f"e{seq}", "eventName": name, "dynamodb": body}
    if identity is not None:
        out["userIdentity"] = identity
    return out


def test_every_field_is_carried() -> None:
    (event,), last = change_events([record(7)], SOURCE, 0)
    assert event.table == "orders"
    assert event.event_name is EventName.MODIFY
    assert event.event_id == "e7"
    assert event.stream_arn == SOURCE.stream_arn
    assert event.shard_id == "shardId-1"
    assert event.sequence_number == f"{7:021d}"
    assert event.approximate_creation_time_ms == WHEN_MS
    assert event.version == last == 1714564800 * 1_000_000
    assert event.keys == {"pk": {"S": "k7"}, "sk": {"N": "1"}}
    assert event.new_image is not None
    assert event.new_image["n"] == {"N": "1e-130"}
    assert event.old_image is not None
    assert event.old_image["b"] == {"B": b"\x00"}
    assert event.ttl_delete is False


def test_insert_has_no_old_image_and_remove_no_new_image() -> None:
    events, _ = change_events([record(1, "INSERT"), record(2, "REMOVE")], SOURCE, 0)
    assert events[0].old_image is None
    assert events[0].new_image is not None
    assert events[1].new_image is None
    assert events[1].old_image is not None


@pytest.mark.parametrize(
    "identity",
    [
        {"Type": "Service", "PrincipalId": "dynamodb.amazonaws.com"},
        {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
    ],
)
def test_ttl_removal_is_flagged(identity: dict[str, str]) -> None:
    (event,), _ = change_events([record(1, "REMOVE", identity=identity)], SOURCE, 0)
    assert event.ttl_delete is True


def test_a_users_remove_is_not_a_ttl_delete() -> None:
    user = {"Type": "Service", "PrincipalId": "someone.else"}
    assert not is_ttl_delete(record(1, "REMOVE", identity=user))
    assert not is_ttl_delete(record(1, "REMOVE"))


@pytest.mark.parametrize(
    ("when", "expected_ms"),
    [
        (WHEN, WHEN_MS),
        (WHEN.replace(tzinfo=None), WHEN_MS),
        (
            dt.datetime(2024, 5, 1, 14, 0, 0, 123999, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            WHEN_MS,
        ),
        (1714564800.123, WHEN_MS),
        (1714564800, 1714564800000),
    ],
)
def test_creation_time_in_epoch_ms_floored(when: object, expected_ms: int) -> None:
    assert creation_time_ms(record(1, when=when)) == expected_ms


def test_versions_continue_across_pages() -> None:
    first, v1 = change_events([record(1), record(2)], SOURCE, 0)
    second, v2 = change_events([record(3)], SOURCE, v1)
    assert [e.version for e in first + second] == [v1 - 1, v1, v1 + 1]
    assert v2 == v1 + 1


def test_empty_page_keeps_the_previous_version() -> None:
    assert change_events([], SOURCE, 99) == ([], 99)


def test_same_records_from_same_version_encode_byte_identically() -> None:
    encoder = Encoder()
    page = [record(i, name) for i, name in enumerate(["INSERT", "MODIFY", "REMOVE"])]
    a, _ = change_events(page, SOURCE, 5)
    b, _ = change_events(page, SOURCE, 5)
    assert [encoder.encode(e) for e in a] == [encoder.encode(e) for e in b]


def test_a_record_missing_its_keys_names_the_shard() -> None:
    broken = record(1)
    del broken["dynamodb"]["Keys"]
    with pytest.raises(RecordError, match="shardId-1 lacks 'Keys'"):
        change_events([broken], SOURCE, 0)


def test_unknown_event_name_is_refused() -> None:
    with pytest.raises(RecordError, match="unknown eventName"):
        change_events([record(1, "UPSERT")], SOURCE, 0)
