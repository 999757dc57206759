"""Commit tracking: the position never passes a received offset that has not settled."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from consumers.indexer.offsets import CommitTracker
from consumers.indexer.records import Partition

P0 = Partition("ddb.orders", 0)
P1 = Partition("ddb.orders", 1)


def _tracker(partition: Partition, offsets: list[int]) -> CommitTracker:
    tracker = CommitTracker()
    for offset in offsets:
        tracker.received(partition, offset)
    return tracker


def test_nothing_settled_means_nothing_to_commit() -> None:
    tracker = _tracker(P0, [0, 1, 2])
    assert tracker.position(P0) is None
    assert tracker.due() == {}


def test_position_is_last_settled_plus_one_over_the_contiguous_prefix() -> None:
    tracker = _tracker(P0, [5, 6, 7, 8])
    tracker.settle(P0, 5)
    tracker.settle(P0, 7)
    assert tracker.position(P0) == 6
    tracker.settle(P0, 6)
    assert tracker.position(P0) == 8
    tracker.settle(P0, 8)
    assert tracker.position(P0) == 9
    assert tracker.unsettled(P0) == 0


def test_gaps_in_offsets_do_not_block_the_position() -> None:
    # Compacted topics and transaction markers leave offsets that are never delivered.
    tracker = _tracker(P0, [10, 13, 20])
    tracker.settle(P0, 10)
    tracker.settle(P0, 13)
    assert tracker.position(P0) == 14
    tracker.settle(P0, 20)
    assert tracker.position(P0) == 21


def test_out_of_order_settles_wait_for_the_head() -> None:
    tracker = _tracker(P0, [0, 1, 2, 3])
    for offset in (3, 2, 1):
        tracker.settle(P0, offset)
        assert tracker.position(P0) is None
    tracker.settle(P0, 0)
    assert tracker.position(P0) == 4


def test_partitions_are_independent() -> None:
    tracker = CommitTracker()
    tracker.received(P0, 0)
    tracker.received(P1, 0)
    tracker.settle(P1, 0)
    assert tracker.due() == {P1: 1}


def test_due_only_reports_moved_positions() -> None:
    tracker = _tracker(P0, [0, 1])
    tracker.settle(P0, 0)
    assert tracker.due() == {P0: 1}
    tracker.committed({P0: 1})
    assert tracker.due() == {}
    tracker.settle(P0, 1)
    assert tracker.due() == {P0: 2}


def test_revoke_drops_the_partition_and_ignores_late_settles() -> None:
    tracker = _tracker(P0, [0, 1])
    tracker.settle(P0, 0)
    tracker.revoke([P0])
    assert tracker.position(P0) is None
    assert tracker.settle(P0, 1) is False
    assert tracker.due() == {}
    # Assigned again later: a fresh start from whatever the group committed.
    tracker.received(P0, 1)
    tracker.settle(P0, 1)
    assert tracker.due() == {P0: 2}


def test_settle_of_an_offset_never_received_is_refused() -> None:
    tracker = _tracker(P0, [0, 2])
    assert tracker.settle(P0, 1) is False
    assert tracker.settle(P1, 0) is False
    tracker.settle(P0, 0)
    assert tracker.position(P0) == 1


def test_offsets_must_arrive_in_order() -> None:
    tracker = _tracker(P0, [4])
    with pytest.raises(ValueError, match="in order"):
        tracker.received(P0, 4)


@given(st.lists(st.integers(1, 3), min_size=1, max_size=40), st.data())
def test_commit_never_passes_an_unsettled_offset(gaps: list[int], data: st.DataObject) -> None:
    received = [sum(gaps[: i + 1]) for i in range(len(gaps))]
    tracker = _tracker(P0, received)
    order = data.draw(st.permutations(received))
    cut = data.draw(st.integers(0, len(order)))
    settled: set[int] = set()
    for offset in order[:cut]:
        tracker.settle(P0, offset)
        settled.add(offset)
        position = tracker.position(P0)
        unsettled = [o for o in received if o not in settled]
        if position is None:
            assert received[0] in unsettled
            continue
        # Everything below the position settled; the first unsettled offset is not passed.
        assert all(o in settled for o in received if o < position)
        if unsettled:
            assert position <= min(unsettled)
    if cut == len(order):
        assert tracker.position(P0) == received[-1] + 1
