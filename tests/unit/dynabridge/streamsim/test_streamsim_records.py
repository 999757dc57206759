"""Record shapes, DynamoDB's item size rules, and the iterator tokens."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from dynabridge.streamsim.iterators import InvalidIteratorError, ShardIterator, parse
from dynabridge.streamsim.records import Change, encoder, item_size, number_size

KEYS = {"pk": {"S": "a"}}
NEW = {"pk": {"S": "a"}, "v": {"N": "2"}}
OLD = {"pk": {"S": "a"}, "v": {"N": "1"}}


def encoded(change: Change, view_type: str) -> dict[str, Any]:
    result = encoder(change, region="eu-west-1", view_type=view_type)("100000000000000000042")
    record: dict[str, Any] = orjson.loads(result.body)
    return record


@pytest.mark.parametrize(
    ("view_type", "images"),
    [
        ("KEYS_ONLY", set()),
        ("NEW_IMAGE", {"NewImage"}),
        ("OLD_IMAGE", {"OldImage"}),
        ("NEW_AND_OLD_IMAGES", {"NewImage", "OldImage"}),
    ],
)
def test_a_modify_record_carries_the_images_its_view_type_names(
    view_type: str, images: set[str]
) -> None:
    record = encoded(Change("MODIFY", KEYS, NEW, OLD, 1_800_000_000.9, "e1"), view_type)
    body = record["dynamodb"]
    assert isinstance(body, dict)
    assert {k for k in body if k.endswith("Image")} == images
    assert body["ApproximateCreationDateTime"] == 1_800_000_000
    assert body["SequenceNumber"] == "100000000000000000042"
    assert body["StreamViewType"] == view_type
    assert body["Keys"] == KEYS
    assert (record["eventSource"], record["eventVersion"], record["awsRegion"]) == (
        "aws:dynamodb", "1.1", "eu-west-1",
    )  # fmt: skip
    assert "userIdentity" not in record


def test_inserts_have_no_old_image_and_removes_no_new_one() -> None:
    insert = encoded(Change("INSERT", KEYS, NEW, None, 0.0, "e"), "NEW_AND_OLD_IMAGES")
    remove = encoded(Change("REMOVE", KEYS, None, OLD, 0.0, "e"), "NEW_AND_OLD_IMAGES")
    assert set(insert["dynamodb"]) & {"NewImage", "OldImage"} == {"NewImage"}
    assert set(remove["dynamodb"]) & {"NewImage", "OldImage"} == {"OldImage"}


def test_a_ttl_delete_names_the_dynamodb_service_as_botocores_identity_shape_spells_it() -> None:
    record = encoded(Change("REMOVE", KEYS, None, OLD, 0.0, "e", ttl_delete=True), "KEYS_ONLY")
    assert record["userIdentity"] == {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}


def test_size_bytes_follows_dynamodbs_rules_or_the_producers_figure() -> None:
    record = encoded(Change("MODIFY", KEYS, NEW, OLD, 0.0, "e"), "NEW_AND_OLD_IMAGES")
    assert record["dynamodb"]["SizeBytes"] == item_size(KEYS) + item_size(NEW) + item_size(OLD)
    given = encoded(Change("MODIFY", KEYS, NEW, OLD, 0.0, "e", size_bytes=777), "KEYS_ONLY")
    assert given["dynamodb"]["SizeBytes"] == 777


def test_item_size_rules() -> None:
    assert item_size({"ab": {"S": "héllo"}}) == 2 + 6
    assert item_size({"b": {"B": "AAEC"}}) == 1 + 3
    assert item_size({"f": {"BOOL": True}, "n": {"NULL": True}}) == 2 + 2
    assert item_size({"l": {"L": [{"NULL": True}] * 10}}) == 1 + 3 + 10 * 2
    assert item_size({"m": {"M": {"k": {"S": "v"}}}}) == 1 + 3 + (1 + 1 + 1)
    assert item_size({"s": {"SS": ["a", "bc"]}}) == 1 + 3
    assert number_size("12345") == 4  # 1 + ceil(5 digits / 2)
    assert number_size("-0.000001") == 2
    assert number_size("9" * 38) == 20


def test_iterators_round_trip_and_foreign_tokens_are_not_ours() -> None:
    iterator = ShardIterator("arn:aws:dynamodb:r:1:table/t/stream/l", "shardId-1", 41, 1234)
    assert parse(iterator.token()) == iterator
    assert parse("arn:aws:dynamodb:r:1:table/t/stream/l|1|bW90bw==") is None
    assert parse("garbage") is None
    damaged = iterator.token().rsplit("|", 1)[0] + "|c2ltMXxvbmx5"  # "sim1|only"
    with pytest.raises(InvalidIteratorError):
        parse(damaged)
