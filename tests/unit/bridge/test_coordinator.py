"""LeaseCoordinator against a scripted in-memory lease store and a scripted Streams topology."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bridge.coordinator import LeaseCoordinator
from bridge.leases import LATEST, SHARD_END, TRIM_HORIZON
from bridge.runtime.settings import BridgeSettings, ConfigError, StartPosition
from bridge.shards import (
    Shard,
    StreamInfo,
    StreamUnavailable,
    StreamViewTypeUnsupported,
    TableNotFound,
)
from tests.unit.bridge.fakes import (
    ARN,
    SETTINGS,
    Clock,
    MemoryStore,
    Streams,
    closed,
    coordinator,
    open_shard,
    readable_ids,
)


def test_start_validates_tables_and_view_types() -> None:
    store, clock = MemoryStore(), Clock()
    with pytest.raises(TableNotFound, match="'missing'"):
        LeaseCoordinator(
            store, Streams(), worker_id="w1", tables=["missing"], settings=SETTINGS, clock=clock
        ).start()
    with pytest.raises(StreamViewTypeUnsupported, match=r"table 't'.*KEYS_ONLY"):
        coordinator(store, Streams(view_type="KEYS_ONLY"), clock).start()
    assert not store.ensured
    with pytest.raises(ConfigError, match="lease_renew_interval_s"):
        coordinator(store, Streams(), clock, settings=replace_settings(lease_renew_interval_s=6))


def replace_settings(**changes: object) -> BridgeSettings:
    return SETTINGS.model_copy(update=changes)


def test_one_worker_takes_everything_and_reads_roots_first() -> None:
    store, clock = MemoryStore(), Clock()
    streams = Streams(closed(open_shard("a")), open_shard("b", "a"))
    coord = coordinator(store, streams, clock)
    infos = coord.start()
    assert store.ensured
    assert infos == [StreamInfo("t", ARN, "NEW_AND_OLD_IMAGES", ("pk",))]
    assert coord.readable() == []  # nothing taken before the first tick
    coord.tick()
    assert {lease.owner for lease in store.rows.values()} == {"w1"}
    assert readable_ids(coord) == ["a"]
    assert coord.shard_end(f"{ARN}#a", last_version=41)
    ready = coord.readable()
    assert [(lease.shard_id, lease.last_version) for lease in ready] == [("b", 41)]


def test_split_mid_run_children_wait_then_inherit() -> None:
    store, clock = MemoryStore(), Clock()
    streams = Streams(open_shard("a"))
    coord = coordinator(store, streams, clock)
    coord.start()
    coord.tick()
    assert coord.checkpoint(f"{ARN}#a", "500", 5)
    # The shard splits; the next sync sees the children before we reached the parent's end.
    streams.topology = [closed(open_shard("a")), open_shard("b", "a"), open_shard("c", "a")]
    clock.now += 10
    coord.tick()
    assert sorted(store.rows) == [f"{ARN}#a"]  # no child is leased (or taken) before a ends
    assert readable_ids(coord) == ["a"]
    assert coord.shard_end(f"{ARN}#a", last_version=9)
    assert streams.child_calls == ["a"]
    assert {store.by_shard(s).checkpoint for s in "bc"} == {TRIM_HORIZON}
    assert [(lease.shard_id, lease.last_version) for lease in coord.readable()] == [
        ("b", 9),
        ("c", 9),
    ]
    assert store.by_shard("a").checkpoint == SHARD_END
    assert store.by_shard("a").last_version == 9


def test_shard_end_leases_children_to_us_immediately() -> None:
    store, clock = MemoryStore(), Clock()
    streams = Streams(open_shard("a"))
    coord = coordinator(store, streams, clock)
    coord.start()
    coord.tick()
    streams.topology = [closed(open_shard("a")), open_shard("b", "a")]
    assert coord.shard_end(f"{ARN}#a", last_version=3)  # before any sync saw the split
    assert store.by_shard("b").owner == "w1"
    assert readable_ids(coord) == ["b"]
    assert coord.checkpoint(f"{ARN}#b", "1000", 4)
    assert store.by_shard("b").last_version == 4


def test_closed_shard_without_children_yet_is_looked_up_again_next_sync() -> None:
    store, clock = MemoryStore(), Clock()
    streams = Streams(open_shard("a"))
    coord = coordinator(store, streams, clock)
    coord.start()
    coord.tick()
    streams.topology = [closed(open_shard("a"))]  # children not listed yet
    assert coord.shard_end(f"{ARN}#a", last_version=3)
    assert coord.readable() == []
    streams.topology.append(open_shard("b", "a"))
    clock.now += 10
    coord.tick()
    assert readable_ids(coord) == ["b"]
    assert coord.readable()[0].last_version == 3


def test_lost_lease_is_reported_and_never_checkpointed_again() -> None:
    store, clock = MemoryStore(), Clock()
    coord = coordinator(store, Streams(open_shard("a"), open_shard("b")), clock)
    coord.start()
    coord.tick()
    key = f"{ARN}#a"
    store.rows[key] = replace(store.rows[key], owner="thief", counter=store.rows[key].counter + 1)
    clock.now += 3
    coord.tick()  # the renew is refused
    assert coord.lost() == {key}
    assert coord.lost() == set()
    assert readable_ids(coord) == ["b"]
    assert not coord.checkpoint(key, "700", 1)
    assert store.rows[key].owner == "thief"
    assert store.rows[key].checkpoint == TRIM_HORIZON


def test_refused_checkpoint_loses_the_lease() -> None:
    store, clock = MemoryStore(), Clock()
    coord = coordinator(store, Streams(open_shard("a")), clock)
    coord.start()
    coord.tick()
    key = f"{ARN}#a"
    store.rows[key] = replace(store.rows[key], owner="thief", counter=99)
    assert not coord.checkpoint(key, "700", 1)
    assert coord.lost() == {key}
    assert not coord.checkpoint(key, "800", 2)
    assert store.rows[key].counter == 99


def test_unrenewable_lease_is_dropped_by_our_own_clock() -> None:
    store, clock = MemoryStore(), Clock()
    coord = coordinator(store, Streams(open_shard("a")), clock)
    coord.start()
    coord.tick()
    store.unavailable = True
    for _ in range(3):
        clock.now += 3
        coord.tick()
    assert coord.lost() == set()
    assert readable_ids(coord) == ["a"]
    clock.now += 1
    assert coord.readable() == []  # stale by our clock: another worker may take it
    clock.now += 2
    coord.tick()
    assert coord.lost() == {f"{ARN}#a"}


def test_two_workers_split_the_shards_and_one_takes_over_when_the_other_stops() -> None:
    store, clock = MemoryStore(), Clock()
    streams = Streams(*(open_shard(f"s{i}") for i in range(6)))
    one, two = coordinator(store, streams, clock, "w1"), coordinator(store, streams, clock, "w2")
    one.start()
    two.start()
    for _ in range(20):  # 20 s: w1 takes all at once, w2 steals one per take round
        one.tick()
        two.tick()
        clock.now += 1
    assert len(one.readable()) == 3
    assert len(two.readable()) == 3
    stopped_at = clock.now  # w1 stops ticking (crashed)
    while len(two.readable()) < 6:
        two.tick()
        clock.now += 0.5
        assert clock.now - stopped_at <= SETTINGS.lease_duration_s + SETTINGS.lease_take_interval_s
    assert {lease.owner for lease in store.rows.values()} == {"w2"}


def test_release_lets_another_worker_take_over_at_once() -> None:
    store, clock = MemoryStore(), Clock()
    streams = Streams(open_shard("a"), open_shard("b"))
    one, two = coordinator(store, streams, clock, "w1"), coordinator(store, streams, clock, "w2")
    one.start()
    one.tick()
    assert one.checkpoint(f"{ARN}#a", "300", 2)
    one.release_all()
    assert {lease.owner for lease in store.rows.values()} == {None}
    assert store.by_shard("a").checkpoint == "300"
    two.start()
    two.tick()
    assert readable_ids(two) == ["a", "b"]
    assert two.readable()[0].last_version == 2


def test_latest_applies_only_at_the_first_start_of_a_stream() -> None:
    store, clock = MemoryStore(), Clock()
    latest = replace_settings(start_position=StartPosition.LATEST)
    streams = Streams(closed(open_shard("a")), open_shard("b", "a"))
    coordinator(store, streams, clock, settings=latest).start()
    assert store.by_shard("a").checkpoint == SHARD_END
    assert store.by_shard("b").checkpoint == LATEST
    streams.topology = [closed(open_shard("a")), closed(open_shard("b", "a")), open_shard("c", "b")]
    b = store.by_shard("b")
    store.rows[b.lease_key] = replace(b, checkpoint=SHARD_END, counter=b.counter + 1)
    coord = coordinator(store, streams, clock, settings=latest)
    coord.start()
    assert store.by_shard("c").checkpoint == TRIM_HORIZON


def test_recorded_gap_is_persisted() -> None:
    store, clock = MemoryStore(), Clock()
    coord = coordinator(store, Streams(open_shard("a")), clock)
    coord.start()
    coord.tick()
    assert coord.record_gap(f"{ARN}#a", "trimmed after 500")
    assert store.by_shard("a").gaps == ("trimmed after 500",)
    assert not coord.record_gap(f"{ARN}#zz", "x")


def test_finished_parent_is_cleaned_up_once_gone_and_children_started() -> None:
    store, clock = MemoryStore(), Clock()
    streams = Streams(open_shard("a"))
    coord = coordinator(store, streams, clock)
    coord.start()
    coord.tick()
    streams.topology = [closed(open_shard("a")), open_shard("b", "a")]
    assert coord.shard_end(f"{ARN}#a", 5)
    streams.topology = [open_shard("b", "a")]  # "a" trimmed
    clock.now += 10
    coord.tick()
    assert f"{ARN}#a" in store.rows  # b has not checkpointed: it still inherits from a
    assert coord.checkpoint(f"{ARN}#b", "1200", 6)
    clock.now += 10
    coord.tick()
    assert f"{ARN}#a" not in store.rows
    clock.now += 10
    coord.tick()
    assert sorted(lease.shard_id for lease in coord.leases()) == ["b"]


def test_transient_discovery_and_lease_table_errors_do_not_stop_the_tick() -> None:
    store, clock = MemoryStore(), Clock()
    streams = Streams(open_shard("a"))
    coord = coordinator(store, streams, clock)
    coord.start()
    streams.unavailable = True
    store.unavailable = True
    clock.now += 10
    coord.tick()
    store.unavailable = False
    streams.unavailable = False
    clock.now += 5
    coord.tick()
    assert readable_ids(coord) == ["a"]


def test_shard_end_survives_a_failed_child_lookup_and_sync_creates_the_children() -> None:
    store, clock = MemoryStore(), Clock()
    streams = Streams(open_shard("a"))
    coord = coordinator(store, streams, clock)
    coord.start()
    coord.tick()
    streams.topology = [closed(open_shard("a")), open_shard("b", "a")]
    streams.unavailable = True
    original = streams.child_shards

    def throttled(stream_arn: str, parent_shard_id: str) -> list[Shard]:
        raise StreamUnavailable("scripted throttling")

    streams.child_shards = throttled  # type: ignore[method-assign]
    assert coord.shard_end(f"{ARN}#a", 4)
    assert store.by_shard("a").checkpoint == SHARD_END
    assert f"{ARN}#b" not in store.rows
    streams.unavailable = False
    streams.child_shards = original  # type: ignore[method-assign]
    clock.now += 10
    coord.tick()
    assert readable_ids(coord) == ["b"]
    assert coord.readable()[0].last_version == 4


def test_a_stream_never_listed_reads_nothing_until_a_sync_succeeds() -> None:
    store, clock = MemoryStore(), Clock()
    streams = Streams(closed(open_shard("a")), open_shard("b", "a"))
    coordinator(store, streams, clock).start()  # w0 created the leases earlier
    streams.unavailable = True
    coord = coordinator(store, streams, clock)
    coord.start()
    coord.tick()
    assert coord.readable() == []  # it cannot tell whether "a" still blocks "b"
    streams.unavailable = False
    clock.now += 10
    coord.tick()
    assert readable_ids(coord) == ["a"]
