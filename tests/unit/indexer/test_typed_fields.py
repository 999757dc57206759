"""Typed fields: one field per attribute and DynamoDB type, so no two values ever ask one field
for two types, whatever the items hold."""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from bridge.contract import Item
from consumers.indexer.documents import indexed_document, source_document, to_plain_json
from consumers.indexer.names import source_name
from consumers.indexer.typed_fields import (
    MARKERS,
    MAX_KEYWORD_CHARS,
    Fallback,
    TypedFieldRules,
    shadow_key,
    typed_fields,
    typed_from_source,
)
from tests.unit.contract.contract_strategies import items

LEAF_TYPES: dict[str, tuple[type, ...]] = {
    "S": (str,),
    "N": (int, float, str),
    "BOOL": (bool,),
    "B": (str,),
    "NULL": (bool,),
    "date": (str, int, float),
}


def _leaf_paths(tree: dict[str, Any], path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every path that ends at a kind marker, checking the values there as it goes."""
    found = []
    for key, value in tree.items():
        if key in MARKERS:
            values = value if isinstance(value, list) else [value]
            if key == "M":
                assert all(isinstance(v, dict) for v in values), (path, key, value)
            else:
                assert all(isinstance(v, LEAF_TYPES[key]) for v in values), (path, key, value)
                assert not any(isinstance(v, bool) for v in values) or key in ("BOOL", "NULL")
            found.append((*path, key))
        else:
            assert isinstance(value, dict), (path, key, value)
            assert "." not in key, key
            assert key.strip(), key
            found.extend(_leaf_paths(value, (*path, key)))
    return found


@given(items)
def test_every_leaf_holds_one_type_and_no_key_is_both_a_leaf_and_an_object(item: Item) -> None:
    for depth in (1, 3):
        fields = typed_fields(item, TypedFieldRules(depth=depth)).fields
        paths = _leaf_paths(fields)
        objects = {path[:i] for path in paths for i in range(1, len(path))}
        assert not objects & set(paths), "a path is a leaf in one place and an object in another"


def test_a_number_a_string_and_a_map_in_one_attribute_get_three_fields() -> None:
    item: Item = {"v": {"L": [{"S": "x"}, {"N": "1"}, {"N": "2.5"}, {"M": {"deep": {"S": "y"}}}]}}
    typed = typed_fields(item, TypedFieldRules())
    assert typed.fields == {"v": {"S": "x", "N": [1, 2.5], "M": {"deep": "y"}}}
    assert typed.fallbacks == [("v", Fallback.MIXED_TYPES)]


def test_maps_within_the_typed_depth_get_typed_fields_per_key() -> None:
    item: Item = {"addr": {"M": {"zip": {"N": "75001"}, "geo": {"M": {"lat": {"N": "48.8"}}}}}}
    assert typed_fields(item, TypedFieldRules(depth=1)).fields == {
        "addr": {"M": {"zip": 75001, "geo": {"lat": 48.8}}}
    }
    deep = typed_fields(item, TypedFieldRules(depth=2))
    assert deep.fields == {"addr": {"zip": {"N": 75001}, "geo": {"M": {"lat": 48.8}}}}
    assert deep.fallbacks == [("addr", Fallback.DEEP_MAP)]
    assert typed_fields(item, TypedFieldRules(depth=3)).fallbacks == []


def test_a_wide_map_is_indexed_as_keywords() -> None:
    item: Item = {"votes": {"M": {f"user{i}": {"N": "1"} for i in range(5)}}}
    typed = typed_fields(item, TypedFieldRules(depth=2, keys_per_map=4))
    assert list(typed.fields["votes"]) == ["M"]
    assert typed.fallbacks == [("votes", Fallback.WIDE_MAP)]


def test_strings_too_long_for_a_keyword_stay_out_of_keyword_maps_only() -> None:
    long = "x" * (MAX_KEYWORD_CHARS + 1)
    item: Item = {"m": {"M": {"body": {"S": long}, "ok": {"S": "y"}}}, "s": {"S": long}}
    typed = typed_fields(item, TypedFieldRules())
    assert typed.fields == {"m": {"M": {"ok": "y"}}, "s": {"S": long}}
    assert typed.fallbacks == [("m", Fallback.LONG_VALUE)]


def test_sets_binaries_nulls_and_dates() -> None:
    item: Item = {
        "tags": {"SS": ["a", "b"]},
        "ns": {"NS": ["1", "2.5"]},
        "bin": {"BS": [b"\x00"]},
        "gone": {"NULL": True},
        "at": {"S": "2026-12-04T10:00:00Z"},
    }
    fields = typed_fields(item, TypedFieldRules(date_attributes=frozenset({"at"}))).fields
    assert fields == {
        "tags": {"S": ["a", "b"]},
        "ns": {"N": [1, 2.5]},
        "bin": {"B": "AA=="},
        "gone": {"NULL": True},
        "at": {"S": "2026-12-04T10:00:00Z", "date": "2026-12-04T10:00:00Z"},
    }


def test_keys_that_would_nest_or_shadow_a_leaf_are_escaped() -> None:
    assert shadow_key("a.b") == "a%2Eb"
    assert shadow_key("N") == "~N"
    assert shadow_key("100%") == "100%25"
    assert shadow_key(" ") == "%20"
    item: Item = {"m": {"M": {"N": {"S": "x"}, "a.b": {"N": "1"}}}}
    assert typed_fields(item, TypedFieldRules(depth=2)).fields == {
        "m": {"~N": {"S": "x"}, "a%2Eb": {"N": 1}}
    }


def test_renamed_names_are_distinct_and_safe() -> None:
    names = ["_id", "_source", "", " ", ".", "..", "a..b", ".x", "~", "~_id", "ddb", "x", "a.b"]
    renamed = [source_name(name) for name in names]
    assert len(set(renamed)) == len(names)
    assert [n for n in renamed if not n.startswith("~")] == ["x", "a.b"]
    assert source_name("_id") == "~_id"
    assert source_name(".") == "~%2E"
    assert source_name("ddb") == "~ddb"


@given(items)
def test_the_fast_path_from_source_equals_the_reference_walk(item: Item) -> None:
    source = to_plain_json(item)
    for depth in (1, 2):
        rules = TypedFieldRules(depth=depth, keys_per_map=3)
        fast = typed_from_source(item, source, rules)
        reference = typed_fields(item, rules)
        assert _normal(fast.fields) == _normal(reference.fields)
        assert sorted(set(fast.fallbacks)) == sorted(set(reference.fallbacks))


def _normal(value: Any) -> Any:
    """Leaves as sorted lists: a set's members may come in another order, a single value
    unwrapped or not; what is indexed is the same."""
    if isinstance(value, dict):
        return {
            key: _normal(member if key not in MARKERS or isinstance(member, list) else [member])
            for key, member in value.items()
        }
    if isinstance(value, list):
        return sorted((_normal(m) for m in value), key=repr)
    return value


@given(items, st.sampled_from([1, 2]), st.booleans())
def test_the_one_walk_gives_exactly_the_source_and_typed_fields_of_the_two(
    item: Item, depth: int, dated: bool
) -> None:
    dates = frozenset(source_name(name) for name in list(item)[:1]) if dated else frozenset()
    rules = TypedFieldRules(depth=depth, keys_per_map=3, date_attributes=dates)
    source, typed = indexed_document(item, rules)
    assert orjson.dumps(source) == orjson.dumps(source_document(item))
    renamed = {source_name(name): value for name, value in item.items()}
    reference = typed_from_source(renamed, source, rules)
    assert orjson.dumps(typed.fields) == orjson.dumps(reference.fields)  # same bytes sent
    assert typed.fallbacks == reference.fallbacks


def test_long_strings_leave_keyword_maps_whether_the_map_is_short_or_long() -> None:
    long = "x" * (MAX_KEYWORD_CHARS + 1)
    wide = {f"k{i}": {"S": "v" * 30} for i in range(40)}  # over 1,024 bytes, no long string
    item: Item = {
        "m": {"M": {"long": {"S": long}, "ok": {"S": "y"}}},
        "w": {"M": wide},
        "l": {"L": [{"M": {"long": {"S": long}}}, {"S": long}]},
    }
    _, typed = indexed_document(item, TypedFieldRules())
    assert typed.fields["m"] == {"M": {"ok": "y"}}
    assert typed.fields["w"] == {"M": dict.fromkeys(wide, "v" * 30)}
    assert typed.fields["l"] == {"M": {}, "S": long}  # a text field takes long strings
    assert sorted(typed.fallbacks) == [
        ("l", Fallback.LONG_VALUE),
        ("l", Fallback.MIXED_TYPES),
        ("m", Fallback.LONG_VALUE),
    ]
