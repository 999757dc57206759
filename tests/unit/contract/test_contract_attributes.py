"""DynamoDB typed JSON <-> text: lossless for every type, canonical, strict on malformed input."""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.contract import ContractError, dumps_item, loads_item, normalize_number, validate_item
from bridge.contract import attributes as attributes_module

from .contract_strategies import attribute_values, items, numbers


@given(items)
def test_every_type_survives_the_text_round_trip(item: dict[str, Any]) -> None:
    validate_item(item)
    assert loads_item(dumps_item(item)) == item


@given(attribute_values)
def test_text_is_canonical_whatever_the_dict_order(value: dict[str, Any]) -> None:
    item: dict[str, Any] = {"b": value, "a": {"S": "x"}, "c": {"M": {"z": value, "y": {"N": "1"}}}}
    reordered: dict[str, Any] = {
        "c": {"M": {"y": {"N": "1"}, "z": value}},
        "a": {"S": "x"},
        "b": value,
    }
    text = dumps_item(item)
    assert text == dumps_item(reordered)
    assert text == json.dumps(
        json.loads(text), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def test_binary_is_base64_and_utf8_is_kept() -> None:
    item: dict[str, Any] = {"b": {"B": b"\x00\xff"}, "s": {"S": "é😀"}, "bs": {"BS": [b"a", b""]}}
    text = dumps_item(item)
    assert text == '{"b":{"B":"AP8="},"bs":{"BS":["YQ==",""]},"s":{"S":"é😀"}}'


@pytest.mark.skipif(attributes_module._orjson is None, reason="orjson not installed")
@given(items)
def test_accelerated_text_equals_the_standard_library(item: dict[str, Any]) -> None:
    assert dumps_item(item) == attributes_module._stdlib_dumps_item(item)


def test_extreme_numbers_and_empty_values_survive() -> None:
    item: dict[str, Any] = {
        "big": {"N": "9.9999999999999999999999999999999999999E+125"},
        "small": {"N": "-1E-130"},
        "digits": {"N": "12345678901234567890123456789012345678"},
        "empty_s": {"S": ""},
        "empty_b": {"B": b""},
        "empty_m": {"M": {}},
        "empty_l": {"L": []},
        "ns": {"NS": ["1", "1E+125", "-0.5"]},
    }
    validate_item(item)
    assert loads_item(dumps_item(item)) == item


def _nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"S": "bottom"}
    for level in range(depth):
        value = {"M": {"level": value}} if level % 2 else {"L": [value]}
    return value


def test_nesting_32_levels_survives() -> None:
    item = {"deep": _nested(32)}
    validate_item(item)
    assert loads_item(dumps_item(item)) == item


@pytest.mark.parametrize("char", ["a", "é", "€", "😀"])
def test_400_kb_items_survive(char: str) -> None:
    count = 400 * 1024 // len(char.encode()) - 64
    item = {"pk": {"S": "k"}, "payload": {"S": char * count}}
    text = dumps_item(item)
    assert len(text.encode()) >= 399 * 1024
    assert loads_item(text) == item


@pytest.mark.parametrize(
    ("written", "canonical"),
    [
        ("1.0", "1"),
        ("1E+3", "1000"),
        ("1e3", "1000"),
        ("-0", "0"),
        ("-0.000", "0"),
        ("0E+99", "0"),
        ("0.10", "0.1"),
        ("+5", "5"),
        ("007.50", "7.5"),
        (".5", "0.5"),
        ("5.", "5"),
        ("-1.5E-3", "-0.0015"),
        ("1E-130", "0." + "0" * 129 + "1"),
        ("1E+125", "1" + "0" * 125),
        (
            "12345678901234567890123456789012345678E+88",
            "12345678901234567890123456789012345678" + "0" * 88,
        ),
        ("1000000000000000000000000000000000000000000", "1" + "0" * 42),
    ],
)
def test_numbers_normalize_to_plain_decimals(written: str, canonical: str) -> None:
    assert normalize_number(written) == canonical


@given(numbers())
def test_normalizing_keeps_the_value_and_is_idempotent(written: str) -> None:
    canonical = normalize_number(written)
    assert Decimal(canonical) == Decimal(written)
    assert normalize_number(canonical) == canonical
    assert "E" not in canonical
    assert canonical == "0" or not canonical.lstrip("-").startswith("00")


@given(numbers(), numbers())
def test_equal_numbers_have_one_canonical_form(a: str, b: str) -> None:
    assert (normalize_number(a) == normalize_number(b)) == (Decimal(a) == Decimal(b))


@pytest.mark.parametrize(
    ("written", "complaint"),
    [
        ("", "not a number"),
        ("abc", "not a number"),
        ("NaN", "not a number"),
        ("Infinity", "not a number"),
        ("1_000", "not a number"),
        (" 1", "not a number"),
        ("1e", "not a number"),
        ("0x10", "not a number"),
        ("1" * 39, "39 significant digits"),
        ("1.00000000000000000000000000000000000001", "39 significant digits"),
        ("1E+126", "outside DynamoDB's range"),
        ("9.9E-131", "outside DynamoDB's range"),
        ("-1E+126", "outside DynamoDB's range"),
    ],
)
def test_malformed_numbers_are_refused(written: str, complaint: str) -> None:
    with pytest.raises(ContractError, match=complaint):
        normalize_number(written)


@pytest.mark.parametrize(
    ("item", "path", "complaint"),
    [
        ({"a": {"S": 1}}, "a", "S holds a string"),
        ({"a": {"N": "x"}}, "a", "not a number"),
        ({"a": {"N": 5}}, "a", "not a number"),
        ({"a": {"B": "text"}}, "a", "B holds bytes"),
        ({"a": {"BOOL": "true"}}, "a", "BOOL holds true or false"),
        ({"a": {"NULL": False}}, "a", "NULL holds true"),
        ({"a": {"X": 1}}, "a", "unknown type tag"),
        ({"a": {"S": "x", "N": "1"}}, "a", "exactly one type tag"),
        ({"a": {"SS": []}}, "a", "no empty sets"),
        ({"a": {"SS": ["x", "x"]}}, "a", "each member once"),
        ({"a": {"NS": ["1", "1.0"]}}, "a", "each member once"),
        ({"a": {"BS": ["x"]}}, "a", "B holds bytes"),
        (
            {"a": {"M": {"b": {"L": [{"S": "ok"}, {"M": {"c": {"N": "1E+999"}}}]}}}},
            "a.b[1].c",
            "range",
        ),
        ({"a": {"L": [{"L": [{"BOOL": 1}]}]}}, "a[0][0]", "BOOL"),
    ],
)
def test_malformed_values_are_refused_naming_the_path(
    item: dict[str, Any], path: str, complaint: str
) -> None:
    with pytest.raises(ContractError, match=complaint) as raised:
        validate_item(item)
    assert f"malformed attribute {path}:" in str(raised.value)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("not json", "not JSON"),
        ("[]", "an item is a mapping"),
        ('{"a": {"B": "!!not base64!!"}}', "base64"),
        ('{"a": {"BS": ["AA==", "AA=="]}}', "each member once"),
        ('{"a": {"N": "1e999"}}', "range"),
        ('{"a": {"S": "x"}, "b": 1}', "exactly one type tag"),
        ('{"a": {"L": {"S": "x"}}}', "L holds a list"),
        ("[" * 100_000, "JSON|deeply"),
    ],
)
def test_malformed_text_is_refused(text: str, complaint: str) -> None:
    with pytest.raises(ContractError, match=complaint):
        loads_item(text)


def test_dumping_refuses_what_json_cannot_carry() -> None:
    with pytest.raises(ContractError, match="not DynamoDB typed JSON"):
        dumps_item({"a": {"N": object()}})


@given(st.text(alphabet='{}[]":, SNBLMOOLNUL1.Ee-trufalsA=', max_size=40))
def test_loading_garbage_raises_only_contract_errors(text: str) -> None:
    with contextlib.suppress(ContractError):
        loads_item(text)
