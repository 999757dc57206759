"""The backfill loop: parallel Scan pages in, SNAPSHOT events out, progress only behind Kafka.

Invariant: a segment's persisted resume key never passes a page with an item Kafka has not
acknowledged (``plan.PageLedger``); a page whose images are older than ``max_hold_s`` when
their turn to be produced comes is read again instead (the tombstone argument needs it).
Scans run on a thread pool; everything else (producing, delivery callbacks, progress writes,
heartbeats, display) happens on this one loop's thread.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

from bridge.aws import TableDescription
from bridge.backfill import claim, plan
from bridge.backfill.display import SegmentView, Summary, progress_lines
from bridge.backfill.errors import BackfillError, ResumeMismatch, ScanUnavailable
from bridge.backfill.plan import PageLedger, SegmentProgress
from bridge.backfill.progress import RunRecord, RunState
from bridge.backfill.rate import SCAN_BACKOFF, TokenBucket
from bridge.backfill.scan import ScanPage
from bridge.backfill.tombstones import Window
from bridge.contract import ChangeEvent, Item, snapshot_version

log = logging.getLogger(__name__)

PAGES_IN_FLIGHT = 3
"""Per segment: the next page is read while the previous ones are being acknowledged."""


class Scanner(Protocol):
    def page(
        self,
        table: str,
        segment: int,
        total_segments: int,
        start_key: Item | None,
        *,
        limit: int | None,
        consistent: bool,
    ) -> ScanPage: ...


class Publisher(Protocol):
    def publish(self, event: ChangeEvent, on_delivery: Callable[[str | None], None]) -> None: ...
    def poll(self, timeout_s: float) -> None: ...
    def flush(self, timeout_s: float) -> int: ...


class ProgressStore(claim.ClaimStore, Protocol):
    def segments(self, table: str, total_segments: int) -> dict[int, SegmentProgress]: ...
    def adopt_segment(self, progress: SegmentProgress, run_id: str) -> None: ...
    def save_segment(self, progress: SegmentProgress, run_id: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Options:
    segments: int | None = None
    max_rcu: float | None = None
    max_items_per_s: float | None = None
    consistent_read: bool = False
    restart: bool = False
    page_size: int | None = None
    workers: int = 16
    claim_ttl_s: float = 15.0
    window: Window = field(default_factory=Window)
    display_interval_s: float = 2.0
    owner: str = "backfill"


@dataclass(slots=True)
class _Segment:
    progress: SegmentProgress
    next_key: Item | None
    exhausted: bool
    ledger: PageLedger = field(default_factory=PageLedger)
    scan: cf.Future[tuple[ScanPage, float]] | None = None
    retry_at: float = 0.0
    throttled_in_a_row: int = 0
    throttles: int = 0
    scanned: int = 0
    published: int = 0
    consumed_rcu: float = 0.0


class Backfill:
    """One run over one table; :meth:`run` returns when every segment is done or ``stop`` is set."""

    def __init__(
        self,
        shape: TableDescription,
        scanner: Scanner,
        publisher: Publisher,
        store: ProgressStore,
        options: Options,
        stop: threading.Event,
        *,
        say: Callable[[str], None],
        before_publish: Callable[[ChangeEvent], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self._shape, self._scanner, self._publisher = shape, scanner, publisher
        self._store, self._options, self._stop = store, options, stop
        self._say, self._before_publish = say, before_publish
        self._clock, self._wall_clock, self._sleep = clock, wall_clock, sleep
        self._rng = rng or random.Random()
        rate = options.max_rcu if options.max_rcu is not None else options.max_items_per_s
        self._bucket = TokenBucket(rate, burst=rate or 0.0)
        self._segments: list[_Segment] = []
        self._run: RunRecord | None = None
        self._resumed = False

    # -- the run --------------------------------------------------------------------------

    def run(self) -> Summary:
        table = self._shape.table
        previous = self._store.run(table)
        finished = previous is not None and previous.state is RunState.FINISHED
        if previous is not None and finished and not self._options.restart:
            self._say(f"backfill of {table} already finished (use --restart to scan again)")
            self._run = previous
            self._segments = self._load(previous, fresh=False)
            return self._summary(0.0, RunState.FINISHED)
        self._run, replaced = claim.acquire(
            self._store,
            table,
            self._ours,
            ttl_s=self._options.claim_ttl_s,
            say=self._say,
            clock=self._clock,
            sleep=self._sleep,
        )
        self._resumed = self._resuming(replaced)
        self._segments = self._load(self._run, fresh=not self._resumed)
        self._adopt()
        started = self._clock()
        self._say(self._banner())
        try:
            state = self._loop(started)
        except BaseException as error:
            self._close(RunState.FAILED, f"{type(error).__name__}: {error}")
            raise
        self._close(state, None)
        return self._summary(self._clock() - started, state)

    def _resuming(self, replaced: RunRecord | None) -> bool:
        return (
            replaced is not None
            and not self._options.restart
            and replaced.state is not RunState.FINISHED
        )

    def _ours(self, previous: RunRecord | None) -> RunRecord:
        now_wall = self._wall_clock()
        if previous is not None and self._resuming(previous):
            if self._options.segments not in (None, previous.total_segments):
                raise ResumeMismatch(
                    f"the interrupted backfill of {self._shape.table} uses "
                    f"{previous.total_segments} segments, not {self._options.segments}: rerun "
                    "without --segments to resume, or add --restart to scan again"
                )
            return replace(
                previous,
                run_id=uuid.uuid4().hex,
                owner=self._options.owner,
                state=RunState.RUNNING,
                updated_at=now_wall,
                finished_at=None,
                error=None,
            )
        total = self._options.segments or plan.default_segments(self._shape.size_bytes)
        start = plan.scan_start_s(now_wall, self._shape.server_now_s)
        if self._shape.server_now_s is not None and abs(now_wall - self._shape.server_now_s) > 60:
            log.warning(
                "this host's clock is %.0f s off DynamoDB's; the scan start uses the earlier",
                now_wall - self._shape.server_now_s,
            )
        return RunRecord(
            table=self._shape.table,
            run_id=uuid.uuid4().hex,
            owner=self._options.owner,
            counter=0,
            state=RunState.RUNNING,
            scan_start_s=start,
            total_segments=total,
            item_count_estimate=self._shape.item_count,
            started_at=now_wall,
            updated_at=now_wall,
        )

    def _load(self, run: RunRecord, *, fresh: bool) -> list[_Segment]:
        stored = {} if fresh else self._store.segments(run.table, run.total_segments)
        rows = [
            stored.get(p.segment, p) for p in plan.fresh_segments(run.table, run.total_segments)
        ]
        return [_Segment(row, row.start_key, row.done) for row in rows]

    def _adopt(self) -> None:
        """Make every segment row ours; count the segments this run reads from their start."""
        assert self._run is not None
        for seg in self._segments:
            if not seg.progress.done and seg.progress.start_key is None:
                seg.progress = plan.started_from_scratch(seg.progress)
            self._store.adopt_segment(seg.progress, self._run.run_id)

    def _loop(self, started: float) -> RunState:
        workers = max(1, min(len(self._segments), self._options.workers))
        next_beat = next_show = started
        with cf.ThreadPoolExecutor(workers, thread_name_prefix="scan") as pool:
            while not self._finished():
                if self._stop.is_set():
                    pool.shutdown(wait=True, cancel_futures=True)
                    self._drain()
                    return RunState.STOPPED
                self._submit(pool)
                self._collect()
                self._settle()
                now = self._clock()
                if now >= next_beat:
                    self._run = claim.heartbeat(
                        self._store, self._require_run(), self._wall_clock()
                    )
                    next_beat = now + self._options.claim_ttl_s / 3
                if now >= next_show:
                    self._show(now - started)
                    next_show = now + self._options.display_interval_s
        self._drain()
        self._show(self._clock() - started)
        complete = all(s.progress.done for s in self._segments)
        return RunState.FINISHED if complete else RunState.FAILED

    def _finished(self) -> bool:
        return all(
            s.exhausted and s.scan is None and s.ledger.in_flight() == 0 for s in self._segments
        )

    # -- scanning -------------------------------------------------------------------------

    def _submit(self, pool: cf.ThreadPoolExecutor) -> None:
        now = self._clock()
        for seg in self._segments:
            if seg.exhausted or seg.scan is not None or now < seg.retry_at:
                continue
            if seg.ledger.in_flight() >= PAGES_IN_FLIGHT or self._bucket.wait_s(now) > 0:
                continue
            seg.scan = pool.submit(
                self._timed_page,
                self._shape.table,
                seg.progress.segment,
                seg.progress.total_segments,
                seg.next_key,
                limit=self._page_limit(),
                consistent=self._options.consistent_read,
            )

    def _timed_page(
        self,
        table: str,
        segment: int,
        total_segments: int,
        start_key: Item | None,
        *,
        limit: int | None,
        consistent: bool,
    ) -> tuple[ScanPage, float]:
        """A page and when its response arrived (its images were read at most the request's
        read timeout earlier: ``Window.scan_timeout_s``)."""
        page = self._scanner.page(
            table, segment, total_segments, start_key, limit=limit, consistent=consistent
        )
        return page, self._clock()

    def _page_limit(self) -> int | None:
        if self._options.page_size is not None:
            return self._options.page_size
        if self._options.max_items_per_s is not None:
            return max(1, min(1000, int(self._options.max_items_per_s)))
        return None

    def _collect(self) -> None:
        scans = [s.scan for s in self._segments if s.scan is not None]
        if scans:
            cf.wait(scans, timeout=0.05, return_when=cf.FIRST_COMPLETED)
            self._publisher.poll(0)
        else:
            self._publisher.poll(0.05)
        for seg in self._segments:
            if seg.scan is not None and seg.scan.done():
                future, seg.scan = seg.scan, None
                self._landed(seg, future)

    def _landed(self, seg: _Segment, future: cf.Future[tuple[ScanPage, float]]) -> None:
        now = self._clock()
        try:
            page, read_at = future.result()
        except ScanUnavailable as error:
            seg.throttles += 1
            seg.throttled_in_a_row += 1
            seg.retry_at = now + SCAN_BACKOFF.delay(seg.throttled_in_a_row, self._rng.random)
            log.info("segment %d: %s; retrying", seg.progress.segment, error)
            return
        seg.throttled_in_a_row = 0
        cost = page.consumed_rcu if self._options.max_rcu is not None else len(page.items)
        self._bucket.spend(cost, now)
        seg.consumed_rcu += page.consumed_rcu
        seg.scanned += len(page.items)
        if now - read_at > self._options.window.max_hold_s:
            log.warning(
                "segment %d: a page read %.0f s ago is too old to publish; reading it again",
                seg.progress.segment,
                now - read_at,
            )
            return
        self._publish(seg, page, read_at)

    def _publish(self, seg: _Segment, page: ScanPage, read_at: float) -> None:
        run = self._require_run()
        number = seg.ledger.opened(page.last_key, len(page.items), page.consumed_rcu, read_at)
        report = functools.partial(seg.ledger.delivered, number)
        prefix = f"snapshot:{run.scan_start_s}:{run.run_id[:8]}:{seg.progress.segment}:{number}:"
        for i, item in enumerate(page.items):
            event = plan.snapshot_event(
                self._shape.table, item, self._shape.key_names, run.scan_start_s, prefix + str(i)
            )
            if self._before_publish is not None:
                self._before_publish(event)
            self._publisher.publish(event, report)
        seg.next_key = page.last_key
        seg.exhausted = page.last_key is None

    # -- acknowledgements and progress -------------------------------------------------------

    def _settle(self) -> None:
        run = self._require_run()
        for seg in self._segments:
            if seg.ledger.error is not None:
                raise BackfillError(
                    f"Kafka did not accept a snapshot event of {run.table} segment "
                    f"{seg.progress.segment}: {seg.ledger.error} (rerun to resume)"
                )
            settled = seg.ledger.settled()
            if not settled:
                continue
            for page in settled:
                seg.progress = plan.advanced(seg.progress, page)
                seg.published += page.items
            self._store.save_segment(seg.progress, run.run_id)

    def _drain(self) -> None:
        """Wait for what was produced (bounded by the delivery timeout), then save progress."""
        deadline = self._clock() + self._options.window.delivery_timeout_s
        while any(s.ledger.in_flight() for s in self._segments) and self._clock() < deadline:
            self._publisher.flush(1.0)
            self._settle()
        self._settle()

    def _close(self, state: RunState, error: str | None) -> None:
        run = self._run
        if run is None:
            return
        now_wall = self._wall_clock()
        final = replace(
            run,
            counter=run.counter + 1,
            state=state,
            updated_at=now_wall,
            error=error,
            finished_at=now_wall if state is RunState.FINISHED else None,
        )
        try:
            if self._store.replace_run(run, final):
                self._run = final
        except BackfillError as problem:
            log.warning("could not record the backfill as %s: %s", state.value, problem)

    # -- reporting ------------------------------------------------------------------------

    def _require_run(self) -> RunRecord:
        if self._run is None:
            raise RuntimeError("the backfill has no claim yet")
        return self._run

    def _views(self) -> list[SegmentView]:
        return [
            SegmentView(
                s.progress.segment,
                s.scanned,
                s.published,
                s.progress.items,
                s.progress.done,
                s.throttles,
                s.progress.from_start_scans,
            )
            for s in self._segments
        ]

    def _show(self, elapsed_s: float) -> None:
        run = self._require_run()
        for line in progress_lines(run.table, self._views(), run.item_count_estimate, elapsed_s):
            self._say(line)

    def _banner(self) -> str:
        run = self._require_run()
        how = "resuming" if self._resumed else "starting"
        return (
            f"{how} backfill of {run.table}: run {run.run_id}, {run.total_segments} segments, "
            f"scan start {run.scan_start_s} (snapshot version {snapshot_version(run.scan_start_s)})"
        )

    def _summary(self, elapsed_s: float, state: RunState) -> Summary:
        run = self._require_run()
        views = tuple(self._views())
        published = sum(v.published for v in views)
        return Summary(
            table=run.table,
            run_id=run.run_id,
            state=state.value,
            resumed=self._resumed,
            scan_start_s=run.scan_start_s,
            snapshot_version=snapshot_version(run.scan_start_s),
            total_segments=run.total_segments,
            segments_done=sum(v.done for v in views),
            items_scanned=sum(v.scanned for v in views),
            items_published=published,
            items_published_all_runs=sum(v.total_published for v in views),
            item_count_estimate=run.item_count_estimate,
            consumed_rcu=sum(s.consumed_rcu for s in self._segments),
            throttles=sum(v.throttles for v in views),
            elapsed_s=elapsed_s,
            items_per_s=published / elapsed_s if elapsed_s > 0 else 0.0,
            segments=views,
        )
