"""Visibility and latency bookkeeping: what counts as "the index shows this change"."""

from __future__ import annotations

import math

import pytest

from dynabridge.demo.visibility import LatencySummary, VisibilityTracker, percentile


def test_a_document_at_or_past_the_rev_settles_the_change_with_its_latency() -> None:
    tracker = VisibilityTracker()
    tracker.expect("a", 5, deletes=False, written_at=10.0)
    tracker.observe("a", 4, at=10.5)  # an older revision: not yet
    assert not tracker.settled("a")
    tracker.observe("a", 5, at=10.25)
    assert tracker.settled("a")
    assert tracker.latencies_s() == [0.25]


def test_a_newer_change_settles_the_older_ones_it_superseded() -> None:
    tracker = VisibilityTracker()
    tracker.expect("a", 1, deletes=False, written_at=1.0)
    tracker.expect("a", 3, deletes=False, written_at=2.0)
    tracker.observe("a", 3, at=4.0)
    assert tracker.latencies_s() == [3.0, 2.0]
    assert tracker.pending_ids() == []


def test_absence_settles_only_a_delete() -> None:
    tracker = VisibilityTracker()
    tracker.expect("new", 1, deletes=False, written_at=0.0)
    tracker.expect("gone", 2, deletes=True, written_at=0.0)
    tracker.observe("new", None, at=1.0)
    tracker.observe("gone", 1, at=1.0)  # still the old document
    assert sorted(tracker.pending_ids()) == ["gone", "new"]
    tracker.observe("gone", None, at=1.5)
    assert tracker.pending_ids() == ["new"]
    assert tracker.visible == 1
    assert tracker.expected == 2


def test_latencies_since_skip_the_warm_up() -> None:
    tracker = VisibilityTracker()
    tracker.expect("w", 0, deletes=False, written_at=0.0)
    tracker.observe("w", 0, at=9.0)
    base = tracker.visible
    tracker.expect("x", 1, deletes=False, written_at=10.0)
    tracker.observe("x", 1, at=10.1)
    assert tracker.latencies_s(since=base) == pytest.approx([0.1])


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0
    summary = LatencySummary.of([0.1, 0.2, 0.3, 0.4])
    assert summary.count == 4
    assert summary.p50_ms == pytest.approx(200.0)
    assert summary.max_ms == pytest.approx(400.0)
    assert math.isnan(LatencySummary.of([]).p50_ms)
