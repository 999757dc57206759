"""The demo's writes: a seeded mix of inserts, replaces, updates and deletes over item shapes.

Invariants: a key is never written while an earlier write to it is in flight (so one item's
writes land in the order they were generated); a deleted key is never reused; only an item
whose last change is already visible is deleted (so "absent" can only mean "the delete arrived").
"""

from __future__ import annotations

import enum
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from bridge.contract import AttributeValue, Item

REV = "rev"
"""Every image and update sets this attribute to the change's sequence number: the visibility
check compares it, so a document is known to hold *this* change (or a newer one)."""


class ChangeKind(enum.Enum):
    INSERT = "insert"
    REPLACE = "replace"
    """PutItem over an existing item: a MODIFY with a whole new image."""
    UPDATE = "update"
    """UpdateItem on an existing item: nested SET, list_append, ADD to sets and counters."""
    DELETE = "delete"


class Shape(enum.Enum):
    ORDER = "order"
    SENSOR = "sensor"
    PROFILE = "profile"
    COMPACT = "compact"
    """A few scalars (~150 bytes): for throughput runs, where the rich shapes' size dominates."""


MIXED = (Shape.ORDER, Shape.SENSOR, Shape.PROFILE)


@dataclass(frozen=True, slots=True)
class Update:
    expression: str
    names: dict[str, str]
    values: Item


@dataclass(frozen=True, slots=True)
class Change:
    seq: int
    """1-based position in the run; also the ``rev`` the item carries after this change."""
    kind: ChangeKind
    keys: Item
    image: Item | None = None
    """The whole item, for INSERT and REPLACE."""
    update: Update | None = None

    @property
    def deletes(self) -> bool:
        return self.kind is ChangeKind.DELETE


@dataclass(frozen=True, slots=True)
class Mix:
    """Shares of each kind; what cannot be done (nothing to update or delete yet) is an insert."""

    insert: float = 0.45
    replace: float = 0.15
    update: float = 0.25
    delete: float = 0.15

    def pick(self, rng: random.Random) -> ChangeKind:
        weights = (self.insert, self.replace, self.update, self.delete)
        return rng.choices(list(ChangeKind), weights=weights)[0]


Settled = Callable[[Item], bool]
"""Is the last change written to the item with these keys already visible in the index?"""


@dataclass
class _Live:
    """Keys that exist in the table, with O(1) random choice and removal."""

    keys: list[tuple[str, int]] = field(default_factory=list)
    where: dict[tuple[str, int], int] = field(default_factory=dict)
    shapes: dict[tuple[str, int], Shape] = field(default_factory=dict)

    def add(self, key: tuple[str, int], shape: Shape) -> None:
        self.where[key] = len(self.keys)
        self.keys.append(key)
        self.shapes[key] = shape

    def remove(self, key: tuple[str, int]) -> None:
        position = self.where.pop(key)
        last = self.keys.pop()
        if last != key:
            self.keys[position] = last
            self.where[last] = position
        del self.shapes[key]


class Workload:
    """Generates changes; ``finished(change)`` must be called once its write returned."""

    ATTEMPTS = 8

    def __init__(
        self,
        seed: int,
        run_token: str,
        mix: Mix | None = None,
        shapes: tuple[Shape, ...] = MIXED,
    ) -> None:
        self._shapes = shapes
        self._rng = random.Random(seed)
        self._token = run_token
        self._mix = mix or Mix()
        self._live = _Live()
        self._busy: set[tuple[str, int]] = set()
        self._inserted = 0
        self.counts: Counter[ChangeKind] = Counter()

    def next(self, seq: int, settled: Settled) -> Change:
        change = self._next(seq, settled)
        self.counts[change.kind] += 1
        return change

    def _next(self, seq: int, settled: Settled) -> Change:
        kind = self._mix.pick(self._rng)
        if kind is not ChangeKind.INSERT:
            key = self._target(need_settled=kind is ChangeKind.DELETE, settled=settled)
            if key is not None:
                self._busy.add(key)
                return self._change_to(kind, key, seq)
        return self._insert(seq)

    def finished(self, change: Change) -> None:
        self._busy.discard(_key_of(change.keys))

    def _target(self, need_settled: bool, settled: Settled) -> tuple[str, int] | None:
        live = self._live.keys
        for _ in range(self.ATTEMPTS if live else 0):
            key = live[self._rng.randrange(len(live))]
            if key in self._busy or (need_settled and not settled(_keys(key))):
                continue
            return key
        return None

    def _insert(self, seq: int) -> Change:
        self._inserted += 1
        shape = self._shapes[self._inserted % len(self._shapes)]
        key = (f"{shape.value}#{self._token}#{self._inserted:06d}", self._inserted % 7)
        self._live.add(key, shape)
        self._busy.add(key)
        return Change(seq, ChangeKind.INSERT, _keys(key), image=self._image(key, shape, seq))

    def _change_to(self, kind: ChangeKind, key: tuple[str, int], seq: int) -> Change:
        shape = self._live.shapes[key]
        if kind is ChangeKind.DELETE:
            self._live.remove(key)
            return Change(seq, kind, _keys(key))
        if kind is ChangeKind.REPLACE:
            return Change(seq, kind, _keys(key), image=self._image(key, shape, seq))
        return Change(seq, kind, _keys(key), update=_update(self._rng, shape, seq))

    def _image(self, key: tuple[str, int], shape: Shape, seq: int) -> Item:
        body = _IMAGES[shape](self._rng)
        return {**_keys(key), "kind": {"S": shape.value}, REV: {"N": str(seq)}, **body}


def _keys(key: tuple[str, int]) -> Item:
    return {"pk": {"S": key[0]}, "sk": {"N": str(key[1])}}


def _key_of(keys: Item) -> tuple[str, int]:
    return (str(keys["pk"]["S"]), int(str(keys["sk"]["N"])))


# ------------------------------------------------------------------------------ item shapes


def big_integer(rng: random.Random) -> str:
    """38 significant digits: the most DynamoDB keeps, far beyond a double's 15-17."""
    return str(rng.randrange(10**37, 10**38))


def big_decimal(rng: random.Random) -> str:
    """38 significant digits with a fraction, canonical (no trailing zero), maybe negative."""
    whole = rng.randrange(10**19, 10**20)
    fraction = rng.randrange(10**16, 10**17) * 10 + rng.randrange(1, 10)  # 20 + 18 digits
    sign = "-" if rng.random() < 0.3 else ""
    return f"{sign}{whole}.{fraction}"


def _word(rng: random.Random) -> str:
    return rng.choice(("alpha", "beta", "gamma", "delta", "Zürich", "東京", "São Paulo", "naïve"))


def _order(rng: random.Random) -> Item:
    lines: list[AttributeValue] = [
        {"M": {"sku": {"S": f"sku-{rng.randrange(1000)}"}, "qty": {"N": str(rng.randrange(1, 9))},
               "price": {"N": f"{rng.randrange(1, 500)}.{rng.randrange(1, 99):02d}".rstrip("0")}}}
        for _ in range(rng.randrange(1, 4))
    ]  # fmt: skip
    return {
        "customer": {"M": {
            "name": {"S": _word(rng)},
            "address": {"M": {"city": {"S": _word(rng)},
                              "zip": {"S": f"{rng.randrange(10**5):05d}"}}},
            "vip": {"BOOL": rng.random() < 0.2},
        }},
        "lines": {"L": lines},
        "total": {"N": big_decimal(rng)},
        "tags": {"SS": sorted({_word(rng) for _ in range(3)})},
    }  # fmt: skip


def _sensor(rng: random.Random) -> Item:
    return {
        "serial": {"N": big_integer(rng)},
        "readings": {"NS": sorted({str(rng.randrange(-500, 500)) for _ in range(5)})},
        "payload": {"B": rng.randbytes(rng.randrange(8, 48))},
        "calibrated": {"BOOL": rng.random() < 0.5},
        "note": {"NULL": True},
    }


def _profile(rng: random.Random) -> Item:
    return {
        "prefs": {"M": {
            "theme": {"S": rng.choice(("dark", "light"))},
            "limits": {"M": {"daily": {"N": str(rng.randrange(100))},
                             "monthly": {"N": str(rng.randrange(1000))}}},
        }},
        # Lists stay one type each: a search engine maps a field by its first value.
        "history": {"L": [{"S": _word(rng)} for _ in range(rng.randrange(1, 4))]},
        "logins": {"L": [{"M": {"at": {"N": str(rng.randrange(10**9))}, "ok": {"BOOL": True}}}]},
        "avatars": {"BS": list({rng.randbytes(6) for _ in range(2)})},
        "balance": {"N": big_decimal(rng)},
    }  # fmt: skip


def _compact(rng: random.Random) -> Item:
    return {"amount": {"N": str(rng.randrange(10**6))}, "status": {"S": _word(rng)}}


_IMAGES: dict[Shape, Callable[[random.Random], Item]] = {
    Shape.COMPACT: _compact,
    Shape.ORDER: _order,
    Shape.SENSOR: _sensor,
    Shape.PROFILE: _profile,
}


def _update(rng: random.Random, shape: Shape, seq: int) -> Update:
    names = {"#rev": REV, "#visits": "visits"}
    values: Item = {":rev": {"N": str(seq)}, ":one": {"N": "1"}}
    sets, adds = ["#rev = :rev"], ["#visits :one"]
    if shape is Shape.ORDER:
        names |= {"#c": "customer", "#a": "address", "#city": "city", "#lines": "lines"}
        values |= {
            ":city": {"S": _word(rng)},
            ":line": {"L": [{"M": {"sku": {"S": "sku-extra"}, "qty": {"N": "1"}}}]},
        }
        sets += ["#c.#a.#city = :city", "#lines = list_append(#lines, :line)"]
    elif shape is Shape.SENSOR:
        names |= {"#readings": "readings", "#serial": "serial"}
        values |= {
            ":more": {"NS": [str(rng.randrange(500, 1000))]},
            ":serial": {"N": big_integer(rng)},
        }
        sets.append("#serial = :serial")
        adds.append("#readings :more")
    elif shape is Shape.COMPACT:
        names |= {"#amount": "amount"}
        values |= {":amount": {"N": str(rng.randrange(10**6))}}
        sets.append("#amount = :amount")
    else:
        names |= {"#p": "prefs", "#l": "limits", "#d": "daily", "#avatars": "avatars"}
        values |= {":daily": {"N": str(rng.randrange(100))}, ":bin": {"BS": [rng.randbytes(7)]}}
        sets.append("#p.#l.#d = :daily")
        adds.append("#avatars :bin")
    expression = f"SET {', '.join(sets)} ADD {', '.join(adds)}"
    return Update(expression, names, values)  # fmt: skip
