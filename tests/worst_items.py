"""Legal DynamoDB items of the shapes that grow most as typed JSON, each filled to the 400 KB
item size limit, and the item size as DynamoDB's documented rules compute it (the oracle: it
does not use the contract's code).

Size rules (DynamoDB developer guide, "Item sizes and formats"): an attribute costs the UTF-8
bytes of its name plus its value; S: UTF-8 bytes; N: 1 byte per two significant digits + 1; B:
raw bytes; BOOL, NULL: 1; L, M: 3 + their elements, and every element of an L or M 1 byte more;
sets: their members. DynamoDB returns numbers in plain positional notation (1E-130 comes back as
"0." + 129 zeros + "1").
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

Item = dict[str, dict[str, Any]]

MAX_ITEM_BYTES = 400 * 1024
KEY: Item = {"pk": {"S": "worst"}}


@functools.lru_cache(maxsize=4096)
def number_size(text: str) -> int:
    digits = Decimal(text).as_tuple().digits
    significant = "".join(map(str, digits)).strip("0")
    return math.ceil(len(significant) / 2) + 1


def value_size(value: dict[str, Any]) -> int:
    ((kind, payload),) = value.items()
    if kind == "S":
        return len(payload.encode("utf-8"))
    if kind == "N":
        return number_size(payload)
    if kind == "B":
        return len(payload)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(member.encode("utf-8")) for member in payload)
    if kind == "NS":
        return sum(number_size(member) for member in payload)
    if kind == "BS":
        return sum(len(member) for member in payload)
    if kind == "L":
        return 3 + sum(1 + value_size(element) for element in payload)
    if kind == "M":
        return 3 + sum(1 + len(k.encode("utf-8")) + value_size(v) for k, v in payload.items())
    raise ValueError(f"not a DynamoDB value: {kind}")


def item_size(item: Item) -> int:
    return sum(len(name.encode("utf-8")) + value_size(value) for name, value in item.items())


def plain(exponent: int, mantissa: int, *, negative: bool) -> str:
    """``mantissa * 10**exponent`` as DynamoDB writes it back (plain positional notation)."""
    text = format(Decimal(mantissa).scaleb(exponent), "f")
    return ("-" if negative else "") + text


def longest_numbers() -> list[str]:
    """Distinct numbers of 1 significant digit (2 bytes each) with the longest text."""
    return [plain(-130, digit, negative=True) for digit in range(1, 10)] + [
        plain(-130, digit, negative=False) for digit in range(1, 10)
    ]


def _fill(unit: Callable[[int], dict[str, Any]], budget: int) -> list[dict[str, Any]]:
    """List elements ``unit(i)`` while the list's elements fit ``budget`` bytes of item size."""
    elements: list[dict[str, Any]] = []
    used = 3
    while True:
        element = unit(len(elements))
        cost = 1 + value_size(element)
        if used + cost > budget:
            return elements
        elements.append(element)
        used += cost


def _list_item(unit: Callable[[int], dict[str, Any]]) -> Item:
    name = "l"
    budget = MAX_ITEM_BYTES - item_size(KEY) - len(name)
    return {**KEY, name: {"L": _fill(unit, budget)}}


def number_sets() -> Item:
    """A list of number sets of the longest 2-byte numbers: ~65 bytes of JSON per byte."""
    numbers = longest_numbers()
    return _list_item(lambda i: {"NS": numbers})


def long_numbers() -> Item:
    """A list of 1E-130-like numbers: ~47 bytes of JSON per byte."""
    numbers = longest_numbers()
    return _list_item(lambda i: {"N": numbers[i % len(numbers)]})


def nulls() -> Item:
    """A list of ~204,000 NULLs (the issue's example: 2 bytes each, 7 times as JSON)."""
    return _list_item(lambda i: {"NULL": True})


def bools() -> Item:
    return _list_item(lambda i: {"BOOL": i % 3 == 0})


def empty_strings() -> Item:
    """Empty strings in a list: 1 byte each, 9 as JSON."""
    return _list_item(lambda i: {"S": ""})


CONTROL = [chr(c) for c in range(32) if chr(c) not in "\b\t\n\f\r"]
"""Control characters JSON escapes to six bytes (\\u0001); the other five take two."""


def control_names(count: int, width: int) -> list[str]:
    """``count`` distinct names of ``width`` control characters."""
    alphabet = CONTROL
    names = []
    for index in range(count):
        name = ""
        for _ in range(width):
            index, digit = divmod(index, len(alphabet))
            name += alphabet[digit]
        names.append(name)
    return names


def many_attributes() -> Item:
    """Many short attributes named with control characters, each an empty string or NULL."""
    item: Item = dict(KEY)
    used = item_size(item)
    for width in (1, 2, 3, 4):
        for name in control_names(len(CONTROL) ** width, width):
            value: dict[str, Any] = {"S": ""} if len(item) % 2 else {"NULL": True}
            cost = len(name.encode("utf-8")) + value_size(value)
            if used + cost > MAX_ITEM_BYTES:
                return item
            item[name] = value
            used += cost
    return item


def deep_maps() -> Item:
    """Maps 31 levels deep (32 with the item), each level wide, leaves short-named BOOLs."""
    names = control_names(len(CONTROL), 1)

    def level(depth: int, budget: int) -> tuple[dict[str, Any], int]:
        if depth == 0:
            leaves = {}
            used = 3
            for name in names:
                if used + 3 > budget:
                    break
                leaves[name] = {"BOOL": False}
                used += 3
            return {"M": leaves}, used
        inner, used = level(depth - 1, budget - 5)
        return {"M": {names[0]: inner}}, used + 5

    item: Item = dict(KEY)
    used = item_size(item)
    index = 0
    while True:
        name = f"d{index}"
        value, cost = level(30, MAX_ITEM_BYTES - used - len(name))
        if value_size(value) + len(name) + used > MAX_ITEM_BYTES or cost <= 5 * 30 + 3:
            return item
        item[name] = value
        used += len(name) + value_size(value)
        index += 1


SHAPES: dict[str, Callable[[], Item]] = {
    "number_sets": number_sets,
    "long_numbers": long_numbers,
    "nulls": nulls,
    "bools": bools,
    "empty_strings": empty_strings,
    "many_attributes": many_attributes,
    "deep_maps": deep_maps,
}
"""Every worst shape by name; each item is at most 400 KB by DynamoDB's rules."""
