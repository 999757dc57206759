"""In-memory stand-ins for the backfill's collaborators (scanner, publisher, progress table)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from bridge.aws import KeyAttribute, TableDescription
from bridge.backfill.errors import ClaimLost, ScanThrottled
from bridge.backfill.plan import SegmentProgress
from bridge.backfill.progress import RunRecord, RunState
from bridge.backfill.scan import ScanPage
from bridge.contract import ChangeEvent, Item, dumps_item

TABLE = "orders"


def shape(server_now_s: float | None = 2_000_000_000.0) -> TableDescription:
    keys = (KeyAttribute("pk", "S"), KeyAttribute("sk", "N"))
    return TableDescription(
        TABLE, keys, "ACTIVE", "arn:stream", "NEW_AND_OLD_IMAGES", 60, 6000, server_now_s
    )


def item(segment: int, page: int, i: int) -> Item:
    return {"pk": {"S": f"s{segment}"}, "sk": {"N": str(page * 100 + i)}, "v": {"BS": [b"x"]}}


def page_key(segment: int, page: int) -> Item:
    return {"pk": {"S": f"s{segment}"}, "sk": {"N": str(page * 100 + 99)}}


class Scanner:
    """Segment s has ``pages`` pages of ``per_page`` items; scripted throttles per segment."""

    def __init__(self, pages: int = 3, per_page: int = 5, throttles: dict[int, int] | None = None):
        self.pages, self.per_page = pages, per_page
        self.throttles = dict(throttles or {})
        self.calls: list[tuple[int, Item | None]] = []
        self.on_call: Callable[[], None] | None = None

    def page(
        self,
        table: str,
        segment: int,
        total_segments: int,
        start_key: Item | None,
        *,
        limit: int | None,
        consistent: bool,
    ) -> ScanPage:
        self.calls.append((segment, start_key))
        if self.on_call is not None:
            self.on_call()
        if self.throttles.get(segment, 0) > 0:
            self.throttles[segment] -= 1
            raise ScanThrottled("ProvisionedThroughputExceededException")
        number = 0
        if start_key is not None:
            number = next(
                p + 1
                for p in range(self.pages)
                if dumps_item(page_key(segment, p)) == dumps_item(start_key)
            )
        items = [item(segment, number, i) for i in range(self.per_page)]
        last = None if number == self.pages - 1 else page_key(segment, number)
        return ScanPage(items, last, consumed_rcu=0.5)


class Publisher:
    """Acknowledges on poll/flush; ``fail_when(event)`` makes that event's delivery fail."""

    def __init__(self, fail_when: Callable[[ChangeEvent], bool] | None = None) -> None:
        self.events: list[ChangeEvent] = []
        self._pending: list[tuple[ChangeEvent, Callable[[str | None], None]]] = []
        self._fail_when = fail_when

    def publish(self, event: ChangeEvent, on_delivery: Callable[[str | None], None]) -> None:
        self.events.append(event)
        self._pending.append((event, on_delivery))

    def poll(self, timeout_s: float) -> None:
        pending, self._pending = self._pending, []
        for event, report in pending:
            failed = self._fail_when is not None and self._fail_when(event)
            report("MSG_TIMED_OUT: boom" if failed else None)

    def flush(self, timeout_s: float) -> int:
        self.poll(timeout_s)
        return 0


@dataclass
class Store:
    """The progress table's semantics: conditional run writes, segment writes owned by a run."""

    runs: dict[str, RunRecord] = field(default_factory=dict)
    segs: dict[tuple[str, int], tuple[SegmentProgress, str]] = field(default_factory=dict)
    saves: list[SegmentProgress] = field(default_factory=list)
    on_read: Callable[[Store], None] | None = None

    def run(self, table: str) -> RunRecord | None:
        if self.on_read is not None:
            self.on_read(self)
        return self.runs.get(table)

    def create_run(self, run: RunRecord) -> bool:
        if run.table in self.runs:
            return False
        self.runs[run.table] = run
        return True

    def replace_run(self, old: RunRecord, new: RunRecord) -> bool:
        current = self.runs.get(old.table)
        if current is None or current.counter != old.counter:
            return False
        self.runs[old.table] = new
        return True

    def segments(self, table: str, total_segments: int) -> dict[int, SegmentProgress]:
        return {s: p for (t, s), (p, _) in self.segs.items() if t == table}

    def adopt_segment(self, progress: SegmentProgress, run_id: str) -> None:
        self.segs[progress.table, progress.segment] = (progress, run_id)

    def save_segment(self, progress: SegmentProgress, run_id: str) -> None:
        _, owner = self.segs[progress.table, progress.segment]
        if owner != run_id:
            raise ClaimLost("taken over")
        self.segs[progress.table, progress.segment] = (progress, run_id)
        self.saves.append(progress)


def run_record(state: RunState, scan_start_s: int = 1000, total: int = 2) -> RunRecord:
    return RunRecord(TABLE, "old-run", "host-1", 7, state, scan_start_s, total, 60, 1.0, 2.0)


def with_segment(store: Store, progress: SegmentProgress, run_id: str = "old-run") -> None:
    store.segs[progress.table, progress.segment] = (replace(progress), run_id)
