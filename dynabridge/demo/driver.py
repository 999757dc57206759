"""Open-loop writes at a steady rate: change ``i`` is due at ``start + i / rate``, whatever the
latency of earlier writes (a slow write delays nothing but itself, up to the thread count).

Each write's return time is handed to the tracker; per-item order holds because the workload
never hands out a key with a write in flight.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from bridge.contract import Item
from dynabridge.demo.visibility import VisibilityTracker
from dynabridge.demo.workload import Change, Workload

DocId = Callable[[Item], str]


class ChangeWriter(Protocol):
    def write(self, change: Change) -> None:
        """Apply the change to the table; raises DemoError when it cannot."""


@dataclass(frozen=True, slots=True)
class DriveResult:
    written: int
    elapsed_s: float
    max_behind_s: float
    """How late the latest write started against its schedule (the table could not keep up)."""

    @property
    def rate(self) -> float:
        return self.written / self.elapsed_s if self.elapsed_s > 0 else 0.0


class Driver:
    def __init__(
        self,
        workload: Workload,
        writer: ChangeWriter,
        tracker: VisibilityTracker,
        doc_id: DocId,
        *,
        total: int,
        rate: float,
        threads: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._workload = workload
        self._writer = writer
        self._tracker = tracker
        self._doc_id = doc_id
        self._total = total
        self._interval_s = 1.0 / rate if rate > 0 else 0.0
        self._threads = threads
        self._clock = clock
        self._lock = threading.Lock()
        self._next = 0
        self._generated = 0
        self._written = 0
        self._behind_s = 0.0
        self._error: BaseException | None = None

    @property
    def written(self) -> int:
        return self._written

    def run(self, stop: threading.Event) -> DriveResult:
        """Write ``total`` changes (or until ``stop``); re-raises the first write error."""
        start = self._clock()
        threads = [
            threading.Thread(target=self._loop, args=(start, stop), daemon=True, name=f"writer-{n}")
            for n in range(self._threads)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
        if self._error is not None:
            raise self._error
        return DriveResult(self._written, self._clock() - start, self._behind_s)

    def _loop(self, start: float, stop: threading.Event) -> None:
        while not stop.is_set():
            with self._lock:
                if self._next >= self._total or self._error is not None:
                    return
                self._next += 1
                seq = self._next
            due = start + (seq - 1) * self._interval_s
            wait_s = due - self._clock()
            if wait_s > 0 and stop.wait(wait_s):
                return
            try:
                self._write(behind_s=max(0.0, -wait_s))
            except Exception as error:  # noqa: BLE001 - handed to run(), which re-raises it
                with self._lock:
                    self._error = self._error or error
                stop.set()
                return

    def _write(self, behind_s: float) -> None:
        # The rev is counted in generation order, not schedule order: with several threads the
        # two differ, and one item's revs must grow in the order its writes are made.
        with self._lock:
            self._generated += 1
            change = self._workload.next(self._generated, self._settled)
        self._writer.write(change)
        written_at = self._clock()
        self._tracker.expect(self._doc_id(change.keys), change.seq, change.deletes, written_at)
        with self._lock:
            self._workload.finished(change)
            self._written += 1
            self._behind_s = behind_s

    def _settled(self, keys: Item) -> bool:
        return self._tracker.settled(self._doc_id(keys))
