"""The shards' load rides on the lease rows: every write carries it, a new owner goes on from it."""

from __future__ import annotations

import threading
from dataclasses import replace

from bridge.lease_store import _item, _lease
from bridge.leases import TRIM_HORIZON, new_lease
from bridge.load import IDLE, ShardLoad
from tests.unit.bridge.fakes import SETTINGS, Clock, MemoryStore, Streams, coordinator, open_shard


def test_renewals_carry_the_load_the_worker_observed() -> None:
    clock, store = Clock(), MemoryStore()
    coord = coordinator(store, Streams(open_shard("s1")), clock)
    coord.start()
    coord.tick()
    key = store.by_shard("s1").lease_key
    for _ in range(10):  # 30 s of 100 records/s, pages still behind by 40 s
        clock.now += 3.0
        coord.observe(key, 300, 1_000_000, caught_up=False)
        coord.tick()
    row = store.by_shard("s1")
    assert row.owner == "w1"
    assert row.load.busy
    assert 30 < row.load.read_per_s < 100  # smoothed over a minute: on its way up
    assert row.load.unread_since_ms == 1_000_000
    clock.now += 3.0
    coord.observe(key, 0, None, caught_up=True)
    coord.tick()
    assert store.by_shard("s1").load.unread_since_ms is None


def test_a_checkpoint_carries_the_load_too() -> None:
    clock, store = Clock(), MemoryStore()
    coord = coordinator(store, Streams(open_shard("s1")), clock)
    coord.start()
    coord.tick()
    key = store.by_shard("s1").lease_key
    coord.observe(key, 50, 2_000_000, caught_up=False)
    clock.now += 1.0
    assert coord.checkpoint(key, "100", 7)
    assert store.by_shard("s1").load.unread_since_ms == 2_000_000


def test_pages_of_a_lease_not_held_are_ignored() -> None:
    clock, store = Clock(), MemoryStore()
    coord = coordinator(store, Streams(open_shard("s1")), clock)
    coord.start()
    coord.tick()
    coord.observe("arn#other", 1000, 5, caught_up=False)
    coord.release_all()
    coord.observe(store.by_shard("s1").lease_key, 1000, 5, caught_up=False)
    assert store.by_shard("s1").load == IDLE


def test_a_new_owner_goes_on_from_the_rows_measure() -> None:
    clock, store = Clock(), MemoryStore()
    first = coordinator(store, Streams(open_shard("s1")), clock)
    first.start()
    first.tick()
    key = store.by_shard("s1").lease_key
    for _ in range(40):  # two minutes of 80 records/s
        clock.now += 3.0
        first.observe(key, 240, 9_000, caught_up=False)
        first.tick()
    first.release_all()
    released = store.by_shard("s1")
    assert released.owner is None
    assert released.load.busy
    assert released.load.read_per_s > 60  # 80 * (1 - e^-2): two windows of smoothing
    second = coordinator(store, Streams(open_shard("s1")), clock, worker="w2")
    second.start()
    second.tick()
    assert store.by_shard("s1").owner == "w2"
    clock.now += SETTINGS.lease_renew_interval_s
    second.tick()  # the renewal folds 3 s of no pages into the inherited rate: still busy
    row = store.by_shard("s1")
    assert row.load.busy
    assert 0.9 * released.load.read_per_s < row.load.read_per_s < released.load.read_per_s
    assert row.load.unread_since_ms == 9_000


def test_workers_are_the_owners_of_unexpired_leases_and_ourselves() -> None:
    clock, store = Clock(), MemoryStore()
    streams = Streams(open_shard("s1"), open_shard("s2"))
    first = coordinator(store, streams, clock)
    first.start()
    first.tick()
    second = coordinator(store, streams, clock, worker="w2")
    second.start()
    assert second.workers() == {"w1", "w2"}
    clock.now += SETTINGS.lease_duration_s + 1  # w1 stops renewing; w2 sees it by its clock
    second.tick()
    assert second.workers() == {"w2"}


def test_rows_round_trip_with_and_without_load_attributes() -> None:
    lease = new_lease("t", "arn", "s1", ("p",), TRIM_HORIZON, owner="w1")
    loaded = replace(lease, load=ShardLoad(read_per_s=12.5, unread_since_ms=1_234, busy=True))
    assert _lease(_item(loaded, 1.0)) == loaded
    released = replace(lease, owner=None, released_by="w1")
    assert _lease(_item(released, 1.0)) == released
    assert _lease(_item(lease, 1.0)) == lease
    older = {k: v for k, v in _item(lease, 1.0).items() if k not in ("read_per_s", "busy")}
    assert _lease(older).load == IDLE  # rows written by an older bridge read as idle


def test_the_loops_calls_never_wait_for_a_lease_table_call() -> None:
    """observe(), workers() and drain() come from the loop, which never waits on the lease
    table: they must not need the lock the keeper holds across Scans and writes."""
    clock, store = Clock(), MemoryStore()
    coord = coordinator(store, Streams(open_shard("s1")), clock)
    coord.start()
    coord.tick()
    key = store.by_shard("s1").lease_key
    done = threading.Event()

    def loop_calls() -> None:
        coord.observe(key, 10, 1_000, caught_up=False)
        assert coord.workers() == {"w1"}
        coord.drain()
        done.set()

    with coord._lock:  # what a keeper round blocked in a slow Scan looks like
        caller = threading.Thread(target=loop_calls)
        caller.start()
        assert done.wait(5), "a loop call waited for the coordinator's lock"
    caller.join()
    clock.now += SETTINGS.lease_renew_interval_s
    coord.tick()  # the renewal folds the page observed meanwhile
    assert store.by_shard("s1").load.unread_since_ms == 1_000
