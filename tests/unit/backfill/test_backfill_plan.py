from __future__ import annotations

import random

import pytest

from bridge.backfill import plan, rate, tombstones
from bridge.backfill.display import SegmentView, eta_s, progress_lines
from bridge.contract import EventName, Item, Origin, snapshot_version


def test_scan_start_takes_the_earlier_clock_whole_seconds() -> None:
    assert plan.scan_start_s(1000.9, 990.2) == 990
    assert plan.scan_start_s(1000.9, 1005.0) == 1000
    assert plan.scan_start_s(1000.9, None) == 1000


def test_snapshot_event_is_an_insert_with_the_scan_version_and_the_key_schema_keys() -> None:
    item: Item = {"sk": {"N": "1"}, "pk": {"S": "a"}, "x": {"SS": ["b"]}}
    event = plan.snapshot_event("t", item, ("pk", "sk"), 1_700_000_000, "snapshot:1")
    assert event.event_name is EventName.INSERT
    assert event.origin is Origin.SNAPSHOT
    assert event.version == snapshot_version(1_700_000_000) == (1_700_000_000 - 300) * 10**6
    assert event.keys == {"pk": {"S": "a"}, "sk": {"N": "1"}}
    assert event.new_image is item
    assert event.approximate_creation_time_ms == 1_700_000_000_000
    assert (event.stream_arn, event.sequence_number, event.old_image) == ("", "", None)


def test_default_segments_one_per_two_gib_at_least_four() -> None:
    assert plan.default_segments(0) == 4
    assert plan.default_segments(20 * 2**30) == 10


def test_ledger_settles_only_a_contiguous_acknowledged_prefix() -> None:
    ledger = plan.PageLedger()
    first = ledger.opened({"k": {"S": "1"}}, 2, 1.0, 0.0)
    second = ledger.opened(None, 1, 0.5, 0.0)
    ledger.delivered(second, None)
    assert ledger.settled() == []  # page 1 is acknowledged, page 0 is not
    ledger.delivered(first, None)
    assert ledger.settled() == []
    ledger.delivered(first, None)
    settled = ledger.settled()
    assert [p.number for p in settled] == [0, 1]
    progress = plan.SegmentProgress("t", 0, 1)
    for page in settled:
        progress = plan.advanced(progress, page)
    assert progress.done
    assert progress.start_key is None
    assert (progress.items, progress.pages, progress.consumed_rcu) == (3, 2, 1.5)


def test_ledger_stops_settling_after_a_delivery_error() -> None:
    ledger = plan.PageLedger()
    number = ledger.opened(None, 2, 0.0, 0.0)
    ledger.delivered(number, "MSG_TIMED_OUT")
    ledger.delivered(number, None)
    ledger.delivered(number, None)
    assert ledger.settled() == []
    assert ledger.error == "MSG_TIMED_OUT"


def test_empty_page_settles_at_once() -> None:
    ledger = plan.PageLedger()
    ledger.opened({"k": {"S": "1"}}, 0, 0.0, 0.0)
    assert len(ledger.settled()) == 1


def test_token_bucket_allows_a_burst_then_waits_for_the_debt() -> None:
    bucket = rate.TokenBucket(10.0, burst=10.0)
    assert bucket.wait_s(0.0) == 0.0
    bucket.spend(30.0, 0.0)  # cost known after the request: 20 in debt
    assert bucket.wait_s(0.0) == pytest.approx(2.0)
    assert bucket.wait_s(1.0) == pytest.approx(1.0)
    assert bucket.wait_s(2.0) == 0.0


def test_unlimited_bucket_never_waits() -> None:
    bucket = rate.TokenBucket(None, burst=0.0)
    bucket.spend(1e9, 0.0)
    assert bucket.wait_s(0.0) == 0.0


def test_scan_backoff_is_full_jitter_under_a_growing_cap() -> None:
    rng = random.Random(1)
    delays = [rate.SCAN_BACKOFF.delay(attempt, rng.random) for attempt in range(1, 13)]
    assert all(0.0 <= d <= min(20.0, 0.1 * 2**a) for a, d in enumerate(delays, start=1))
    assert len(set(delays)) == len(delays)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h", 3600), ("60s", 60), ("15m", 900), ("500ms", 0.5), ("2d", 172800), ("0", 0)],
)
def test_time_values(text: str, seconds: float) -> None:
    assert tombstones.time_value_s(text) == pytest.approx(seconds)


def test_tombstone_window_refuses_the_engine_default_and_accepts_an_hour() -> None:
    window = tombstones.Window()
    assert window.required_s == 500
    why = tombstones.problem("idx", "60s", window)
    assert why is not None
    assert "index.gc_deletes=60s" in why
    assert "PUT idx/_settings" in why
    assert tombstones.problem("idx", "1h", window) is None
    assert tombstones.problem("idx", "500s", window) is None
    assert tombstones.problem("idx", "8m", window) is not None
    assert "cannot read" in (tombstones.problem("idx", "soon", window) or "")


def test_progress_lines_show_rate_and_eta_per_segment() -> None:
    views = [SegmentView(0, 50, 50, 50, False, 2, 1), SegmentView(1, 100, 100, 100, True, 0, 1)]
    lines = progress_lines("t", views, estimate=300, elapsed_s=10.0)
    assert lines[0].startswith("backfill t: 150/~300 items (50%), 15 items/s, segments 1/2 done")
    assert "ETA 10s" in lines[0]
    assert "throttled   2" in lines[1]
    assert "ETA 20s" in lines[1]
    assert lines[2].endswith("done")
    assert eta_s(10, 0, 5.0) is None
