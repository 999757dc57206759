"""Backfill planning: the scan start (hence the snapshot version), events, per-segment resume keys.

A segment's resume key advances only over a contiguous prefix of pages whose every item Kafka
acknowledged, so a crash re-reads (never skips) an unacknowledged page. The scan start is
persisted with the run, so a resumed run publishes the same version as the first attempt.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field, replace

from bridge.contract import ChangeEvent, EventName, Item, Origin, snapshot_version

MAX_SEGMENTS = 1_000_000
"""DynamoDB's limit on TotalSegments."""


def scan_start_s(host_now_s: float, server_now_s: float | None) -> int:
    """The scan start, whole seconds: the earlier of our clock and DynamoDB's (its Date header).

    Every change made after the scan read an item must get a stream version above the
    snapshot version ``(start - 300 s) * 10^6``. Stream versions come from
    ApproximateCreationDateTime, stamped by DynamoDB's clock and rounded down to the second,
    so taking DynamoDB's own clock removes our host's skew from the argument; taking the
    earlier of the two means a wrong server Date can only lower the version (which is safe:
    a lower snapshot version only lets more stream changes win, and every stream change
    from around the scan is at least as new as the image).
    """
    candidates = [host_now_s] if server_now_s is None else [host_now_s, server_now_s]
    return math.floor(min(candidates))


def default_segments(table_size_bytes: int) -> int:
    """AWS's rule of thumb: one segment per 2 GiB, at least 4 for some parallelism."""
    return max(4, min(MAX_SEGMENTS, math.ceil(table_size_bytes / 2**31)))


def keys_of(item: Item, key_names: tuple[str, ...]) -> Item:
    """The primary key of a scanned item, by the table's KeySchema (hash, then range)."""
    return {name: item[name] for name in key_names}


def snapshot_event(
    table: str, item: Item, key_names: tuple[str, ...], start_s: int, event_id: str
) -> ChangeEvent:
    """One scanned item as an INSERT of origin SNAPSHOT, versioned by the scan start."""
    return ChangeEvent(
        table=table,
        event_name=EventName.INSERT,
        event_id=event_id,
        stream_arn="",
        shard_id="",
        sequence_number="",
        approximate_creation_time_ms=start_s * 1000,
        version=snapshot_version(start_s),
        keys=keys_of(item, key_names),
        new_image=item,
        old_image=None,
        origin=Origin.SNAPSHOT,
    )


@dataclass(frozen=True, slots=True)
class SegmentProgress:
    """What is persisted per segment: where to resume, and counters over acknowledged pages."""

    table: str
    segment: int
    total_segments: int
    start_key: Item | None = None
    """ExclusiveStartKey of the next page to read; None with ``done`` False: from the start."""
    done: bool = False
    items: int = 0
    """Items published and acknowledged, over all runs of this backfill."""
    pages: int = 0
    consumed_rcu: float = 0.0
    from_start_scans: int = 0
    """How many times a run started this segment from its beginning."""


def fresh_segments(table: str, total_segments: int) -> list[SegmentProgress]:
    return [SegmentProgress(table, segment, total_segments) for segment in range(total_segments)]


def started_from_scratch(progress: SegmentProgress) -> SegmentProgress:
    """The row to write when a run begins reading ``progress`` at the segment's start."""
    return replace(progress, from_start_scans=progress.from_start_scans + 1)


@dataclass(slots=True)
class Page:
    """One Scan page in flight between "read" and "every item acknowledged"."""

    number: int
    last_key: Item | None
    """LastEvaluatedKey; None means this was the segment's last page."""
    items: int
    consumed_rcu: float
    unacknowledged: int
    read_at: float


@dataclass(slots=True)
class PageLedger:
    """One segment's pages in read order; :meth:`settled` pops the fully acknowledged prefix."""

    pages: deque[Page] = field(default_factory=deque)
    next_number: int = 0
    error: str | None = None

    def opened(self, last_key: Item | None, items: int, consumed_rcu: float, now: float) -> int:
        number = self.next_number
        self.pages.append(Page(number, last_key, items, consumed_rcu, items, now))
        self.next_number += 1
        return number

    def delivered(self, number: int, error: str | None) -> None:
        """Kafka's verdict on one item of page ``number`` (a delivery callback)."""
        if error is not None:
            self.error = self.error or error
            return
        for page in self.pages:
            if page.number == number:
                page.unacknowledged -= 1
                return

    def settled(self) -> list[Page]:
        """Pages, oldest first, whose items and every earlier page's items are acknowledged."""
        done: list[Page] = []
        while self.error is None and self.pages and self.pages[0].unacknowledged <= 0:
            done.append(self.pages.popleft())
        return done

    def in_flight(self) -> int:
        return len(self.pages)


def advanced(progress: SegmentProgress, page: Page) -> SegmentProgress:
    """``progress`` after ``page`` settled: resume after it, or the segment is done."""
    return replace(
        progress,
        start_key=page.last_key,
        done=page.last_key is None,
        items=progress.items + page.items,
        pages=progress.pages + 1,
        consumed_rcu=progress.consumed_rcu + page.consumed_rcu,
    )
