"""Synthetic changes of a table that exists only in the simulator: realistic items and the
table's expected final state (the tests' oracle).

Items carry every DynamoDB type: S (unicode), N (one attribute mixing integers, decimals and
38-digit numbers), B, BOOL, NULL, SS, NS, BS, heterogeneous lists, nested maps, an attribute
whose type drifts from change to change, and a padding string that brings each item to its
drawn size (log-uniform between two bounds, or a share of large items up to 400 KB). Other
shapes stress encoders: a list of NULLs or BOOLs, a map nested 31 levels, a map of thousands
of short attributes. Seeded: the same seed gives the same changes.
"""

from __future__ import annotations

import base64
import dataclasses
import enum
import math
import random
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from dynabridge.streamsim.config import ConfigError
from dynabridge.streamsim.records import (
    MAX_ITEM_BYTES,
    Change,
    Item,
    item_size,
    number_size,
    value_size,
)
from dynabridge.streamsim.world import KeyAttribute

WRITE_TIME_ATTRIBUTE = "written_at_us"
"""The attribute stamped with the change's wall-clock time (epoch microseconds) on request."""


class Shape(enum.StrEnum):
    REALISTIC = "realistic"
    NULL_LIST = "null_list"
    BOOL_LIST = "bool_list"
    DEEP_MAP = "deep_map"
    WIDE_MAP = "wide_map"


@dataclass(frozen=True, slots=True)
class GeneratorConfig:
    rate_per_s: float = 100.0
    """Changes per second (0: paused)."""
    total: int = 0
    """Stop after this many changes; 0: never."""
    items: int = 1000
    """Size of the key space: items are inserted, modified and removed within it."""
    remove_share: float = 0.1
    """The share of changes to an existing item that remove it."""
    ttl_share: float = 0.0
    """The share of removes done by TTL (``userIdentity`` Service / dynamodb.amazonaws.com)."""
    item_bytes_min: int = 100
    item_bytes_max: int = 2000
    """Item sizes (DynamoDB's size rules) are log-uniform in ``[min, max]``."""
    large_share: float = 0.0
    """The share of items drawn at ``large_item_bytes`` instead."""
    large_item_bytes: int = 400_000
    shape: str = Shape.REALISTIC.value
    stamp_write_time: bool = False
    """Stamp ``written_at_us`` (epoch µs of the change) on every item, for latency benchmarks."""
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rate_per_s < 0 or self.total < 0 or self.items < 1:
            raise ConfigError("rate_per_s and total must be >= 0, items >= 1")
        for name in ("remove_share", "ttl_share", "large_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ConfigError(f"{name} is a fraction in [0, 1], got {getattr(self, name)}")
        if not 16 <= self.item_bytes_min <= self.item_bytes_max <= MAX_ITEM_BYTES:
            raise ConfigError(
                f"item sizes must satisfy 16 <= item_bytes_min <= item_bytes_max <= "
                f"{MAX_ITEM_BYTES} (400 KB), got {self.item_bytes_min}, {self.item_bytes_max}"
            )
        if not 16 <= self.large_item_bytes <= MAX_ITEM_BYTES:
            raise ConfigError(f"large_item_bytes must be at most {MAX_ITEM_BYTES} (400 KB)")
        if self.shape not in {shape.value for shape in Shape}:
            raise ConfigError(
                f"shape {self.shape!r} is not one of {', '.join(shape.value for shape in Shape)}"
            )

    def updated(self, changes: Mapping[str, Any]) -> GeneratorConfig:
        return dataclasses.replace(self, **_checked(changes))

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> GeneratorConfig:
        return cls(**_checked(data or {}))

    def as_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_FIELDS = {field.name: field.type for field in dataclasses.fields(GeneratorConfig)}
_TYPES: dict[str, type | tuple[type, ...]] = {
    "int": int, "float": (int, float), "bool": bool, "str": str,
}  # fmt: skip


def _checked(data: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key, raw in data.items():
        kind = _FIELDS.get(key)
        if kind is None:
            raise ConfigError(f"unknown generator setting {key!r}; known: {', '.join(_FIELDS)}")
        expected = _TYPES[str(kind)]
        if not isinstance(raw, expected) or (kind != "bool" and isinstance(raw, bool)):
            raise ConfigError(f"generator setting {key} must be a {kind}, got {raw!r}")
        values[key] = float(data[key]) if kind == "float" else raw
    return values


@dataclass(slots=True)
class StoredItem:
    json: bytes
    """The item in typed JSON, serialized once: records and reads embed it as is."""
    size: int
    turn: int


class TableState:
    """The synthetic table: its items by key (the oracle of the table's final state)."""

    def __init__(self, key_schema: tuple[KeyAttribute, ...]) -> None:
        self.key_schema = key_schema
        self.lock = threading.Lock()
        """Held while the generator changes the state and while it is read."""
        self.items: dict[bytes, StoredItem] = {}
        self.changes = 0

    def keys(self, index: int) -> Item:
        keys: Item = {}
        for key in self.key_schema:
            keys[key.name] = _key_value(key.type, index, key.key_type == "HASH")
        return keys

    def as_json(self) -> dict[str, Any]:
        return {
            "items": [orjson.Fragment(stored.json) for _, stored in sorted(self.items.items())],
            "changes": self.changes,
        }


def _key_value(kind: str, index: int, is_hash: bool) -> dict[str, str]:
    if kind == "S":
        return {"S": f"item-{index:07d}" if is_hash else f"sort#{index % 7}"}
    if kind == "N":
        return {"N": str(index) if is_hash else str(index % 7)}
    return {"B": base64.b64encode(index.to_bytes(4, "big") + b"\xff").decode()}


class ChangeMaker:
    """Draws the next change of a synthetic table and applies it to the table's state."""

    def __init__(
        self, state: TableState, config: GeneratorConfig, clock: Callable[[], float] = time.time
    ) -> None:
        self.state = state
        self.config = config
        self._rng = random.Random(config.seed)
        self._clock = clock

    def reseed(self, config: GeneratorConfig) -> None:
        if config.seed != self.config.seed:
            self._rng = random.Random(config.seed)
        self.config = config

    def next(self) -> Change:
        rng = self._rng
        config = self.config
        state = self.state
        keys = state.keys(rng.randrange(config.items))
        key = orjson.dumps(keys)
        stored = state.items.get(key)
        now = self._clock()
        state.changes += 1
        event_id = f"{rng.getrandbits(128):032x}"
        key_bytes = item_size(keys)
        if stored is not None and rng.random() < config.remove_share:
            del state.items[key]
            return Change(
                "REMOVE", keys, None, orjson.Fragment(stored.json), now, event_id,
                ttl_delete=rng.random() < config.ttl_share,
                size_bytes=key_bytes + stored.size,
            )  # fmt: skip
        turn = 0 if stored is None else stored.turn + 1
        item, size = self._item(keys, turn, now)
        serialized = orjson.dumps(item)
        state.items[key] = StoredItem(serialized, size, turn)
        new = orjson.Fragment(serialized)
        if stored is None:
            return Change("INSERT", keys, new, None, now, event_id, size_bytes=key_bytes + size)
        return Change(
            "MODIFY", keys, new, orjson.Fragment(stored.json), now, event_id,
            size_bytes=key_bytes + size + stored.size,
        )  # fmt: skip

    def _item(self, keys: Item, turn: int, now: float) -> tuple[Item, int]:
        rng = self._rng
        config = self.config
        if config.large_share and rng.random() < config.large_share:
            target = config.large_item_bytes
        else:
            low, high = math.log(config.item_bytes_min), math.log(config.item_bytes_max)
            target = int(math.exp(rng.uniform(low, high)))
        item: Item = dict(keys)
        item["rev"] = {"N": str(turn)}
        if config.stamp_write_time:
            item[WRITE_TIME_ATTRIBUTE] = {"N": str(int(now * 1_000_000))}
        body = _SHAPES[Shape(config.shape)]
        return body(rng, item, turn, target)


def _realistic(rng: random.Random, item: Item, turn: int, target: int) -> tuple[Item, int]:
    base = item_size(item)  # the keys, rev and the write stamp
    draw = rng.random()
    if draw < 0.4:
        amount = str(int(draw * 25_000))
    elif draw < 0.8:
        amount = f"{int(draw * 10_000)}.{int(draw * 1e6) % 100:02d}"
    else:
        amount = ("9" * 38, "-0.000001", "1E+5", "0")[int(draw * 1000) % 4]
    name = _NAMES[int(draw * 997) % len(_NAMES)] + f" {turn}"
    tags = sorted({f"tag{rng.randrange(9)}" for _ in range(3)})
    scores = sorted({_NUMBERS[rng.randrange(len(_NUMBERS))] for _ in range(3)})
    drift = _drifting(turn)
    item.update(
        {
            "name": {"S": name},
            "amount": {"N": amount},
            "active": {"BOOL": draw < 0.5},
            "blob": {"B": base64.b64encode(rng.randbytes(12)).decode()},
            "tags": {"SS": tags},
            "scores": {"NS": scores},
            "drift": drift,
            "history": _history(turn),
        }
    )
    # item_size() of what was just added, without walking it (the generator's hot path).
    size = (
        base
        + 4 + len(name.encode())
        + 6 + number_size(amount)
        + 6 + 1
        + 4 + 12
        + 4 + sum(map(len, tags))
        + 6 + sum(map(number_size, scores))
        + 5 + value_size(drift)
        + _history_size(turn)
        + _CONSTANT_SIZE
    )  # fmt: skip
    item.update(_CONSTANT)
    return _padded(item, target, size)


def _history(turn: int) -> dict[str, Any]:
    return {"L": [
        {"S": "created"}, {"N": str(turn)}, {"BOOL": True}, {"NULL": True},
        {"M": {"at": {"N": str(turn * 10)}, "by": {"S": "system"}}},
        {"L": [{"N": "1.5"}, {"S": "x"}]},
    ]}  # fmt: skip


def _history_size(turn: int) -> int:
    """``item_size({"history": _history(turn)})`` without walking it."""
    return _HISTORY_BASE + number_size(str(turn)) + number_size(str(turn * 10))


_NAMES = ("Zoë", "Łukasz", "大輔", "Ana", "O'Brien")
_NUMBERS = ("1", "2.5", "-3", "1000000", "0.125")
_CONSTANT: Item = {
    "nothing": {"NULL": True},
    "chunks": {"BS": ["AAE=", "/w=="]},  # b"\x00\x01", b"\xff"
    "profile": {"M": {
        "address": {"M": {"city": {"S": "Paris"}, "geo": {"M": {
            "lat": {"N": "48.8566"}, "lon": {"N": "2.3522"}}}}},
        "prefs": {"L": [{"S": "email"}, {"BOOL": False}]},
    }},
}  # fmt: skip
_CONSTANT_SIZE = item_size(_CONSTANT)
_HISTORY_BASE = item_size({"history": _history(0)}) - 2 * number_size("0")


def _drifting(turn: int) -> dict[str, Any]:
    """The attribute whose type changes: N, S, M, L, BOOL, in turn."""
    kind = turn % 5
    if kind == 0:
        return {"N": str(turn)}
    if kind == 1:
        return {"S": f"text-{turn}"}
    if kind == 2:
        return {"M": {"k": {"N": "1"}}}
    if kind == 3:
        return {"L": [{"S": "x"}, {"N": "2"}]}
    return {"BOOL": turn % 2 == 0}


def _padded(item: Item, target: int, size: int | None = None) -> tuple[Item, int]:
    size = item_size(item) if size is None else size
    room = target - size - len("payload")
    if room > 0:
        item["payload"] = {"S": "p" * room}
        size += len("payload") + room
    return item, size


def _listed(kind: str) -> Callable[[random.Random, Item, int, int], tuple[Item, int]]:
    def shape(rng: random.Random, item: Item, turn: int, target: int) -> tuple[Item, int]:
        base = item_size(item) + len("values") + 3
        count = max(1, (target - base) // 2)  # each element: 1 byte + 1 byte of list overhead
        element = {"NULL": True} if kind == "NULL" else {"BOOL": turn % 2 == 0}
        item["values"] = {"L": [element] * count}
        return item, base + 2 * count

    return shape


def _deep_map(rng: random.Random, item: Item, turn: int, target: int) -> tuple[Item, int]:
    value: dict[str, Any] = {"S": "leaf"}
    for level in range(30):  # DynamoDB allows 32 levels of nesting
        value = {"M": {f"level{level}": value, "n": {"N": str(level + turn)}}}
    item["deep"] = value
    return _padded(item, target)


def _wide_map(rng: random.Random, item: Item, turn: int, target: int) -> tuple[Item, int]:
    base = item_size(item) + len("wide") + 3
    count = max(1, (target - base) // 10)  # "a000001" + {"N": "5"} + 1 byte of map overhead
    item["wide"] = {"M": {f"a{i:06d}": {"N": str(1 + (i + turn) % 9)} for i in range(count)}}
    return item, item_size(item)


_SHAPES: dict[Shape, Callable[[random.Random, Item, int, int], tuple[Item, int]]] = {
    Shape.REALISTIC: _realistic,
    Shape.NULL_LIST: _listed("NULL"),
    Shape.BOOL_LIST: _listed("BOOL"),
    Shape.DEEP_MAP: _deep_map,
    Shape.WIDE_MAP: _wide_map,
}


def read(state: TableState, operation: str, request: dict[str, Any]) -> dict[str, Any]:
    """GetItem and Scan of a synthetic table, from its state (strongly consistent).

    Scan pages in key order (``Limit``, ``ExclusiveStartKey``) and honours parallel
    ``Segment``/``TotalSegments``; expressions and projections are ignored.
    """
    names = [key.name for key in state.key_schema]
    if operation == "GetItem":
        raw = request.get("Key") or {}
        try:
            key = orjson.dumps({name: raw[name] for name in names})
        except KeyError:
            raise ConfigError(f"GetItem needs the key attributes {names}") from None
        stored = state.items.get(key)
        return {"Item": orjson.Fragment(stored.json)} if stored is not None else {}
    ordered = sorted(state.items.items())
    start = request.get("ExclusiveStartKey")
    if isinstance(start, dict):
        after = orjson.dumps({name: start[name] for name in names if name in start})
        ordered = [(k, v) for k, v in ordered if k > after]
    total = request.get("TotalSegments")
    if isinstance(total, int) and total > 1:
        segment = int(request.get("Segment", 0))
        ordered = [(k, v) for k, v in ordered if zlib.crc32(k) % total == segment]
    limit = request.get("Limit")
    page = ordered[:limit] if isinstance(limit, int) and limit > 0 else ordered
    answer: dict[str, Any] = {
        "Items": [orjson.Fragment(stored.json) for _, stored in page],
        "Count": len(page),
        "ScannedCount": len(page),
    }
    if len(page) < len(ordered):
        answer["LastEvaluatedKey"] = orjson.Fragment(page[-1][0])
    return answer
