"""The bridge loop feeds each page into the shard's load and exports the fleet's scaling signals."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from bridge.load import ShardLoad
from bridge.reader import Page

from .test_worker import (
    T0,
    FakeClock,
    FakeCoordinator,
    FakePublisher,
    FakeStreams,
    lease,
    make_worker,
    rec,
)


def test_every_page_is_observed_with_its_last_creation_time() -> None:
    stop, clock, publisher = threading.Event(), FakeClock(), FakePublisher()
    streams = FakeStreams({"shard-1": [Page([rec(1), rec(2)], "shard-1"), Page([], "shard-1")]})

    def script(turn: int) -> None:
        clock.now += 1.0
        if turn == 3:
            stop.set()

    coordinator = FakeCoordinator([lease()], script)
    worker, _ = make_worker(coordinator, streams, publisher, stop, clock)
    worker.run()
    key = lease().lease_key
    created_ms = int(T0.timestamp() * 1000)
    assert coordinator.observed[:2] == [(key, 2, created_ms, False), (key, 0, None, True)]


def test_the_fleet_and_the_desired_count_are_exported_from_the_rows() -> None:
    stop, clock, publisher = threading.Event(), FakeClock(), FakePublisher()
    behind_ms = int((T0.timestamp() + 5 - 90) * 1000)  # the wall clock is T0 + 5 s
    rows = [
        replace(lease(f"shard-{n}"), load=ShardLoad(read_per_s=30.0, busy=True))
        for n in range(1, 6)
    ]
    rows[0] = replace(rows[0], load=ShardLoad(30.0, behind_ms, busy=True))
    rows.append(replace(lease("shard-9"), owner="w2"))
    coordinator = FakeCoordinator(rows, lambda turn: stop.set() if turn == 1 else None)
    streams = FakeStreams({row.shard_id: [] for row in rows})
    worker, metrics = make_worker(coordinator, streams, publisher, stop, clock)
    worker.run()
    assert metrics.fleet_open_shards.labels("orders")._value.get() == 6
    assert metrics.fleet_busy_shards.labels("orders")._value.get() == 5
    assert metrics.fleet_read_per_s.labels("orders")._value.get() == pytest.approx(150.0)
    assert metrics.fleet_oldest_unread_age_s.labels("orders")._value.get() == pytest.approx(90.0)
    assert metrics.busy_leases_owned._value.get() == 5
    assert metrics.unread_age_s.labels("orders", "shard-1")._value.get() == pytest.approx(90.0)
    # shard-1 is 90 s behind (target 60 s) on w1, which reads 5 busy shards: one worker each.
    assert metrics.desired_workers._value.get() == 5
    assert metrics.fleet_workers._value.get() == 1
