from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import replace

import pytest

from bridge.backfill import claim
from bridge.backfill.errors import BackfillError, BackfillRunning, ClaimLost, ResumeMismatch
from bridge.backfill.plan import SegmentProgress
from bridge.backfill.progress import RunState
from bridge.backfill.runner import Backfill, Options
from bridge.backfill.tombstones import Window
from bridge.contract import Origin, snapshot_version
from tests.unit.backfill.fakes_backfill import (
    TABLE,
    Publisher,
    Scanner,
    Store,
    item,
    page_key,
    run_record,
    shape,
    with_segment,
)


def backfill(
    scanner: Scanner,
    publisher: Publisher,
    store: Store,
    options: Options | None = None,
    **kwargs: object,
) -> Backfill:
    return Backfill(
        shape(),
        scanner,
        publisher,
        store,
        options or Options(segments=2, claim_ttl_s=0.3),
        threading.Event(),
        say=lambda line: None,
        rng=random.Random(7),
        wall_clock=lambda: 2_000_000_100.0,
        **kwargs,  # type: ignore[arg-type]
    )


def test_every_item_is_published_once_as_a_snapshot_and_progress_ends_done() -> None:
    scanner, publisher, store = Scanner(pages=3, per_page=4), Publisher(), Store()
    summary = backfill(scanner, publisher, store).run()
    assert summary.state == "finished"
    assert summary.items_published == 24
    assert Counter(str(e.keys) for e in publisher.events).most_common(1)[0][1] == 1
    start = 2_000_000_000  # DynamoDB's clock is earlier than ours: it wins
    assert {e.version for e in publisher.events} == {snapshot_version(start)}
    assert {e.origin for e in publisher.events} == {Origin.SNAPSHOT}
    assert publisher.events[0].keys == {"pk": {"S": "s0"}, "sk": {"N": "0"}}
    rows = store.segments(TABLE, 2)
    assert all(r.done and r.items == 12 and r.pages == 3 for r in rows.values())
    assert all(r.from_start_scans == 1 for r in rows.values())
    assert store.runs[TABLE].state is RunState.FINISHED
    assert summary.consumed_rcu == pytest.approx(3.0)


def test_progress_never_passes_a_page_kafka_did_not_acknowledge() -> None:
    bad = item(1, 1, 2)  # segment 1, page 1
    publisher = Publisher(fail_when=lambda e: e.keys == {"pk": bad["pk"], "sk": bad["sk"]})
    store = Store()
    with pytest.raises(BackfillError, match="Kafka did not accept"):
        backfill(Scanner(pages=3, per_page=4), publisher, store).run()
    segment_1 = store.segments(TABLE, 2)[1]
    assert segment_1.start_key == page_key(1, 0)  # after page 0, never after page 1
    assert not segment_1.done
    assert store.runs[TABLE].state is RunState.FAILED
    assert all(s.start_key != page_key(1, 1) for s in store.saves if s.segment == 1)


def test_a_rerun_resumes_each_segment_with_the_first_runs_version() -> None:
    store = Store()
    store.runs[TABLE] = run_record(RunState.FAILED, scan_start_s=1000)
    with_segment(store, SegmentProgress(TABLE, 0, 2, page_key(0, 1), False, 8, 2, 1.0, 1))
    with_segment(store, SegmentProgress(TABLE, 1, 2, None, True, 12, 3, 1.5, 1))
    scanner, publisher = Scanner(pages=3, per_page=4), Publisher()
    summary = backfill(scanner, publisher, store, Options(claim_ttl_s=0.3)).run()
    assert scanner.calls == [(0, page_key(0, 1))]  # segment 1 done, segment 0 after page 1
    assert {e.version for e in publisher.events} == {snapshot_version(1000)}
    assert summary.resumed
    assert summary.items_scanned == 4
    assert summary.items_published_all_runs == 24
    assert store.segments(TABLE, 2)[0].from_start_scans == 1


def test_a_resume_with_another_segment_count_is_refused() -> None:
    store = Store()
    store.runs[TABLE] = run_record(RunState.STOPPED, total=2)
    with pytest.raises(ResumeMismatch, match="uses 2 segments, not 3"):
        backfill(Scanner(), Publisher(), store, Options(segments=3, claim_ttl_s=0.3)).run()


def test_a_finished_backfill_is_not_scanned_again_unless_restarted() -> None:
    store = Store()
    store.runs[TABLE] = run_record(RunState.FINISHED, scan_start_s=1000)
    scanner, publisher = Scanner(pages=1, per_page=2), Publisher()
    assert backfill(scanner, publisher, store).run().items_scanned == 0
    assert scanner.calls == []
    summary = backfill(scanner, publisher, store, Options(segments=2, restart=True)).run()
    assert summary.items_published == 4
    assert not summary.resumed
    assert summary.scan_start_s == 2_000_000_000
    assert store.runs[TABLE].counter == 7 + 1 + 1 + 1  # claim, heartbeat, close


def test_throttled_scans_back_off_and_retry_the_same_page() -> None:
    scanner, publisher = Scanner(pages=2, per_page=3, throttles={0: 3}), Publisher()
    summary = backfill(scanner, publisher, Store()).run()
    assert summary.throttles == 3
    assert summary.items_published == 12
    assert [key for seg, key in scanner.calls if seg == 0][:4] == [None] * 4


def test_a_page_too_old_to_publish_is_read_again() -> None:
    stale = threading.Event()
    scanner, publisher = Scanner(pages=1, per_page=2), Publisher()
    scanner.on_call = lambda: stale.set() if len(scanner.calls) == 1 else stale.clear()

    def clock() -> float:
        # The loop (main thread) sees the first response arrive 120 s after it was read.
        on_loop = not threading.current_thread().name.startswith("scan")
        return time.monotonic() + (120.0 if stale.is_set() and on_loop else 0.0)

    options = Options(segments=1, claim_ttl_s=1000, window=Window(max_hold_s=60))
    summary = backfill(scanner, publisher, Store(), options, clock=clock).run()
    assert scanner.calls == [(0, None), (0, None)]
    assert summary.items_scanned == 4
    assert summary.items_published == 2
    assert len(publisher.events) == 2


def test_the_items_budget_limits_the_page_size_and_the_rate() -> None:
    calls: list[int | None] = []
    scanner = Scanner(pages=8, per_page=5)
    original = scanner.page

    def page(*args: object, limit: int | None, consistent: bool) -> object:
        calls.append(limit)
        return original(*args, limit=limit, consistent=consistent)  # type: ignore[arg-type]

    scanner.page = page  # type: ignore[method-assign, assignment]
    started = time.monotonic()
    options = Options(segments=1, max_items_per_s=20, claim_ttl_s=1000)
    summary = backfill(scanner, Publisher(), Store(), options).run()
    assert summary.items_published == 40
    assert set(calls) == {20}
    # A 20-item burst, then the last page may start only when 15 items of debt are paid back.
    assert time.monotonic() - started >= 0.7


def test_a_stop_saves_what_was_acknowledged_and_leaves_the_run_resumable() -> None:
    store, publisher = Store(), Publisher()
    runner = backfill(Scanner(pages=50, per_page=2), publisher, store)
    scanner_calls = 0

    def stop_after_a_few() -> None:
        nonlocal scanner_calls
        scanner_calls += 1
        if scanner_calls == 6:
            runner._stop.set()

    runner._scanner.on_call = stop_after_a_few  # type: ignore[attr-defined]
    summary = runner.run()
    assert summary.state == "stopped"
    assert store.runs[TABLE].state is RunState.STOPPED
    saved = sum(p.items for p in store.segments(TABLE, 2).values())
    assert saved == summary.items_published == len(publisher.events)


# -- the claim -------------------------------------------------------------------------------


def test_a_live_holder_keeps_the_claim() -> None:
    store = Store()
    store.runs[TABLE] = run_record(RunState.RUNNING)

    def alive(s: Store) -> None:  # its heartbeat moves the counter while we watch
        s.runs[TABLE] = replace(s.runs[TABLE], counter=s.runs[TABLE].counter + 1)

    store.on_read = alive
    with pytest.raises(BackfillRunning, match=r"already running .*old-run on host-1"):
        claim.acquire(store, TABLE, lambda prev: run_record(RunState.RUNNING), ttl_s=0.2, say=print)


def test_a_silent_holder_is_presumed_dead_after_the_ttl_and_loses_its_writes() -> None:
    store = Store()
    dead = run_record(RunState.RUNNING)
    store.runs[TABLE] = dead
    mine, replaced = claim.acquire(
        store, TABLE, lambda prev: replace(dead, run_id="new"), ttl_s=0.2, say=lambda line: None
    )
    assert replaced == dead
    assert mine.counter == dead.counter + 1
    assert store.runs[TABLE].run_id == "new"
    with pytest.raises(ClaimLost):
        claim.heartbeat(store, dead, 3.0)
