"""The bridge's desired worker count: a pure function of the lease rows and two targets."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.leases import SHARD_END, TRIM_HORIZON, Lease, new_lease
from bridge.load import ShardLoad
from bridge.scaling import BridgeTargets, Limit, ShardSignal, desired_workers, fleet, signals

TARGETS = BridgeTargets(max_unread_age_s=60.0, busy_shards_per_worker=4)


def shard(
    n: int, owner: str | None = "w1", *, busy: bool = False, age: float | None = None
) -> ShardSignal:
    return ShardSignal("t", f"s{n:02d}", owner, busy, 10.0 if busy else 0.0, age)


def test_no_open_shard_keeps_one_worker() -> None:
    desired = desired_workers([], {"w1"}, TARGETS)
    assert (desired.count, desired.limit) == (1, Limit.MINIMUM)


def test_idle_shards_need_one_worker() -> None:
    desired = desired_workers([shard(n) for n in range(50)], {"w1", "w2"}, TARGETS)
    assert (desired.count, desired.limit) == (1, Limit.MINIMUM)
    assert "0 busy shard(s)" in desired.reason


def test_busy_shards_are_spread_at_most_the_target_per_worker() -> None:
    shards = [shard(n, busy=n < 9) for n in range(20)]
    desired = desired_workers(shards, {"w1"}, TARGETS)
    assert (desired.count, desired.limit) == (3, Limit.BUSY_SHARDS)  # ceil(9 / 4)
    assert "9 busy shard(s), at most 4 per worker" in desired.reason


def test_a_lagging_shard_sharing_its_worker_asks_for_one_worker_per_busy_shard() -> None:
    shards = [shard(0, "w1", busy=True, age=95.0), shard(1, "w1", busy=True, age=5.0)]
    shards += [shard(n, "w2", busy=True) for n in range(2, 6)] + [shard(9, "w2")]
    desired = desired_workers(shards, {"w1", "w2"}, TARGETS)
    assert (desired.count, desired.limit) == (6, Limit.UNREAD_AGE)
    assert "t shard s00 is 95 s behind (target 60 s" in desired.reason
    assert "worker w1, which reads 2 busy shards" in desired.reason


def test_a_lagging_shard_alone_on_its_worker_does_not_raise_the_count() -> None:
    shards = [shard(0, "w1", busy=True, age=300.0), shard(1, "w2", busy=True), shard(2, "w2")]
    desired = desired_workers(shards, {"w1", "w2"}, TARGETS)
    assert (desired.count, desired.limit) == (1, Limit.BUSY_SHARDS)
    assert "more workers cannot read it faster" in desired.reason


def test_a_dead_owner_does_not_count_as_crowded() -> None:
    shards = [shard(0, "dead", busy=True, age=300.0), shard(1, "dead", busy=True)]
    assert desired_workers(shards, {"w1"}, TARGETS).count == 1


@settings(max_examples=200, deadline=None)
@given(
    flags=st.lists(
        st.tuples(
            st.sampled_from(["w1", "w2", "w3", None]),
            st.booleans(),
            st.none() | st.floats(0, 1000),
        ),
        max_size=30,
    ),
    per_worker=st.integers(1, 5),
    max_age=st.floats(1, 500),
)
def test_never_fewer_than_one_nor_more_than_the_open_shards(
    flags: list[tuple[str | None, bool, float | None]], per_worker: int, max_age: float
) -> None:
    shards = [shard(n, owner, busy=busy, age=age) for n, (owner, busy, age) in enumerate(flags)]
    desired = desired_workers(shards, {"w1", "w2"}, BridgeTargets(max_age, per_worker))
    assert 1 <= desired.count <= max(1, len(shards))
    busy = sum(1 for s in shards if s.busy)
    assert desired.count >= -(-busy // per_worker)  # never below the busy-shard target


def test_one_busy_shard_per_worker_is_exactly_the_busy_shards() -> None:
    targets = BridgeTargets(max_unread_age_s=60.0, busy_shards_per_worker=1)
    shards = [shard(0, "w1", busy=True, age=120.0), shard(1, "w1", busy=True), shard(2, "w1")]
    desired = desired_workers(shards, {"w1"}, targets)
    assert (desired.count, desired.limit) == (2, Limit.BUSY_SHARDS)


def rows(loads: Sequence[tuple[str | None, ShardLoad]], table: str = "t") -> list[Lease]:
    return [
        replace(new_lease(table, "arn", f"s{n:02d}", (), TRIM_HORIZON, owner=owner), load=load)
        for n, (owner, load) in enumerate(loads)
    ]


def test_signals_come_from_the_rows_and_skip_finished_shards() -> None:
    leases = rows(
        [
            ("w1", ShardLoad(read_per_s=20.0, unread_since_ms=940_000, busy=True)),
            ("w2", ShardLoad()),
            (None, ShardLoad(unread_since_ms=1_000_000)),
        ]
    )
    finished = new_lease("t", "arn", "done", (), SHARD_END, owner="w1")
    found = signals([*leases, finished], now_s=1_000.0)
    assert [s.shard_id for s in found] == ["s00", "s01", "s02"]
    assert found[0] == ShardSignal("t", "s00", "w1", True, 20.0, 60.0)
    assert found[1].unread_age_s is None
    assert found[2].unread_age_s == 0.0


def test_fleet_sums_per_table_and_per_worker() -> None:
    leases = rows(
        [
            ("w1", ShardLoad(read_per_s=20.0, unread_since_ms=900_000, busy=True)),
            ("w1", ShardLoad(read_per_s=0.2)),
            ("w2", ShardLoad(read_per_s=5.0, busy=True)),
        ]
    ) + rows([("w2", ShardLoad(read_per_s=1.5, busy=True))], table="u")
    view = fleet(leases, {"w1", "w2"}, 1_000.0, TARGETS)
    by_table = {load.table: load for load in view.tables}
    assert by_table["t"].open_shards == 3
    assert by_table["t"].busy_shards == 2
    assert by_table["t"].read_per_s == 25.2
    assert by_table["t"].oldest_unread_age_s == 100.0
    assert by_table["u"].oldest_unread_age_s is None
    assert view.leases_per_worker == {"w1": 2, "w2": 2}
    assert view.busy_per_worker == {"w1": 1, "w2": 2}
    assert view.workers == 2
    assert view.desired.count == 1  # 3 busy, 4 per worker; the lagging shard shares w1 with
    # no other busy shard, so more workers would not help
