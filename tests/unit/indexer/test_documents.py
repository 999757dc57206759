"""Document building: ids are injective and bounded, JSON conversion never loses a digit."""

from __future__ import annotations

import json
import math
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.contract import ChangeEvent, ContractError, EventName, Item, Origin
from consumers.indexer.actions import Action, ActionKind
from consumers.indexer.documents import (
    HASHED_ID_PREFIX,
    MAX_ID_BYTES,
    build_action,
    doc_id,
    index_collisions,
    index_name,
    to_plain_json,
)
from consumers.indexer.numbers import plain_number

# DynamoDB strings are UTF-8, so they never hold a lone surrogate (category Cs).
_UNICODE = st.characters(codec="utf-8")
# Strings rich in the characters the id encoding must cope with.
_TRICKY = st.text(
    alphabet=st.sampled_from(["|", "%", "~", "7", "C", "E", "2", "5", "a", " ", "é", "\x00"])
    | _UNICODE,
    min_size=1,
    max_size=40,
)
_LONG = st.text(alphabet=_UNICODE, min_size=100, max_size=600)
# DynamoDB numbers: up to 38 significant digits, magnitude 1E-130 .. < 1E+126.
_NUMBERS = st.builds(
    lambda digits, exponent: Decimal(f"{digits}E{exponent}"),
    st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1) | st.integers(-999, 999),
    st.integers(min_value=-40, max_value=10) | st.integers(min_value=-130, max_value=88),
).filter(lambda d: d == 0 or -130 <= d.adjusted() <= 125)


def _value(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    if kind == "S":
        return st.one_of(_TRICKY, _LONG).map(lambda s: {"S": s})
    if kind == "N":
        return st.integers(min_value=-(10**38) + 1, max_value=10**38 - 1).map(
            lambda n: {"N": str(n)}
        )
    return st.binary(min_size=1, max_size=700).map(lambda b: {"B": b})


@st.composite
def _two_keys_of_one_schema(draw: st.DrawFn) -> tuple[Item, Item]:
    """A table's key schema (1-2 attributes, fixed types), and two keys of it."""
    names = draw(st.sampled_from([["pk"], ["pk", "sk"], ["b", "a"]]))
    kinds = [draw(st.sampled_from(["S", "N", "B"])) for _ in names]
    first = {name: draw(_value(kind)) for name, kind in zip(names, kinds, strict=True)}
    second = {name: draw(_value(kind)) for name, kind in zip(names, kinds, strict=True)}
    return first, second


@settings(max_examples=400, deadline=None)
@given(_two_keys_of_one_schema())
def test_distinct_keys_of_one_table_never_share_an_id(pair: tuple[Item, Item]) -> None:
    first, second = pair
    if first != second:
        assert doc_id(first) != doc_id(second)
    else:
        assert doc_id(first) == doc_id(second)


@settings(max_examples=200, deadline=None)
@given(_two_keys_of_one_schema())
def test_ids_are_bounded_and_hashed_only_when_long(pair: tuple[Item, Item]) -> None:
    for keys in pair:
        ident = doc_id(keys)
        assert len(ident.encode("utf-8")) <= MAX_ID_BYTES
        if ident.startswith(HASHED_ID_PREFIX):
            assert len(ident) == len(HASHED_ID_PREFIX) + 64
        else:
            assert "~" not in ident  # so a plain id can never look like a hashed one


def test_separator_characters_cannot_forge_another_key() -> None:
    # Data Prepper's "pk|sk" would map both of these to "a|b|c".
    assert doc_id({"pk": {"S": "a|b"}, "sk": {"S": "c"}}) != doc_id(
        {"pk": {"S": "a"}, "sk": {"S": "b|c"}}
    )
    assert doc_id({"pk": {"S": "a%7Cb"}}) != doc_id({"pk": {"S": "a|b"}})
    assert doc_id({"pk": {"S": "~sha256:" + "0" * 64}}).startswith("%7E")


def test_ids_are_readable_for_plain_keys() -> None:
    assert doc_id({"pk": {"S": "user-42"}}) == "user-42"
    assert doc_id({"sk": {"N": "7"}, "pk": {"S": "order"}}) == "order|7"  # attribute-name order
    assert doc_id({"pk": {"B": b"\xff\xfe"}}) == "__4="


def test_equal_numbers_written_differently_are_one_item() -> None:
    assert doc_id({"pk": {"N": "1.0"}}) == doc_id({"pk": {"N": "1"}}) == "1"
    assert doc_id({"pk": {"N": "1E+3"}}) == doc_id({"pk": {"N": "1000"}})


def test_a_key_at_the_limit_stays_plain_and_one_byte_more_is_hashed() -> None:
    at_limit = "é" * (MAX_ID_BYTES // 2)
    assert doc_id({"pk": {"S": at_limit}}) == at_limit
    hashed = doc_id({"pk": {"S": at_limit + "x"}})
    assert hashed.startswith(HASHED_ID_PREFIX)
    assert hashed != doc_id({"pk": {"S": at_limit + "y"}})


@pytest.mark.parametrize(
    "keys",
    [{}, {"a": {"S": "1"}, "b": {"S": "2"}, "c": {"S": "3"}}, {"pk": {"M": {}}}, {"pk": {"S": ""}}],
)
def test_what_is_not_a_primary_key_is_a_contract_error(keys: Item) -> None:
    with pytest.raises(ContractError):
        doc_id(keys)


# ---------------------------------------------------------------------------- numbers


@settings(max_examples=500, deadline=None)
@given(_NUMBERS)
def test_numbers_never_lose_a_digit(number: Decimal) -> None:
    text = str(number)
    plain = plain_number(text)
    # What a JSON reader gets back, read as exactly as it was written:
    written = json.dumps(plain)
    if isinstance(plain, str):
        assert Decimal(plain) == number
        assert "E" not in plain.upper()
    else:
        assert Decimal(written) == number
        # ... and read as a double, the same digits again (the exactness rule).
        assert Decimal(repr(float(written))) == number
    if isinstance(plain, int):
        assert abs(plain) <= 2**53


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("-17", -17),
        ("1E+3", 1000),
        ("2.50", 2.5),
        ("0.1", 0.1),
        ("19.99", 19.99),
        ("1E-130", 1e-130),
        ("9007199254740992", 2**53),
        ("-9007199254740992", -(2**53)),
        ("9007199254740993", "9007199254740993"),
        ("1E+22", "10000000000000000000000"),
        ("12345678901234567890123456789012345678", "12345678901234567890123456789012345678"),
        ("0.12345678901234567890", "0.1234567890123456789"),
    ],
)
def test_number_rule(text: str, expected: object) -> None:
    result = plain_number(text)
    assert result == expected
    assert type(result) is type(expected)


def test_every_type_converts() -> None:
    item: Item = {
        "s": {"S": "héllo"},
        "n": {"N": "42"},
        "b": {"B": b"\x00\x01"},
        "t": {"BOOL": True},
        "z": {"NULL": True},
        "m": {"M": {"inner": {"L": [{"N": "1.5"}, {"S": "x"}, {"M": {}}]}}},
        "ss": {"SS": ["b", "a", "c"]},
        "ns": {"NS": ["10", "-1", "2.5"]},
        "bs": {"BS": [b"\x02", b"\x01"]},
    }
    assert to_plain_json(item) == {
        "s": "héllo",
        "n": 42,
        "b": "AAE=",
        "t": True,
        "z": None,
        "m": {"inner": [1.5, "x", {}]},
        "ss": ["a", "b", "c"],
        "ns": [-1, 2.5, 10],
        "bs": ["AQ==", "Ag=="],
    }


def test_sets_give_the_same_document_in_any_order() -> None:
    assert to_plain_json({"ns": {"NS": ["3", "1", "2"]}}) == to_plain_json(
        {"ns": {"NS": ["2", "3", "1"]}}
    )


# ------------------------------------------------------------------------------ index names


@pytest.mark.parametrize(
    ("prefix", "table", "expected"),
    [
        ("", "Orders", "orders"),
        ("ddb-", "Orders.v2", "ddb-orders.v2"),
        ("my prefix/", "T", "my_prefix_t"),
        ("", "_private", "idx_private"),
        ("", ".hidden", "idx.hidden"),
        ("", "-x", "idx-x"),
    ],
)
def test_index_name_rule(prefix: str, table: str, expected: str) -> None:
    assert index_name(prefix, table) == expected


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80), st.text(min_size=1, max_size=300))
def test_index_names_are_always_valid(prefix: str, table: str) -> None:
    name = index_name(prefix, table)
    assert name == name.lower()
    assert name == index_name(prefix, table)
    assert 0 < len(name.encode("utf-8")) <= 255
    assert not any(ch in name for ch in '\\/*?"<>| ,#:')
    assert not name.startswith(("-", "_", "+", "."))
    assert name not in (".", "..")


def test_long_index_names_are_cut_and_stay_distinct() -> None:
    first = index_name("", "a" * 255 + "x")
    second = index_name("", "a" * 255 + "y")
    assert len(first) == len(second) == 255
    assert first != second


def test_collisions_are_reported() -> None:
    assert index_collisions("", ["Orders", "orders", "users"]) == {"orders": ["Orders", "orders"]}
    assert index_collisions("", ["orders", "users"]) == {}


# ---------------------------------------------------------------------------------- actions


def _event(name: EventName, image: Item | None, version: int = 7) -> ChangeEvent:
    return ChangeEvent(
        table="Orders",
        event_name=name,
        event_id="e1",
        stream_arn="arn",
        shard_id="shard",
        sequence_number="1" * 21,
        approximate_creation_time_ms=1_700_000_000_000,
        version=version,
        keys={"pk": {"S": "o1"}},
        new_image=image,
        old_image=None,
        origin=Origin.STREAM,
    )


@pytest.mark.parametrize("name", [EventName.INSERT, EventName.MODIFY])
def test_insert_and_modify_index_the_whole_image(name: EventName) -> None:
    image: Item = {"pk": {"S": "o1"}, "total": {"N": "9.5"}}
    assert build_action(_event(name, image), "ddb-") == Action(
        ActionKind.INDEX,
        "ddb-orders",
        "o1",
        7,
        {"pk": "o1", "total": 9.5},
        {"pk": {"S": "o1"}, "total": {"N": 9.5}},
        event_time_ms=1_700_000_000_000,
    )


def test_names_the_engines_refuse_are_renamed_in_source_and_typed_fields() -> None:
    image: Item = {"pk": {"S": "o1"}, "_id": {"S": "x"}, "ddb": {"N": "1"}, ".": {"BOOL": True}}
    action = build_action(_event(EventName.INSERT, image), "")
    assert action.document == {"pk": "o1", "~_id": "x", "~ddb": 1, "~%2E": True}
    assert action.typed is not None
    assert set(action.typed) == {"pk", "~_id", "~ddb", "~%252E"}  # shadow keys escape %


def test_remove_deletes() -> None:
    assert build_action(_event(EventName.REMOVE, None, version=9), "") == Action(
        ActionKind.DELETE, "orders", "o1", 9, None, event_time_ms=1_700_000_000_000
    )


def test_a_change_without_its_image_is_a_contract_error() -> None:
    with pytest.raises(ContractError, match="no new image"):
        build_action(_event(EventName.MODIFY, None), "")


def test_floats_in_documents_are_finite() -> None:
    doc = to_plain_json({"n": {"N": "9.9999999999999999999999999999999999999E+125"}})
    assert isinstance(doc["n"], str) or math.isfinite(doc["n"])
