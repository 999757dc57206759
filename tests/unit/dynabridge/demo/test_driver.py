"""The open-loop driver with an in-memory table: pacing, per-item order, error propagation."""

from __future__ import annotations

import threading
import time

import pytest

from consumers.indexer.documents import doc_id
from dynabridge.demo.driver import Driver
from dynabridge.demo.errors import DemoError
from dynabridge.demo.visibility import VisibilityTracker
from dynabridge.demo.workload import Change, ChangeKind, Workload


class MemoryTable:
    def __init__(self, fail_at: int | None = None, delay_s: float = 0.0) -> None:
        self.revs: dict[str, int] = {}
        self.writes: list[Change] = []
        self.fail_at = fail_at
        self.delay_s = delay_s
        self._lock = threading.Lock()

    def write(self, change: Change) -> None:
        time.sleep(self.delay_s)
        with self._lock:
            if self.fail_at is not None and len(self.writes) + 1 >= self.fail_at:
                raise DemoError("throttled for good")
            self.writes.append(change)
            key = doc_id(change.keys)
            if change.kind is ChangeKind.DELETE:
                self.revs.pop(key)
            else:
                assert change.seq > self.revs.get(key, -1), "an item's rev went backwards"
                self.revs[key] = change.seq


def test_several_threads_write_everything_and_each_item_in_order() -> None:
    table, tracker = MemoryTable(delay_s=0.001), VisibilityTracker()
    driver = Driver(Workload(1, "t"), table, tracker, doc_id, total=500, rate=0, threads=8)
    result = driver.run(threading.Event())
    assert result.written == 500
    assert tracker.expected == 500
    assert sorted(c.seq for c in table.writes) == list(range(1, 501))


def test_the_rate_paces_the_writes() -> None:
    table = MemoryTable()
    driver = Driver(Workload(1, "t"), table, VisibilityTracker(), doc_id,
                    total=21, rate=100.0, threads=2)  # fmt: skip
    result = driver.run(threading.Event())
    # Write i is due at i/100 s: the 21st at 0.2 s, none earlier.
    assert result.elapsed_s >= 0.2
    assert result.elapsed_s < 2.0


def test_a_write_error_stops_the_run_and_is_raised() -> None:
    driver = Driver(Workload(1, "t"), MemoryTable(fail_at=30), VisibilityTracker(), doc_id,
                    total=1000, rate=0, threads=4)  # fmt: skip
    with pytest.raises(DemoError, match="throttled"):
        driver.run(threading.Event())
    assert driver.written < 1000


def test_stop_ends_the_run_early() -> None:
    stop = threading.Event()
    driver = Driver(Workload(1, "t"), MemoryTable(), VisibilityTracker(), doc_id,
                    total=10_000, rate=50.0, threads=2)  # fmt: skip
    threading.Timer(0.2, stop.set).start()
    result = driver.run(stop)
    assert result.written < 100
