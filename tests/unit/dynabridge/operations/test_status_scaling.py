"""``status`` answers "do we need more workers?" from the rows and offsets it reads itself."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import pytest

from bridge.contract import ChangeEvent, EventName
from bridge.leases import SHARD_END, TRIM_HORIZON, Lease, new_lease, renewed
from bridge.load import ShardLoad
from bridge.records import ShardSource
from bridge.scaling import BridgeTargets
from bridge.shards import Shard
from consumers.indexer.records import Record
from consumers.indexer.scaling import IndexerTargets
from dynabridge.operations.dynamo import ShardScan, TableInfo
from dynabridge.operations.item_keys import KeyAttribute, KeySchema, ScalarType
from dynabridge.operations.offset_targets import GroupInfo, Member, Watermarks
from dynabridge.operations.status import StatusInputs, collect
from dynabridge.operations.text import status_text

NOW_S = 1_800_000_000.0
ARN = "arn:aws:dynamodb:us-east-1:1:table/orders/stream/x"


class Clock:
    def __init__(self) -> None:
        self.now = NOW_S

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Tables:
    """Shard s00 is 300 s behind, s01 20 s; the others have nothing unread."""

    def describe(self, table: str) -> TableInfo:
        schema = KeySchema((KeyAttribute("pk", ScalarType.S),))
        return TableInfo(table, schema, ARN, 0)

    def shard_events(self, source: ShardSource, after: str | None, limit: int) -> ShardScan:
        behind = {"s00": 300.0, "s01": 20.0}.get(source.shard_id)
        if behind is None:
            return ShardScan([], 0, True)
        created_ms = int((NOW_S - behind) * 1000)
        event = ChangeEvent(
            "orders", EventName.INSERT, "e", ARN, source.shard_id, "1", created_ms, 1,
            {"pk": {"S": "a"}}, {"pk": {"S": "a"}}, None,
        )  # fmt: skip
        return ShardScan([event], 1, True)


class Shards:
    def shards(self, stream_arn: str) -> list[Shard]:
        return [Shard(f"s{n:02d}", None, "1", None) for n in range(8)]


class Leases:
    """w1 renews between the two reads, w2 does not (dead)."""

    def __init__(self, rows: list[Lease]) -> None:
        self.rows = rows
        self.reads = 0

    def leases(self) -> list[Lease]:
        self.reads += 1
        if self.reads == 1:
            return list(self.rows)
        return [renewed(row) if row.owner == "w1" else row for row in self.rows]


class Kafka:
    """Two partitions; between the two reads 600 records arrive and the group commits 300."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.start = clock.now

    def _moved(self) -> bool:
        return self.clock.now > self.start

    def partitions(self, topic: str) -> list[int]:
        return [0, 1]

    def watermarks(self, topic: str, partitions: Iterable[int]) -> dict[int, Watermarks]:
        grown = 300 if self._moved() else 0
        return {0: Watermarks(0, 50_000 + grown), 1: Watermarks(0, 1_000 + grown)}

    def committed(self, group: str, topic: str, partitions: Iterable[int]) -> dict[int, int | None]:
        return {0: 20_000 + (300 if self._moved() else 0), 1: 1_000 + (300 if self._moved() else 0)}

    def group(self, group: str) -> GroupInfo:
        member = Member("m1", "dynabridge-indexer", "/10.0.0.1", ("ddb.orders[0]", "ddb.orders[1]"))
        return GroupInfo(group, "STABLE", (member,))

    def read(self, topic: str, partition: int, start: int, end: int) -> list[Record]:
        # The first record the group has still to read, at the time of the read.
        assert (partition, start) == (0, self.committed("g", topic, [0])[0])
        return [Record(topic, partition, start, b"k", b"v", (), int((NOW_S - 90) * 1000))]


def rows() -> list[Lease]:
    loads = {
        0: ShardLoad(200.0, None, busy=True),
        1: ShardLoad(50.0, None, busy=True),
        2: ShardLoad(80.0, None, busy=True),
        3: ShardLoad(0.1, None, busy=False),
    }
    leases = [
        replace(
            new_lease("orders", ARN, f"s{n:02d}", (), TRIM_HORIZON, owner="w1" if n < 4 else "w2"),
            load=loads.get(n, ShardLoad()),
        )
        for n in range(7)
    ]
    return [*leases, new_lease("orders", ARN, "s07", (), SHARD_END, owner="w1")]


def run(interval_s: float) -> tuple[dict[str, Any], str]:
    clock = Clock()
    inputs = StatusInputs(
        ["orders"],
        "leases",
        "dynabridge-indexer",
        "ddb.",
        interval_s,
        bridge_targets=BridgeTargets(max_unread_age_s=60.0, busy_shards_per_worker=2),
        indexer_targets=IndexerTargets(drain_s=60.0, records_per_s_per_consumer=100.0),
    )
    report = collect(
        inputs, Tables(), Shards(), Leases(rows()), Kafka(clock), clock=clock, sleep=clock.sleep
    )
    data = json.loads(json.dumps(report.as_json(), default=str))
    return data, status_text(report)


def test_desired_counts_with_reasons_from_rows_and_offsets() -> None:
    data, text = run(interval_s=3.0)
    scaling = data["scaling"]
    bridge = scaling["bridge"]
    # s00 is 300 s behind on w1, which reads 3 busy shards: one worker per busy shard (3).
    assert bridge["desired"] == 3
    assert bridge["limit"] == "unread_age"
    assert "orders shard s00 is 303 s behind" in bridge["reason"]
    assert bridge["workers_alive"] == 1  # w2 did not renew
    assert bridge["open_shards"] == 7
    assert bridge["busy_shards"] == 3
    assert bridge["read_per_s"] == pytest.approx(330.1)
    assert bridge["oldest_unread_age_s"] == pytest.approx(303.0)
    assert bridge["leases_per_worker"] == {"w1": 4, "w2": 3}
    indexer = scaling["indexer"]
    # One member was seen consuming 200 records/s (above the 100/s floor). p0: 30,000 records of
    # lag in 60 s + 100/s arriving = 600/s: 3 consumers' work, but one partition needs one; p1:
    # no lag, 100/s arriving: half a consumer. 1.5 -> 2 consumers.
    assert indexer["members"] == 1
    assert indexer["consumed_per_s"] == pytest.approx(200.0)
    assert indexer["produced_per_s"] == pytest.approx(200.0)
    assert indexer["capacity_per_s"] == pytest.approx(200.0)
    assert indexer["demand"] == pytest.approx(1.0 + 0.5)
    assert indexer["desired"] == 2
    (table,) = data["tables"]
    p0, p1 = table["partitions"]
    assert (p0["lag"], p0["lag_s"], p0["produced_per_s"]) == (30_000, pytest.approx(93.0), 100.0)
    assert (p1["lag"], p1["lag_s"]) == (0, 0.0)
    s00 = table["shards"][0]
    assert (s00["busy"], s00["read_per_s"]) == (True, 200.0)
    assert "desired 3 worker(s), 1 alive" in text
    assert "because orders shard s00 is 303 s behind" in text
    assert "desired 2 consumer(s), 1 member(s)" in text
    assert "w1: alive (renewing), 4 lease(s), 3 busy" in text


def test_without_a_second_read_owners_count_as_alive_and_rates_are_unknown() -> None:
    data, text = run(interval_s=0.0)
    scaling = data["scaling"]
    assert scaling["bridge"]["workers_alive"] == 2
    indexer = scaling["indexer"]
    assert indexer["consumed_per_s"] is None
    assert indexer["capacity_per_s"] == 100.0  # the configured floor stands in
    assert "(no rates: --interval 0)" in indexer["reason"]
    assert "rates unknown (--interval 0)" in text
