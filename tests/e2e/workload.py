"""A seeded workload on moto, and the ledger of what it did: every change counted, and each
table's expected final state (item or deleted) per primary key.

One stream record per change: every write changes the item (a fresh ``rev``), no delete hits an
absent item, and UpdateItem only touches existing items (moto emits two INSERTs for an
UpdateItem that creates one).
"""

from __future__ import annotations

import enum
import random
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from bridge.contract import Item, kafka_key

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

BATCH = 25
"""BatchWriteItem's limit; one key at most once per batch (moto applies puts before deletes)."""


class KeyKind(enum.Enum):
    """The primary keys the suite covers: hash S, hash S + range N, hash N.

    No binary key: moto's stream records carry a B key attribute base64-encoded twice in
    ``Keys`` (its ``NewImage`` is right), so ids from the stream cannot match the table's.
    """

    S = "S"
    S_N = "S+N"
    N = "N"


@dataclass(frozen=True, slots=True)
class TableSpec:
    name: str
    kind: KeyKind

    def create(self, dynamodb: DynamoDBClient) -> None:
        schema: list[Any] = [{"AttributeName": "pk", "KeyType": "HASH"}]
        attributes: list[Any] = [{"AttributeName": "pk", "AttributeType": self.kind.value[0]}]
        if self.kind is KeyKind.S_N:
            schema.append({"AttributeName": "sk", "KeyType": "RANGE"})
            attributes.append({"AttributeName": "sk", "AttributeType": "N"})
        dynamodb.create_table(
            TableName=self.name,
            KeySchema=schema,
            AttributeDefinitions=attributes,
            BillingMode="PAY_PER_REQUEST",
            StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
        )

    def key(self, n: int) -> Item:
        """The n-th key of the table's key space; separators and 38-digit numbers included."""
        if self.kind is KeyKind.S:
            return {"pk": {"S": f"user-{n}|{n % 7}~%"}}
        if self.kind is KeyKind.S_N:
            # Always 38 digits: one JSON type (a string) for the field in every document.
            return {"pk": {"S": f"order-{n // 10}"}, "sk": {"N": str(10**37 * (1 + n % 9) + n)}}
        return {"pk": {"N": str(Decimal(n) / 4)}}


@dataclass
class Ledger:
    """What one table must end with. Keyed by the Kafka key (canonical primary key)."""

    spec: TableSpec
    final: dict[bytes, Item | None] = field(default_factory=dict)
    keys: dict[bytes, Item] = field(default_factory=dict)
    changes: int = 0
    poison: set[bytes] = field(default_factory=set)

    def record(self, keys: Item, item: Item | None) -> None:
        key = kafka_key(keys)
        self.keys[key] = keys
        self.final[key] = item
        self.changes += 1

    def present(self) -> dict[bytes, Item]:
        return {k: item for k, item in self.final.items() if item is not None}


class Progress:
    """Changes written so far, over all tables: the clock the fault injector follows."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._done = 0
        self._lock = threading.Lock()

    def add(self, n: int) -> None:
        with self._lock:
            self._done += n

    @property
    def done(self) -> int:
        with self._lock:
            return self._done

    def fraction(self) -> float:
        return self.done / self.total


# --------------------------------------------------------------------------- item shapes


def _big(rng: random.Random) -> str:
    """A 38-significant-digit integer: beyond a double, so it travels as a JSON string."""
    sign = "-" if rng.random() < 0.3 else ""
    return sign + str(rng.randrange(1, 10)) + "".join(str(rng.randrange(10)) for _ in range(37))


def _decimal(rng: random.Random, digits: int = 2) -> str:
    return str(Decimal(rng.randrange(1, 10**6)) / Decimal(10**digits))


def _full(rng: random.Random) -> Item:
    """Every DynamoDB type, each attribute always of one type (dynamic mappings stay valid)."""
    return {
        "big": {"N": _big(rng)},
        "precise": {"N": "0." + "".join(str(rng.randrange(1, 10)) for _ in range(38))},
        "price": {"N": _decimal(rng)},
        "qty": {"N": str(rng.randrange(0, 1000))},
        "active": {"BOOL": rng.random() < 0.5},
        "nothing": {"NULL": True},
        "blob": {"B": rng.randbytes(rng.randrange(1, 32))},
        "tags": {"SS": sorted({rng.choice("abcdefgh") * rng.randrange(1, 4) for _ in range(3)})},
        "scores": {"NS": sorted({str(rng.randrange(1, 100)) for _ in range(3)})},
        "bins": {"BS": list({rng.randbytes(3) for _ in range(2)})},
        "note": {"S": rng.choice(["plain", "ünïcödé ✓", "a|b~c%d", "line\nbreak", "🦆"])},
        **_nested(rng),
    }


def _nested(rng: random.Random) -> Item:
    geo = {"lat": {"N": _decimal(rng, 4)}, "lon": {"N": _decimal(rng, 4)}}
    history = [
        {"M": {"at": {"N": str(rng.randrange(10**9))}, "what": {"S": rng.choice("xyz")}}}
        for _ in range(rng.randrange(0, 4))
    ]
    return {
        "profile": {
            "M": {
                "name": {"S": rng.choice(["ann", "bob", "cy"])},
                "address": {"M": {"city": {"S": "lyon"}, "geo": {"M": geo}}},
                "prefs": {"M": {"email": {"BOOL": True}, "langs": {"L": [{"S": "fr"}]}}},
            }
        },
        "history": {"L": history},
        "deep": {"M": {"l2": {"M": {"l3": {"M": {"v": {"N": str(rng.randrange(100))}}}}}}},
    }


SHAPES: dict[str, Callable[[random.Random], Item]] = {
    "full": _full,
    "nested": _nested,
    "minimal": lambda _rng: {},
}


def make_item(rng: random.Random, keys: Item, rev: int) -> Item:
    shape = rng.choice(list(SHAPES))
    return {**keys, "rev": {"N": str(rev)}, "shape": {"S": shape}, **SHAPES[shape](rng)}


# --------------------------------------------------------------------------- writing


Extra = Callable[[random.Random, Item], Item]
"""Extra attributes for a put (the poison test's hook): (rng, keys) -> attributes."""


class TableWriter:
    """Writes one table's share of the workload and keeps its ledger. One thread per table."""

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        ledger: Ledger,
        rng: random.Random,
        key_space: int,
        extra: Extra | None = None,
        single_ops: float = 0.03,
        delete_ratio: float = 0.25,
    ) -> None:
        self._dynamodb = dynamodb
        self.ledger = ledger
        self._rng = rng
        self._key_space = key_space
        self._extra = extra
        self._single_ops = single_ops
        self._delete_ratio = delete_ratio
        self._rev = 0

    def step(self, budget: int) -> int:
        """One BatchWriteItem of up to min(budget, 25) changes, or one single-item call."""
        if self._rng.random() < self._single_ops:
            return self._single()
        picked = self._rng.sample(range(self._key_space), min(budget, BATCH))
        requests: list[Any] = []
        outcome: list[tuple[Item, Item | None]] = []
        for n in picked:
            keys = self.ledger.spec.key(n)
            if self._deletable(keys) and self._rng.random() < self._delete_ratio:
                requests.append({"DeleteRequest": {"Key": keys}})
                outcome.append((keys, None))
            else:
                item = self._item(keys)
                requests.append({"PutRequest": {"Item": item}})
                outcome.append((keys, item))
        self._batch(requests)
        for keys, written in outcome:
            self.ledger.record(keys, written)
        return len(requests)

    def _deletable(self, keys: Item) -> bool:
        """Present, and not a poison item (those stay, so the test knows what the DLQ holds)."""
        key = kafka_key(keys)
        return self.ledger.final.get(key) is not None and key not in self.ledger.poison

    def _item(self, keys: Item) -> Item:
        self._rev += 1
        item = make_item(self._rng, keys, self._rev)
        if self._extra is not None:
            item.update(self._extra(self._rng, keys))
        return item

    def _batch(self, requests: list[Any]) -> None:
        pending: dict[str, Any] = {self.ledger.spec.name: requests}
        for _ in range(20):
            answer = self._dynamodb.batch_write_item(RequestItems=pending)
            pending = dict(answer.get("UnprocessedItems") or {})
            if not pending:
                return
            time.sleep(0.05)
        raise AssertionError(f"BatchWriteItem kept returning UnprocessedItems: {pending!r:.200}")

    def _single(self) -> int:
        """PutItem, DeleteItem or UpdateItem (SET/REMOVE) on one key."""
        keys = self.ledger.spec.key(self._rng.randrange(self._key_space))
        table = self.ledger.spec.name
        if self.ledger.final.get(kafka_key(keys)) is None:
            item = self._item(keys)
            self._dynamodb.put_item(TableName=table, Item=item)
            self.ledger.record(keys, item)
        elif self._deletable(keys) and self._rng.random() < 0.3:
            self._dynamodb.delete_item(TableName=table, Key=keys)
            self.ledger.record(keys, None)
        else:
            self._rev += 1
            answer = self._dynamodb.update_item(
                TableName=table,
                Key=keys,
                UpdateExpression="SET #rev = :rev, #qty = :qty REMOVE #note",
                ExpressionAttributeNames={"#rev": "rev", "#qty": "qty", "#note": "note"},
                ExpressionAttributeValues={
                    ":rev": {"N": str(self._rev)},
                    ":qty": {"N": str(self._rng.randrange(1000))},
                },
                ReturnValues="ALL_NEW",
            )
            self.ledger.record(keys, dict(answer["Attributes"]))  # type: ignore[arg-type]
        return 1


def run_workload(
    writers: Iterable[TableWriter],
    progress: Progress,
    pace_per_s: float | None = None,
) -> None:
    """Each writer writes its share of ``progress.total`` changes, all tables in parallel;
    optionally paced (changes per second over all tables) so that the workload outlasts a fault.
    """
    writers = list(writers)
    started = time.monotonic()

    def write(writer: TableWriter, share: int) -> None:
        written = 0
        while written < share:
            done = writer.step(share - written)
            written += done
            progress.add(done)
            if pace_per_s is not None:
                ahead = progress.done / pace_per_s - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)

    shares = [progress.total // len(writers)] * len(writers)
    shares[0] += progress.total - sum(shares)
    with ThreadPoolExecutor(max_workers=len(writers)) as pool:
        for future in [pool.submit(write, w, n) for w, n in zip(writers, shares, strict=True)]:
            future.result()
