"""What the operator sees: per-segment progress lines on stderr and the ``--json`` summary.

The ETA divides what is left of DynamoDB's ItemCount estimate (AWS refreshes it about every
six hours, so it is a guide, not a promise) by the rate of acknowledged items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

MAX_SEGMENT_LINES = 16
"""Above this many segments only the total and the slowest segments are shown."""


@dataclass(frozen=True, slots=True)
class SegmentView:
    segment: int
    scanned: int
    """Items read by this run."""
    published: int
    """Items of this run acknowledged by Kafka."""
    total_published: int
    """Acknowledged over every run of this backfill (what the ETA counts)."""
    done: bool
    throttles: int
    from_start_scans: int


@dataclass(frozen=True, slots=True)
class Summary:
    table: str
    run_id: str
    state: str
    resumed: bool
    scan_start_s: int
    snapshot_version: int
    total_segments: int
    segments_done: int
    items_scanned: int
    items_published: int
    items_published_all_runs: int
    item_count_estimate: int
    consumed_rcu: float
    throttles: int
    elapsed_s: float
    items_per_s: float
    segments: tuple[SegmentView, ...]

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


def eta_s(done: int, estimate: int, rate_per_s: float) -> float | None:
    """Seconds to reach ``estimate`` at ``rate_per_s``; None when unknown."""
    if rate_per_s <= 0 or estimate <= 0:
        return None
    return max(0.0, (estimate - done) / rate_per_s)


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    whole = int(seconds)
    if whole >= 3600:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    if whole >= 60:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole}s"


def progress_lines(
    table: str, views: Sequence[SegmentView], estimate: int, elapsed_s: float
) -> list[str]:
    """A total line, then one line per segment (or the slowest ones when there are many)."""
    per_segment_estimate = estimate / max(1, len(views))
    published = sum(v.published for v in views)
    all_runs = sum(v.total_published for v in views)
    rate = published / elapsed_s if elapsed_s > 0 else 0.0
    done = sum(1 for v in views if v.done)
    percent = f"{min(100.0, 100.0 * all_runs / estimate):.0f}%" if estimate > 0 else "?%"
    lines = [
        f"backfill {table}: {all_runs}/~{estimate} items ({percent}), {rate:,.0f} items/s, "
        f"segments {done}/{len(views)} done, ETA {duration(eta_s(all_runs, estimate, rate))}"
    ]
    shown = sorted(views, key=lambda v: (v.done, v.total_published))[:MAX_SEGMENT_LINES]
    for view in sorted(shown, key=lambda v: v.segment):
        seg_rate = view.published / elapsed_s if elapsed_s > 0 else 0.0
        state = (
            "done"
            if view.done
            else (
                f"ETA {duration(eta_s(view.total_published, int(per_segment_estimate), seg_rate))}"
            )
        )
        lines.append(
            f"  segment {view.segment:>4}: scanned {view.scanned:>9} published "
            f"{view.published:>9} {seg_rate:>8,.0f}/s throttled {view.throttles:>3} {state}"
        )
    return lines
