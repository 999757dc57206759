"""The record size bound: no 400 KB item grows past MAX_IMAGE_EXPANSION bytes of typed JSON per
byte of item size, and a MODIFY of the worst shapes fits MAX_RECORD_BYTES with both images.

Item sizes come from the tests' own oracle of DynamoDB's documented size rules
(tests/worst_items.py); images carry numbers as DynamoDB returns them (plain notation).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings

from bridge.contract import (
    MAX_IMAGE_EXPANSION,
    MAX_ITEM_BYTES,
    MAX_RECORD_BYTES,
    ChangeEvent,
    Encoder,
    EventName,
    headers,
    kafka_key,
    normalize_number,
)
from bridge.contract.attributes import dumps_item_utf8
from tests.unit.contract.contract_strategies import items
from tests.worst_items import SHAPES, item_size


def as_dynamodb_returns(value: Any) -> Any:
    """Numbers in plain notation, as DynamoDB gives them back."""
    if isinstance(value, dict):
        if set(value) == {"N"}:
            return {"N": normalize_number(value["N"])}
        if set(value) == {"NS"}:
            return {"NS": [normalize_number(n) for n in value["NS"]]}
        return {k: as_dynamodb_returns(v) for k, v in value.items()}
    if isinstance(value, list):
        return [as_dynamodb_returns(v) for v in value]
    return value


@settings(max_examples=100)
@given(items)
def test_no_item_grows_past_the_expansion_bound(item: dict[str, Any]) -> None:
    image = as_dynamodb_returns(item)
    assert len(dumps_item_utf8(image)) <= MAX_IMAGE_EXPANSION * item_size(image) + 2


def test_the_contract_constants_follow_dynamodbs_limit() -> None:
    assert MAX_ITEM_BYTES == 400 * 1024
    assert MAX_RECORD_BYTES > 2 * MAX_IMAGE_EXPANSION * MAX_ITEM_BYTES


@pytest.fixture(scope="module")
def worst() -> dict[str, dict[str, Any]]:
    return {shape: build() for shape, build in SHAPES.items()}


def test_every_worst_shape_is_a_legal_item_within_the_bound(
    worst: dict[str, dict[str, Any]],
) -> None:
    ratios = {}
    for shape, item in worst.items():
        size = item_size(item)
        assert MAX_ITEM_BYTES - 1024 < size <= MAX_ITEM_BYTES, shape
        ratios[shape] = len(dumps_item_utf8(item)) / size
        assert ratios[shape] <= MAX_IMAGE_EXPANSION, shape
    assert ratios["nulls"] > 6.9  # the issue's ~7x
    assert max(ratios.values()) > 0.95 * MAX_IMAGE_EXPANSION, "the bound is far from tight"


def test_a_modify_of_every_worst_shape_fits_a_record(worst: dict[str, dict[str, Any]]) -> None:
    encoder = Encoder()
    for shape, item in worst.items():
        keys = {"pk": item["pk"]}
        event = ChangeEvent(
            table="t" * 255,
            event_name=EventName.MODIFY,
            event_id="e" * 64,
            stream_arn="arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x" * 10,
            shard_id="shardId-" + "0" * 57,
            sequence_number="9" * 40,
            approximate_creation_time_ms=1_700_000_000_000,
            version=1_700_000_000_000_000,
            keys=keys,
            new_image=item,
            old_image=item,
        )
        record = len(encoder.encode(event)) + len(kafka_key(keys))
        record += sum(len(name) + len(value) for name, value in headers(event))
        assert record <= MAX_RECORD_BYTES, shape
