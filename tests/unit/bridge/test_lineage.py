"""Lineage: which shards get leases, at which position, and which leases may be read."""

from __future__ import annotations

from dataclasses import replace

from bridge.leases import LATEST, SHARD_END, TRIM_HORIZON, Lease, lease_key, new_lease
from bridge.lineage import (
    children_of,
    deletable,
    inherited,
    new_leases,
    parents_first,
    parents_to_probe,
    readable,
)
from bridge.shards import Shard, StreamInfo

ARN = "arn:aws:dynamodb:us-east-1:1:table/t/stream/s"
INFO = StreamInfo("t", ARN, "NEW_AND_OLD_IMAGES", ("pk",))


def shard(shard_id: str, parent: str | None = None, *, closed: bool = False) -> Shard:
    return Shard(shard_id, parent, "100", "900" if closed else None)


def lease(shard_id: str, *parents: str, checkpoint: str = TRIM_HORIZON, version: int = 0) -> Lease:
    return replace(
        new_lease("t", ARN, shard_id, parents, checkpoint, owner="w1"), last_version=version
    )


def by_key(*leases: Lease) -> dict[str, Lease]:
    return {item.lease_key: item for item in leases}


def test_first_start_trim_horizon_leases_the_roots_and_children_wait_for_their_parent() -> None:
    shards = [shard("b", "a"), shard("c", "a"), shard("a", closed=True)]
    created = new_leases(INFO, shards, [], start_latest=False)
    assert [(c.shard_id, c.parent_shard_ids, c.checkpoint) for c in created] == [
        ("a", (), TRIM_HORIZON)
    ]
    assert all(c.owner is None and c.counter == 0 for c in created)
    done = replace(created[0], checkpoint=SHARD_END)
    later = new_leases(INFO, shards, [done], start_latest=False)
    assert [(c.shard_id, c.parent_shard_ids, c.checkpoint) for c in later] == [
        ("b", ("a",), TRIM_HORIZON),
        ("c", ("a",), TRIM_HORIZON),
    ]


def test_parents_first_orders_a_listing_whatever_its_page_order() -> None:
    shards = [shard("c", "b"), shard("x"), shard("b", "a"), shard("a", closed=True)]
    assert [s.shard_id for s in parents_first(shards)] == ["a", "b", "c", "x"]


def test_first_start_latest_reads_open_shards_at_latest_and_finishes_closed_ones() -> None:
    shards = [shard("b", "a"), shard("a", closed=True)]
    created = {c.shard_id: c.checkpoint for c in new_leases(INFO, shards, [], start_latest=True)}
    assert created == {"a": SHARD_END, "b": LATEST}


def test_rotation_children_start_at_trim_horizon_even_with_latest() -> None:
    shards = [shard("a", closed=True), shard("b", "a"), shard("c", "a")]
    unfinished = [lease("a", checkpoint="500")]
    assert new_leases(INFO, shards, unfinished, start_latest=True) == []
    finished = [lease("a", checkpoint=SHARD_END)]
    created = new_leases(INFO, shards, finished, start_latest=True)
    assert {c.shard_id: c.checkpoint for c in created} == {"b": TRIM_HORIZON, "c": TRIM_HORIZON}


def test_a_shard_with_a_started_descendant_is_never_leased_again() -> None:
    # "a" and "m" reappear in a page after their leases were cleaned up; "b" already read.
    shards = [shard("a", closed=True), shard("m", "a", closed=True), shard("b", "m")]
    created = new_leases(INFO, shards, [lease("b", "m", checkpoint="1000")], start_latest=False)
    assert created == []


def test_a_listed_parent_without_lease_is_leased_even_if_its_child_has_one() -> None:
    # A child leased before its parent (an older bridge, or a parent's failed create): the
    # parent is not history, since the child has read nothing yet; its lease blocks the child.
    shards = [shard("a", closed=True), shard("b", "a")]
    child = lease("b", "a")
    created = new_leases(INFO, shards, [child], start_latest=False)
    assert [c.shard_id for c in created] == ["a"]
    assert readable([child], by_key(child, *created), {ARN: {"a", "b"}}) == []


def test_a_sibling_of_a_started_shard_is_leased_under_its_finished_ancestor() -> None:
    shards = [shard("a", closed=True), shard("b", "a"), shard("c", "a")]
    created = new_leases(INFO, shards, [lease("b", "a", checkpoint="1000")], start_latest=False)
    assert [(c.shard_id, c.checkpoint) for c in created] == [("c", TRIM_HORIZON)]


def test_a_shard_whose_parent_is_unlisted_waits_until_the_service_says_it_is_gone() -> None:
    shards = [shard("b", "a")]
    assert parents_to_probe(shards, [], frozenset()) == {"a"}
    assert new_leases(INFO, shards, [], start_latest=False) == []
    created = new_leases(INFO, shards, [], start_latest=False, gone={"a"})
    assert [(c.shard_id, c.parent_shard_ids) for c in created] == [("b", ("a",))]
    assert parents_to_probe(shards, created, {"a"}) == set()
    started = [replace(created[0], checkpoint="300")]
    assert parents_to_probe(shards, started, frozenset()) == set()  # nothing left to decide


def test_closed_shard_without_children_yet_is_leased_and_children_come_after_its_end() -> None:
    first = new_leases(INFO, [shard("a", closed=True)], [], start_latest=False)
    assert [c.shard_id for c in first] == ["a"]
    listing = [shard("a", closed=True), shard("b", "a")]
    assert new_leases(INFO, listing, first, start_latest=False) == []
    done = [replace(first[0], checkpoint=SHARD_END)]
    later = new_leases(INFO, listing, done, start_latest=False)
    assert [(c.shard_id, c.parent_shard_ids) for c in later] == [("b", ("a",))]


def test_children_of_filters_answers_that_ignore_the_shard_filter() -> None:
    answer = [shard("a", closed=True), shard("b", "a"), shard("x", "z")]
    assert [s.shard_id for s in children_of("a", answer)] == ["b"]


def test_child_waits_until_parent_checkpoints_shard_end() -> None:
    parent, child = lease("a", checkpoint="700", version=42), lease("b", "a")
    present = {ARN: {"a", "b"}}
    assert readable([child], by_key(parent, child), present) == []
    done = replace(parent, checkpoint=SHARD_END)
    assert [r.shard_id for r in readable([child], by_key(done, child), present)] == ["b"]


def test_child_created_before_parent_shard_end_waits_even_if_parent_closed() -> None:
    # The parent is closed in DescribeStream but its last page is not acknowledged yet.
    parent, child = lease("a", checkpoint="899"), lease("b", "a")
    assert readable([child], by_key(parent, child), {ARN: {"a", "b"}}) == []


def test_open_parent_with_open_child_is_still_the_parent() -> None:
    shards = [shard("a"), shard("b", "a")]  # inconsistent page: both open
    created = by_key(*new_leases(INFO, shards, [], start_latest=False))
    assert list(created) == [lease_key(ARN, "a")]
    child = lease("b", "a")
    assert readable([child], {**created, child.lease_key: child}, {ARN: {"a", "b"}}) == []


def test_an_unfinished_parent_blocks_even_when_absent_from_this_workers_listing() -> None:
    parent, child = lease("a", checkpoint="700", version=7), lease("b", "a")
    assert readable([child], by_key(parent, child), {ARN: {"b"}}) == []
    assert readable([child], by_key(parent, child), {ARN: {"b"}}, {ARN: {"a"}}) == []


def test_a_parent_without_lease_blocks_until_the_service_says_it_is_gone() -> None:
    child = lease("b", "a")
    assert readable([child], by_key(child), {ARN: {"a", "b"}}) == []  # its lease comes first
    assert readable([child], by_key(child), {ARN: {"b"}}) == []  # maybe a stale listing
    assert readable([child], by_key(child), {ARN: {"b"}}, {ARN: {"a"}}) == [child]


def test_a_child_that_checkpointed_is_not_held_back_by_a_cleaned_up_parent() -> None:
    child = lease("b", "a", checkpoint="400", version=9)
    assert readable([child], by_key(child), {ARN: {"a", "b"}}) == [child]


def test_an_unfinished_parents_checkpoint_version_is_never_inherited() -> None:
    parent, child = lease("a", checkpoint="700", version=7), lease("b", "a")
    assert inherited(child, by_key(parent, child)).last_version == 0


def test_chain_of_three_advances_one_generation_at_a_time() -> None:
    a, b, c = lease("a", checkpoint="5"), lease("b", "a"), lease("c", "b")
    present = {ARN: {"a", "b", "c"}}
    held = [a, b, c]
    assert [r.shard_id for r in readable(held, by_key(a, b, c), present)] == ["a"]
    a = replace(a, checkpoint=SHARD_END, last_version=10)
    held = [a, b, c]
    assert [r.shard_id for r in readable(held, by_key(a, b, c), present)] == ["b"]
    b = replace(b, checkpoint=SHARD_END, last_version=20)
    ready = readable([a, b, c], by_key(a, b, c), present)
    assert [(r.shard_id, r.last_version) for r in ready] == [("c", 20)]


def test_split_children_both_inherit_the_parents_final_version() -> None:
    a = lease("a", checkpoint=SHARD_END, version=1_700_000_000_000_007)
    b, c = lease("b", "a"), lease("c", "a")
    ready = readable([b, c], by_key(a, b, c), {ARN: {"a", "b", "c"}})
    assert [r.last_version for r in ready] == [1_700_000_000_000_007] * 2


def test_a_child_that_checkpointed_keeps_its_own_version() -> None:
    a = lease("a", checkpoint=SHARD_END, version=50)
    b = lease("b", "a", checkpoint="300", version=60)
    assert inherited(b, by_key(a, b)).last_version == 60


def test_merge_inherits_the_larger_parent_version() -> None:
    p1 = lease("p1", checkpoint=SHARD_END, version=7)
    p2 = lease("p2", checkpoint=SHARD_END, version=9)
    child = lease("c", "p1", "p2")
    assert inherited(child, by_key(p1, p2, child)).last_version == 9


def test_finished_leases_are_never_readable() -> None:
    done = lease("a", checkpoint=SHARD_END)
    assert readable([done], by_key(done), {ARN: {"a"}}) == []


def test_deletable_only_when_gone_from_stream_and_children_started() -> None:
    parent = lease("a", checkpoint=SHARD_END, version=5)
    waiting = lease("b", "a")
    started = lease("b", "a", checkpoint="400")
    assert deletable([parent, waiting], {ARN: {"b"}}) == []  # child would lose its version
    assert deletable([parent, started], {ARN: {"a", "b"}}) == []  # still listed
    assert deletable([parent, started], {ARN: {"b"}}) == [parent]
    assert deletable([parent], {ARN: set()}) == []  # no child yet: keep it
    assert deletable([lease("z", checkpoint="9"), started], {ARN: {"b"}}) == []  # unfinished
    with_gap = replace(parent, gaps=("trimmed after 300",))
    assert deletable([with_gap, started], {ARN: {"b"}}) == []  # the record of a gap stays


def test_nothing_is_readable_before_the_stream_was_listed_once() -> None:
    parent, child = lease("a", checkpoint="700"), lease("b", "a")
    assert readable([parent, child], by_key(parent, child), {}) == []
