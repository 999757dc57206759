"""Synthetic changes: realistic items of every type at their drawn sizes, the worst shapes at
up to 400 KB, and a table state that is exactly what the changes did (the tests' oracle)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from dynabridge.streamsim.config import ConfigError, StreamConfig
from dynabridge.streamsim.records import MAX_ITEM_BYTES, Change, item_size
from dynabridge.streamsim.synthetic import (
    WRITE_TIME_ATTRIBUTE,
    ChangeMaker,
    GeneratorConfig,
    TableState,
    read,
)
from dynabridge.streamsim.world import KeyAttribute

KEYS = (KeyAttribute("pk", "S", "HASH"), KeyAttribute("sk", "N", "RANGE"))


def image(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    loaded: dict[str, Any] = orjson.loads(orjson.dumps(value))
    return loaded


def changes(config: GeneratorConfig, count: int) -> tuple[TableState, list[Change]]:
    state = TableState(KEYS)
    maker = ChangeMaker(state, config, clock=lambda: 1_800_000_000.5)
    return state, [maker.next() for _ in range(count)]


def types_in(value: dict[str, Any], found: set[str]) -> set[str]:
    ((kind, raw),) = value.items()
    found.add(kind)
    if kind == "M":
        for inner in raw.values():
            types_in(inner, found)
    if kind == "L":
        for inner in raw:
            types_in(inner, found)
    return found


def test_replaying_the_changes_gives_the_state_the_generator_reports() -> None:
    state, made = changes(GeneratorConfig(items=50, remove_share=0.3, seed=5), 2000)
    replayed: dict[bytes, dict[str, Any]] = {}
    for change in made:
        key = orjson.dumps(change.keys)
        new, old = image(change.new_image), image(change.old_image)
        if change.event_name == "INSERT":
            assert key not in replayed
            assert old is None
        else:
            assert replayed[key] == old
        if change.event_name == "REMOVE":
            del replayed[key]
        else:
            assert new is not None
            assert {k: new[k] for k in ("pk", "sk")} == change.keys
            replayed[key] = new
    assert {e.event_name for e in made} == {"INSERT", "MODIFY", "REMOVE"}
    reported = state.as_json()
    assert reported["changes"] == 2000
    assert [image(i) for i in reported["items"]] == [replayed[k] for k in sorted(replayed)]


def test_the_same_seed_gives_the_same_changes() -> None:
    config = GeneratorConfig(items=20, seed=9)
    first = [orjson.dumps(c.new_image) for c in changes(config, 100)[1]]
    second = [orjson.dumps(c.new_image) for c in changes(config, 100)[1]]
    assert first == second


def test_realistic_items_carry_every_type_and_an_attribute_whose_type_drifts() -> None:
    _, made = changes(GeneratorConfig(items=3, remove_share=0.0, stamp_write_time=True), 30)
    found: set[str] = set()
    drift_types = set()
    amounts = set()
    for change in made:
        new = image(change.new_image)
        assert new is not None
        for value in new.values():
            types_in(value, found)
        drift_types |= set(new["drift"])
        amounts.add("." in new["amount"]["N"])
        assert new[WRITE_TIME_ATTRIBUTE] == {"N": "1800000000500000"}
    assert found >= {"S", "N", "B", "BOOL", "NULL", "SS", "NS", "BS", "L", "M"}
    assert drift_types == {"N", "S", "M", "L", "BOOL"}


@pytest.mark.parametrize("shape", ["realistic", "null_list", "bool_list", "deep_map", "wide_map"])
def test_items_are_the_size_they_report_and_near_their_target(shape: str) -> None:
    config = GeneratorConfig(
        items=1, remove_share=0.0, shape=shape, large_share=1.0, large_item_bytes=MAX_ITEM_BYTES
    )
    state, made = changes(config, 2)
    for change in made:
        new = image(change.new_image)
        assert new is not None
        size = item_size(new)
        assert (stored := next(iter(state.items.values()))).size == item_size(
            orjson.loads(stored.json)
        )
        assert MAX_ITEM_BYTES - 64 <= size <= MAX_ITEM_BYTES
    modify = made[1]
    assert modify.event_name == "MODIFY"
    images = [image(modify.new_image) or {}, image(modify.old_image) or {}]
    assert modify.size_bytes == item_size(modify.keys) + sum(map(item_size, images))


def test_sizes_are_drawn_between_the_bounds() -> None:
    _, made = changes(GeneratorConfig(items=500, item_bytes_min=300, item_bytes_max=5000), 300)
    sizes = [item_size(image(c.new_image) or {}) for c in made if c.new_image is not None]
    assert min(sizes) >= 280
    assert max(sizes) <= 5000
    assert max(sizes) > 2500
    assert min(sizes) < 600


def test_ttl_removes_are_marked() -> None:
    _, made = changes(GeneratorConfig(items=5, remove_share=1.0, ttl_share=1.0), 50)
    removes = [c for c in made if c.event_name == "REMOVE"]
    assert removes
    assert all(c.ttl_delete for c in removes)


def test_scan_pages_and_get_item_read_the_state() -> None:
    state, _ = changes(GeneratorConfig(items=30, remove_share=0.0), 200)
    items, start = [], None
    while True:
        request: dict[str, Any] = {"Limit": 7}
        if start is not None:
            request["ExclusiveStartKey"] = start
        page = orjson.loads(orjson.dumps(read(state, "Scan", request)))
        items += page["Items"]
        start = page.get("LastEvaluatedKey")
        if start is None:
            break
    assert len(items) == len(state.items) == 30
    one = items[3]
    got = orjson.loads(
        orjson.dumps(read(state, "GetItem", {"Key": {"sk": one["sk"], "pk": one["pk"]}}))
    )
    assert got["Item"] == one
    segments = [read(state, "Scan", {"Segment": s, "TotalSegments": 3})["Count"] for s in range(3)]
    assert sum(segments) == 30


def test_generator_and_stream_settings_are_checked_by_name() -> None:
    with pytest.raises(ConfigError, match="unknown generator setting 'rate'"):
        GeneratorConfig.from_json({"rate": 5})
    with pytest.raises(ConfigError, match="400 KB"):
        GeneratorConfig.from_json({"item_bytes_max": 500_000})
    with pytest.raises(ConfigError, match="shape"):
        GeneratorConfig.from_json({"shape": "round"})
    with pytest.raises(ConfigError, match="unknown stream setting 'shard'"):
        StreamConfig.from_json({"shard": 2})
    with pytest.raises(ConfigError, match="throttle_rate is a fraction"):
        StreamConfig.from_json({"throttle_rate": 2})
    with pytest.raises(ConfigError, match="shards must be an integer"):
        StreamConfig.from_json({"shards": 2.5})
    assert StreamConfig.from_json({"retention_s": 5}).retention_s == 5.0
