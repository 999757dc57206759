"""The trusted decode path indexes what the checked one does and refuses what it refuses."""

from __future__ import annotations

import io
import json
from typing import Any

import fastavro
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.contract import (
    FINGERPRINT,
    SCHEMA,
    SINGLE_OBJECT_MAGIC,
    ChangeEvent,
    ContractError,
    Encoder,
    decode,
    dumps_item,
)
from consumers.indexer.actions import Action
from consumers.indexer.documents import build_action
from tests.unit.contract.contract_strategies import change_events, items


def _checked(value: bytes) -> Action | str:
    """The path before the fast one: every value checked by decode, then converted."""
    try:
        return build_action(decode(value), "idx-")
    except ContractError:
        return "refused"


def _trusted(value: bytes) -> Action | str:
    try:
        return build_action(decode(value, validate=False), "idx-")
    except ContractError:
        return "refused"


@given(change_events())
def test_the_bridges_events_index_exactly_as_before(event: ChangeEvent) -> None:
    value = Encoder().encode(event)
    assert _trusted(value) == _checked(value)


def _value(new_image: str, keys: str = '{"pk":{"S":"a"}}') -> bytes:
    record = {
        "table": "orders",
        "event_name": "MODIFY",
        "event_id": "e",
        "stream_arn": "arn",
        "shard_id": "s",
        "sequence_number": "1" * 21,
        "approximate_creation_time": 0,
        "version": 7,
        "keys": keys,
        "new_image": new_image,
        "old_image": None,
        "ttl_delete": False,
        "origin": "STREAM",
    }
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, SCHEMA, record)
    return SINGLE_OBJECT_MAGIC + FINGERPRINT + buffer.getvalue()


# Any JSON at all, and JSON shaped like typed values with the wrong payloads.
_json: st.SearchStrategy[Any] = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.sampled_from(["", "1", "x", "AAE=", "!"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["S", "N", "B", "BOOL", "NULL", "M", "L", "SS", "NS", "BS", "X", "a"]),
            children,
            max_size=2,
        )
    ),
    max_leaves=12,
)


@given(st.one_of(_json, st.dictionaries(st.sampled_from(["a", "b"]), _json, max_size=3)))
def test_any_image_is_refused_by_the_trusted_path_exactly_when_the_checked_path_refuses_it(
    image: Any,
) -> None:
    value = _value(json.dumps(image))
    assert _trusted(value) == _checked(value)


@given(items)
def test_valid_images_from_any_writer_index_as_before(item: dict[str, Any]) -> None:
    value = _value(dumps_item(item))
    assert _trusted(value) == _checked(value) != "refused"


@pytest.mark.parametrize(
    "image",
    [
        '{"v":{"X":"1"}}',  # unknown type tag
        '{"v":{"N":"abc"}}',  # not a number
        '{"v":{"N":"1e200"}}',  # outside DynamoDB's range
        '{"v":{"N":1}}',  # a JSON number, not a number string
        '{"v":{"B":"!!!"}}',  # not base64
        '{"v":{"B":1}}',
        '{"v":{"S":"a","N":"1"}}',  # two type tags
        '{"v":{}}',
        '{"v":"x"}',  # not a typed value
        '{"v":{"S":1}}',
        '{"v":{"BOOL":"true"}}',
        '{"v":{"NULL":false}}',
        '{"v":{"M":[]}}',
        '{"v":{"L":{}}}',
        '{"v":{"L":[{"S":"a"},"b"]}}',
        '{"v":{"SS":[]}}',  # DynamoDB has no empty sets
        '{"v":{"SS":["a","a"]}}',
        '{"v":{"NS":["1","1.0"]}}',  # one number twice
        '{"v":{"NS":["x"]}}',
        '{"v":{"BS":["AAE=","AAE="]}}',
        '{"v":{"M":{"deep":{"M":{"er":{"N":"--1"}}}}}}',
        "[]",
        '"image"',
    ],
)
def test_malformed_images_are_contract_errors_on_the_trusted_path(image: str) -> None:
    with pytest.raises(ContractError, match=r"malformed attribute|not base64|item"):
        build_action(decode(_value(image), validate=False), "idx-")
    assert _checked(_value(image)) == "refused"


def test_the_error_names_the_attribute_path() -> None:
    with pytest.raises(ContractError, match=r"malformed attribute m\.l\[1\]: .*not a number"):
        build_action(
            decode(_value('{"m":{"M":{"l":{"L":[{"N":"1"},{"N":"x"}]}}}}'), validate=False), ""
        )


@pytest.mark.parametrize("keys", ['{"pk":{"N":"x"}}', '{"pk":{"S":1}}', "[]", '{"pk":{"B":"!"}}'])
def test_malformed_keys_are_refused_by_decode_itself(keys: str) -> None:
    with pytest.raises(ContractError, match="keys"):
        decode(_value("{}", keys=keys), validate=False)
