"""--key parsing: plain or typed JSON, typed by the key schema, canonical as the bridge keys."""

from __future__ import annotations

import pytest

from bridge.contract import kafka_key
from dynabridge.operations.item_keys import (
    KeyAttribute,
    KeyInputError,
    KeySchema,
    ScalarType,
    parse_key,
)

SCHEMA = KeySchema((KeyAttribute("pk", ScalarType.S), KeyAttribute("sk", ScalarType.N)))


@pytest.mark.parametrize(
    "text",
    [
        '{"pk": "a", "sk": 3}',
        '{"sk": 3.0, "pk": "a"}',
        '{"pk": "a", "sk": "3"}',
        '{"pk": {"S": "a"}, "sk": {"N": "3.00"}}',
        '{"pk": "a", "sk": {"N": "3E0"}}',
    ],
)
def test_plain_and_typed_keys_give_the_same_canonical_key(text: str) -> None:
    keys = parse_key(text, SCHEMA)
    assert keys == {"pk": {"S": "a"}, "sk": {"N": "3"}}
    assert kafka_key(keys) == kafka_key({"pk": {"S": "a"}, "sk": {"N": "3"}})


def test_big_numbers_keep_every_digit() -> None:
    keys = parse_key('{"pk": "a", "sk": 12345678901234567890.5}', SCHEMA)
    assert keys["sk"] == {"N": "12345678901234567890.5"}


def test_binary_keys_are_base64() -> None:
    schema = KeySchema((KeyAttribute("id", ScalarType.B),))
    assert parse_key('{"id": "AQI="}', schema) == {"id": {"B": b"\x01\x02"}}
    assert parse_key('{"id": {"B": "AQI="}}', schema) == {"id": {"B": b"\x01\x02"}}
    with pytest.raises(KeyInputError, match="base64"):
        parse_key('{"id": "not base64!"}', schema)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pk=a", "not valid JSON"),
        ('["a", 3]', "JSON object"),
        ('{"pk": "a"}', "missing sk"),
        ('{"pk": "a", "sk": 3, "x": 1}', "not key attributes: x"),
        ('{"pk": 3, "sk": 3}', "pk is S in the table"),
        ('{"pk": "a", "sk": "three"}', "not a number"),
        ('{"pk": {"N": "1"}, "sk": 3}', "pk is S in the table, not N"),
        ('{"pk": "", "sk": 3}', "non-empty"),
        ('{"pk": "a", "sk": true}', "sk is N in the table"),
    ],
)
def test_bad_keys_are_refused_naming_the_problem(text: str, message: str) -> None:
    with pytest.raises(KeyInputError, match=message) as raised:
        parse_key(text, SCHEMA)
    assert "--key" in str(raised.value)
