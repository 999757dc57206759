"""Items shaped like real tables': every DynamoDB type, types mixed in one attribute across
items and across changes of one item, nested, heterogeneous, wide, deep, big, and names the
search engines reserve. Seeded: the same seed gives the same items.
"""

from __future__ import annotations

import random
from typing import Any

Item = dict[str, dict[str, Any]]

RESERVED_NAMES = ("_id", "_source", "_routing", "ddb", ".", "a..b", ".x", "~x", " ")


def deep_map(depth: int, leaf: dict[str, Any]) -> dict[str, Any]:
    """A map nested ``depth`` levels deep (DynamoDB allows 32) ending in ``leaf``."""
    value = leaf
    for level in range(depth):
        value = {"M": {f"level{level}": value, "n": {"N": str(level)}}}
    return value


def drifting(turn: int) -> dict[str, Any]:
    """One attribute's value on its ``turn``-th change: N, then S, then M, then L, then BOOL."""
    shapes: list[dict[str, Any]] = [
        {"N": str(turn)},
        {"S": f"text-{turn}"},
        {"M": {"k": {"N": "1"}, "s": {"S": "v"}}},
        {"L": [{"S": "x"}, {"N": "1"}, {"M": {"deep": {"S": "y"}}}]},
        {"BOOL": turn % 2 == 0},
    ]
    return shapes[turn % 5]


def shaped_item(rng: random.Random, number: int, turn: int = 0) -> Item:
    """Item ``number`` of a realistic table, as its ``turn``-th change left it."""
    item: Item = {
        "pk": {"S": f"item-{number}"},
        "price": {"N": rng.choice(["10", "9.99", "0", "-3", "1E+3", "12345678901234567890"])},
        "qty": {"N": str(rng.randrange(100))},
        "ns": {"NS": sorted({rng.choice(["1", "2.5", "10", "-0.125"]) for _ in range(3)})},
        "mixed": {"L": [{"S": "x"}, {"N": "1"}, {"M": {"deep": {"S": "y"}}}, {"NULL": True}]},
        "drift": drifting(number + turn),
        "tags": {"SS": sorted({f"t{rng.randrange(5)}" for _ in range(3)})},
        "flag": {"BOOL": rng.random() < 0.5},
        "nothing": {"NULL": True},
        "bin": {"B": bytes(rng.randrange(256) for _ in range(8))},
        "bins": {"BS": [b"\x00\x01", b"\xff"]},
        "big_int": {"N": "9" * 38},
        "tiny": {"N": "1E-130"},
        "text": {"S": "héllo wörld " * rng.randrange(1, 4)},
        "profile": {
            "M": {
                "name": {"S": f"n{number}"},
                "age": {"N": str(rng.randrange(90))},
                "address": {"M": {"city": {"S": "Paris"}, "zip": {"S": "75001"}}},
                "scores": {"L": [{"N": "1"}, {"N": "2.5"}]},
            }
        },
    }
    if number % 7 == 0:
        item["deep"] = deep_map(31, {"S": "bottom"})
    if number % 11 == 0:
        item["wide"] = {"M": {f"key{k}": {"N": str(k)} for k in range(1500)}}
    if number % 5 == 0:
        for name in RESERVED_NAMES:
            item[name] = {"S": f"reserved {name!r}"}
    if number % 13 == 0:
        item["nulls"] = {"L": [{"NULL": True}] * 20000}
    if number % 17 == 0:
        item["long_text"] = {"S": "z" * 40000}
        item["long_in_map"] = {"M": {"body": {"S": "q" * 40000}, "ok": {"S": "fine"}}}
    return item
