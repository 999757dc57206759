"""Which written changes are visible in the index yet, and how long each took: the latency record.

A change is visible when a real-time GET of its document shows ``rev`` at or past the change's
(a newer change to the same item supersedes it: the indexer may coalesce the two), or, for a
delete, shows no document. Latency = the observation's time - the time the write returned.
Thread-safe: writer threads call :meth:`expect`, the poller thread :meth:`observe`.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Expected:
    rev: int
    deletes: bool
    written_at: float


class VisibilityTracker:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[str, deque[Expected]] = {}
        self._latencies: list[float] = []
        self._expected = 0

    def expect(self, doc_id: str, rev: int, deletes: bool, written_at: float) -> None:
        with self._lock:
            self._pending.setdefault(doc_id, deque()).append(Expected(rev, deletes, written_at))
            self._expected += 1

    def pending_ids(self) -> list[str]:
        with self._lock:
            return list(self._pending)

    def settled(self, doc_id: str) -> bool:
        with self._lock:
            return doc_id not in self._pending

    def observe(self, doc_id: str, rev: int | None, at: float) -> None:
        """``rev`` of the document now in the index, None when there is none."""
        with self._lock:
            queue = self._pending.get(doc_id)
            if not queue:
                return
            while queue and _shown(queue[0], rev):
                self._latencies.append(at - queue.popleft().written_at)
            if not queue:
                del self._pending[doc_id]

    @property
    def expected(self) -> int:
        with self._lock:
            return self._expected

    @property
    def visible(self) -> int:
        with self._lock:
            return len(self._latencies)

    def latencies_s(self, since: int = 0) -> list[float]:
        """Latencies in the order changes became visible, from the ``since``-th on."""
        with self._lock:
            return self._latencies[since:]


def _shown(expected: Expected, rev: int | None) -> bool:
    if rev is None:
        return expected.deletes
    if expected.deletes:
        return rev > expected.rev  # written again after the delete
    return rev >= expected.rev


@dataclass(frozen=True, slots=True)
class LatencySummary:
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float

    @classmethod
    def of(cls, latencies_s: Sequence[float]) -> LatencySummary:
        if not latencies_s:
            nan = math.nan
            return cls(0, nan, nan, nan, nan, nan)
        ordered = sorted(latencies_s)
        return cls(
            len(ordered),
            percentile(ordered, 50) * 1000,
            percentile(ordered, 95) * 1000,
            percentile(ordered, 99) * 1000,
            ordered[-1] * 1000,
            sum(ordered) / len(ordered) * 1000,
        )

    def text(self) -> str:
        return (
            f"p50 {self.p50_ms:.0f} ms, p95 {self.p95_ms:.0f} ms, p99 {self.p99_ms:.0f} ms, "
            f"max {self.max_ms:.0f} ms (mean {self.mean_ms:.0f} ms, {self.count} changes)"
        )


def percentile(ordered: Sequence[float], p: float) -> float:
    """Nearest rank on sorted data: the smallest value with at least p% of values at or below."""
    if not ordered:
        raise ValueError("no values")
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]
