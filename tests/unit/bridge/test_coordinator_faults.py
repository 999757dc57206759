"""The findings of issue 10, reproduced with the coordinator's fakes: a parent is never lost or
overtaken by its child, whatever the lease table and the listings do."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from bridge.leases import SHARD_END, TRIM_HORIZON, Lease, LeaseTableUnavailable, new_lease
from bridge.shards import StreamUnavailable
from tests.unit.bridge.fakes import (
    ARN,
    Clock,
    MemoryStore,
    Streams,
    closed,
    coordinator,
    open_shard,
    readable_ids,
)


class FlakyStore(MemoryStore):
    """Refuses the first create of the given shards with a transient error; can run a hook
    right after each successful create (another worker acting between two creates)."""

    def __init__(self, fail_once: set[str]) -> None:
        super().__init__()
        self.fail_once = {f"{ARN}#{shard}" for shard in fail_once}
        self.after_create: Callable[[str], None] = lambda key: None

    def create(self, lease: Lease) -> bool:
        if lease.lease_key in self.fail_once:
            self.fail_once.discard(lease.lease_key)
            raise LeaseTableUnavailable("scripted throttling")
        created = super().create(lease)
        if created:
            self.after_create(lease.lease_key)
        return created


def test_a_transient_error_creating_the_parent_lease_never_loses_the_parent() -> None:
    store, clock = FlakyStore(fail_once={"a"}), Clock()
    streams = Streams(closed(open_shard("a")), open_shard("b", "a"))
    coord = coordinator(store, streams, clock)
    coord.start()
    coord.tick()
    assert "b" not in readable_ids(coord), "b was readable while its parent had no lease"
    for _ in range(3):
        clock.now += 10
        coord.tick()
    assert f"{ARN}#a" in store.rows, "the parent's lease was never created"
    assert readable_ids(coord) == ["a"]
    assert coord.shard_end(f"{ARN}#a", last_version=41)
    assert [(lease.shard_id, lease.last_version) for lease in coord.readable()] == [("b", 41)]


def test_a_child_listed_first_and_taken_by_another_worker_waits_for_its_parent() -> None:
    store, clock = FlakyStore(fail_once=set()), Clock()
    topology = [open_shard("b", "a"), closed(open_shard("a"))]  # the child listed first
    later = Streams()  # w2 started while the stream was still empty
    one, two = (
        coordinator(store, Streams(*topology), clock, "w1"),
        coordinator(store, later, clock, "w2"),
    )
    two.start()
    taken: list[str] = []

    def other_worker_acts(key: str) -> None:
        if key.endswith("#b") and not taken:
            taken.append(key)
            later.topology = list(topology)
            clock.now += 10
            two.tick()  # w2 syncs and takes b before w1 created a

    store.after_create = other_worker_acts
    one.start()
    assert "b" not in readable_ids(two), "w2 read b before a was even leased"
    one.tick()
    two.tick()
    assert "b" not in readable_ids(one) + readable_ids(two)
    assert "a" in readable_ids(one) + readable_ids(two)


def test_a_parent_missing_from_a_stale_listing_still_blocks_its_child() -> None:
    store, clock = MemoryStore(), Clock()
    parent = replace(
        new_lease("t", ARN, "p", (), TRIM_HORIZON, owner="w1"), checkpoint="500", last_version=5
    )
    child = new_lease("t", ARN, "c", ("p",), TRIM_HORIZON)
    store.rows = {parent.lease_key: parent, child.lease_key: child}
    stale = Streams(open_shard("c", "p"))  # this worker's DescribeStream does not show p
    two = coordinator(store, stale, clock, "w2")
    two.start()
    two.tick()
    assert readable_ids(two) == [], "c was readable while p's lease row says it is unfinished"


def test_a_child_inherits_its_parents_final_version_never_a_mid_shard_one() -> None:
    store, clock = MemoryStore(), Clock()
    parent = replace(
        new_lease("t", ARN, "p", (), TRIM_HORIZON, owner="w1"), checkpoint="500", last_version=5
    )
    child = new_lease("t", ARN, "c", ("p",), TRIM_HORIZON)
    store.rows = {parent.lease_key: parent, child.lease_key: child}
    two = coordinator(store, Streams(open_shard("c", "p")), clock, "w2")
    two.start()
    two.tick()
    versions = [lease.last_version for lease in two.readable()]
    assert 5 not in versions, "c would resume from p's mid-shard checkpoint version"
    store.rows[parent.lease_key] = replace(
        parent, checkpoint=SHARD_END, last_version=9, counter=parent.counter + 1
    )
    clock.now += 10
    two.tick()
    assert [(lease.shard_id, lease.last_version) for lease in two.readable()] == [("c", 9)]


def test_a_child_whose_parent_is_unlisted_starts_only_once_the_service_says_it_is_gone() -> None:
    store, clock = MemoryStore(), Clock()
    streams = Streams(open_shard("b", "a"))  # "a" is missing from the listing
    coord = coordinator(store, streams, clock)
    coord.start()
    coord.tick()
    assert streams.probes == ["a"]
    assert sorted(store.rows) == []  # "a" exists: "b" waits
    assert readable_ids(coord) == []
    clock.now += 10
    coord.tick()
    assert streams.probes == ["a", "a"]
    assert readable_ids(coord) == []
    streams.topology.append(closed(open_shard("a")))  # the next listing shows it
    clock.now += 10
    coord.tick()
    assert readable_ids(coord) == ["a"]
    assert coord.shard_end(f"{ARN}#a", last_version=7)
    assert [(lease.shard_id, lease.last_version) for lease in coord.readable()] == [("b", 7)]


def test_a_child_of_a_trimmed_parent_is_a_lineage_root() -> None:
    store, clock = MemoryStore(), Clock()
    streams = Streams(open_shard("b", "a"))
    streams.gone = {"a"}
    coord = coordinator(store, streams, clock)
    coord.start()
    coord.tick()
    assert readable_ids(coord) == ["b"]
    assert streams.probes == ["a"], "a shard known to be gone is not asked about again"


def test_an_unanswered_probe_keeps_the_child_waiting() -> None:
    store, clock = MemoryStore(), Clock()
    streams = Streams(open_shard("b", "a"))
    streams.gone = {"a"}
    coord = coordinator(store, streams, clock)
    original = streams.shard_gone

    def throttled(stream_arn: str, shard_id: str) -> bool:
        raise StreamUnavailable("scripted throttling")

    streams.shard_gone = throttled  # type: ignore[method-assign]
    coord.start()
    coord.tick()
    assert readable_ids(coord) == []
    streams.shard_gone = original  # type: ignore[method-assign]
    clock.now += 10
    coord.tick()
    assert readable_ids(coord) == ["b"]


def test_children_listed_late_are_looked_up_again_within_seconds() -> None:
    store, clock = MemoryStore(), Clock()
    streams = Streams(open_shard("a"))
    coord = coordinator(store, streams, clock)
    coord.start()
    coord.tick()
    streams.topology = [closed(open_shard("a"))]  # DescribeStream does not show the child yet
    assert coord.shard_end(f"{ARN}#a", last_version=3)
    assert coord.readable() == []
    assert coord.due_at() == clock.now + 0.1
    clock.now += 0.1
    coord.tick()
    assert streams.child_calls == ["a", "a"]
    streams.topology.append(open_shard("b", "a"))
    clock.now = coord.due_at()
    assert clock.now < 101, "the next look is due well before the next shard sync"
    coord.tick()
    assert [(lease.shard_id, lease.last_version) for lease in coord.readable()] == [("b", 3)]
    assert store.by_shard("b").owner == "w1"
    assert coord.due_at() > clock.now + 1, "nothing more to look up"


def test_child_lookups_give_up_after_a_few_seconds_and_leave_it_to_the_sync() -> None:
    store, clock = MemoryStore(), Clock()
    streams = Streams(open_shard("a"))
    coord = coordinator(store, streams, clock)
    coord.start()
    coord.tick()
    streams.topology = [closed(open_shard("a"))]
    assert coord.shard_end(f"{ARN}#a", last_version=3)
    for _ in range(20):
        clock.now = min(coord.due_at(), clock.now + 1)
        coord.tick()
    lookups = streams.child_calls.count("a")
    assert 5 <= lookups <= 10, lookups
    clock.now += 30
    coord.tick()
    assert streams.child_calls.count("a") == lookups
