"""This member's lag per partition, in records and in seconds, and its partitions' rates.

Lag in records is the partition's end offset minus the committable position. Lag in seconds is
the age of the oldest record not yet settled, from the records' Kafka timestamps (the bridge
stamps each with its change's ApproximateCreationDateTime): exact while that record has been
received; before it arrives, the age of the newest settled record, which is at least as old
(an upper bound). Rates are the growth of the end offset (arriving) and of the position
(consumed) between samples, smoothed over :data:`WINDOW_S`.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from consumers.indexer.records import Partition

WINDOW_S = 30.0
"""Time constant of the rates' exponential smoothing."""


@dataclass(frozen=True, slots=True)
class PartitionLag:
    lag_records: int
    lag_s: float | None
    """None when no record of the partition was seen yet (nothing to date the lag by)."""
    produced_per_s: float
    consumed_per_s: float


@dataclass(slots=True)
class _Partition:
    unsettled: deque[tuple[int, int]] = field(default_factory=deque)
    """(offset, timestamp ms) of records received, oldest first; pruned below the position."""
    newest_settled_ms: int | None = None
    high: int | None = None
    position: int | None = None
    sampled_at: float | None = None
    produced_per_s: float = 0.0
    consumed_per_s: float = 0.0


def rate(previous: float, delta: int, elapsed_s: float, window_s: float = WINDOW_S) -> float:
    """``previous`` moved towards ``delta / elapsed_s`` by the time-weighted smoothing."""
    if elapsed_s <= 0:
        return previous
    weight = 1.0 - math.exp(-elapsed_s / window_s)
    return previous + weight * (max(delta, 0) / elapsed_s - previous)


class LagMeter:
    """Fed by the loop (received, settled), sampled once per commit interval."""

    def __init__(self) -> None:
        self._partitions: dict[Partition, _Partition] = {}

    def received(self, partition: Partition, offset: int, timestamp_ms: int) -> None:
        state = self._partitions.get(partition)
        if state is None:
            state = self._partitions[partition] = _Partition()
        state.unsettled.append((offset, timestamp_ms))

    def settled(self, partition: Partition, timestamp_ms: int) -> None:
        state = self._partitions.get(partition)
        if state is not None and (
            state.newest_settled_ms is None or timestamp_ms > state.newest_settled_ms
        ):
            state.newest_settled_ms = timestamp_ms

    def sample(
        self,
        positions: Mapping[Partition, int | None],
        highs: Mapping[Partition, int | None],
        now: float,
        now_ms: int,
    ) -> dict[Partition, PartitionLag]:
        """Each partition's lag now (``now``: monotonic seconds; ``now_ms``: wall clock)."""
        lags: dict[Partition, PartitionLag] = {}
        for partition, position in positions.items():
            state = self._partitions.setdefault(partition, _Partition())
            high = highs.get(partition)
            if position is None or high is None:
                continue
            while state.unsettled and state.unsettled[0][0] < position:
                state.unsettled.popleft()
            if state.sampled_at is not None:
                elapsed_s = now - state.sampled_at
                if state.high is not None:
                    state.produced_per_s = rate(state.produced_per_s, high - state.high, elapsed_s)
                if state.position is not None:
                    state.consumed_per_s = rate(
                        state.consumed_per_s, position - state.position, elapsed_s
                    )
            state.high, state.position, state.sampled_at = high, position, now
            lag = max(0, high - position)
            lags[partition] = PartitionLag(
                lag, _lag_s(state, lag, now_ms), state.produced_per_s, state.consumed_per_s
            )
        return lags

    def forget(self, partitions: Iterable[Partition]) -> None:
        for partition in partitions:
            self._partitions.pop(partition, None)


def _lag_s(state: _Partition, lag: int, now_ms: int) -> float | None:
    if lag == 0:
        return 0.0
    dated = state.unsettled[0][1] if state.unsettled else state.newest_settled_ms
    return None if dated is None else max(0.0, (now_ms - dated) / 1000)
