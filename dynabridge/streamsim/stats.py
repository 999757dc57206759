"""What the simulator saw: calls per operation, errors sent, and per shard the concurrent
readers and every GetRecords (when it started and ended, how many records it returned), for
the benchmarks' poll intervals and the gaps between a productive poll and the next one."""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

POLLS_KEPT = 200_000
"""GetRecords remembered per shard (the oldest are dropped beyond)."""


@dataclass(slots=True)
class ShardStats:
    max_readers: int = 0
    throttled: int = 0
    polls: deque[tuple[float, float, int]] = field(default_factory=lambda: deque(maxlen=POLLS_KEPT))


class Stats:
    """Thread-safe counters; ``as_json`` is the control API's ``/_sim/stats``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.shards: dict[tuple[str, str], ShardStats] = {}

    def call(self, operation: str) -> None:
        with self._lock:
            self.calls[operation] += 1

    def error(self, operation: str, code: str) -> None:
        with self._lock:
            self.errors[f"{operation}:{code}"] += 1

    def readers(self, table: str, shard_id: str, count: int) -> None:
        with self._lock:
            stats = self._shard(table, shard_id)
            stats.max_readers = max(stats.max_readers, count)

    def throttled(self, table: str, shard_id: str) -> None:
        with self._lock:
            self._shard(table, shard_id).throttled += 1

    def poll(self, table: str, shard_id: str, started_s: float, ended_s: float, n: int) -> None:
        with self._lock:
            self._shard(table, shard_id).polls.append((started_s, ended_s, n))

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.errors.clear()
            self.shards.clear()

    def as_json(self, table: str | None = None, *, polls: bool = True) -> dict[str, Any]:
        with self._lock:
            shards: dict[str, dict[str, Any]] = {}
            for (owner, shard_id), stats in self.shards.items():
                if table is not None and owner != table:
                    continue
                entry: dict[str, Any] = {
                    "table": owner,
                    "max_readers": stats.max_readers,
                    "throttled": stats.throttled,
                    "get_records": len(stats.polls),
                }
                if polls:
                    entry["polls"] = [list(poll) for poll in stats.polls]
                shards[shard_id] = entry
            return {"calls": dict(self.calls), "errors": dict(self.errors), "shards": shards}

    def _shard(self, table: str, shard_id: str) -> ShardStats:
        key = (table, shard_id)
        found = self.shards.get(key)
        if found is None:
            found = self.shards[key] = ShardStats()
        return found
