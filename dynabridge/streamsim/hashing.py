"""Where an item lives: its partition key hashed into a 128-bit space, and the hash ranges
shards own, as DynamoDB places items in partitions (and a partition's stream in a shard).

Invariant: the open shards' ranges tile ``[0, 2**128)`` exactly, so every key has exactly one
open shard; a rotation keeps a range whole, a split cuts it into two halves.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

HASH_SPACE = 2**128


@dataclass(frozen=True, slots=True)
class HashRange:
    """``[start, end]``, both inclusive, as Kinesis and DynamoDB describe them."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not 0 <= self.start <= self.end < HASH_SPACE:
            raise ValueError(f"not a hash range: [{self.start}, {self.end}]")

    def holds(self, value: int) -> bool:
        return self.start <= value <= self.end

    def halves(self) -> tuple[HashRange, HashRange]:
        """The two children of a split; a one-value range cannot be split."""
        if self.start == self.end:
            raise ValueError(f"range [{self.start}, {self.end}] is too narrow to split")
        middle = (self.start + self.end) // 2
        return HashRange(self.start, middle), HashRange(middle + 1, self.end)

    @property
    def width(self) -> int:
        return self.end - self.start + 1


def even_ranges(count: int) -> list[HashRange]:
    """``count`` ranges of (nearly) equal width tiling the whole space, in order."""
    if count < 1:
        raise ValueError(f"a stream needs at least one shard, got {count}")
    bounds = [HASH_SPACE * i // count for i in range(count + 1)]
    return [HashRange(bounds[i], bounds[i + 1] - 1) for i in range(count)]


def key_hash(value: dict[str, Any]) -> int:
    """The 128-bit hash of a partition key value in DynamoDB's typed JSON (``{"S": ...}``).

    Equal keys hash equally whatever their spelling: numbers are normalised (``1`` = ``1.0``),
    binary is hashed as its bytes (base64 on the wire).
    """
    ((kind, raw),) = value.items()
    if kind == "S":
        data = b"S" + str(raw).encode()
    elif kind == "N":
        data = b"N" + _canonical_number(str(raw)).encode()
    elif kind == "B":
        data = b"B" + (raw if isinstance(raw, bytes) else base64.b64decode(str(raw)))
    else:
        raise ValueError(f"a partition key is S, N or B, not {kind}")
    return int.from_bytes(hashlib.md5(data, usedforsecurity=False).digest(), "big")


def _canonical_number(text: str) -> str:
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    return "0" if number == 0 else format(number.normalize(), "f")
