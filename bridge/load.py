"""How loaded one shard is, as its owner measures it and writes it into the shard's lease row.

Invariant: a shard turns busy as soon as its smoothed read rate reaches the threshold, and idle
only once it falls below half of it (hysteresis), so a shard whose rate wavers around the
threshold does not flip, and the lease taker and the desired worker count, which read the flag
from the rows, do not move with every wobble. ``unread_since_ms`` is the creation time of the
last record read while more may follow: the oldest unread record is at least that recent, so
``now - unread_since_ms`` never under-states how far behind the shard is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

WINDOW_S = 60.0
"""Time constant of the read rate's exponential smoothing."""


@dataclass(frozen=True, slots=True)
class ShardLoad:
    """What a lease row says about its shard's load (written by the owner with every write)."""

    read_per_s: float = 0.0
    """Records read per second, smoothed over about :data:`WINDOW_S`."""
    unread_since_ms: int | None = None
    """ApproximateCreationDateTime (epoch ms) bounding the oldest unread record; None when the
    owner's last read found nothing waiting."""
    busy: bool = False

    def unread_age_s(self, now_s: float) -> float | None:
        """Age of the oldest unread record (an upper bound); None when nothing is waiting."""
        if self.unread_since_ms is None:
            return None
        return max(0.0, now_s - self.unread_since_ms / 1000)


def smoothed(
    load: ShardLoad,
    records: int,
    elapsed_s: float,
    *,
    busy_per_s: float,
    window_s: float = WINDOW_S,
) -> ShardLoad:
    """``load`` after ``records`` were read in the last ``elapsed_s``: new rate and busy flag."""
    if elapsed_s <= 0:
        return load
    weight = 1.0 - math.exp(-elapsed_s / window_s)
    rate = load.read_per_s + weight * (records / elapsed_s - load.read_per_s)
    busy = rate >= busy_per_s if not load.busy else rate >= busy_per_s / 2
    return replace(load, read_per_s=rate, busy=busy)


def after_read(load: ShardLoad, last_creation_ms: int | None, caught_up: bool) -> ShardLoad:
    """``load`` after one GetRecords page: where the oldest unread record may start."""
    if caught_up:
        return replace(load, unread_since_ms=None)
    if last_creation_ms is None:
        return load  # throttled or an iterator refresh: nothing learnt
    return replace(load, unread_since_ms=last_creation_ms)


class LoadMeter:
    """One held shard's load: the loop counts pages as it reads them (``observe``); every write
    of the lease folds them in (``snapshot``). It is seeded from the lease row at its first
    snapshot, so counting a page never needs the row (nor the coordinator's lock)."""

    def __init__(self, *, busy_per_s: float) -> None:
        self._busy_per_s = busy_per_s
        self._load: ShardLoad | None = None
        self._since = 0.0
        self._records = 0
        self._last_page: tuple[int | None, bool] | None = None

    def observe(self, records: int, last_creation_ms: int | None, caught_up: bool) -> None:
        self._records += records
        if caught_up or last_creation_ms is not None:
            self._last_page = (last_creation_ms, caught_up)

    def snapshot(self, now: float, seed: ShardLoad, since: float) -> ShardLoad:
        """The load to write now: ``seed`` (the row's) measured ``since`` if nothing was folded
        yet; the records counted so far folded into the rate."""
        if self._load is None:
            self._load, self._since = seed, since
        load = self._load
        if self._last_page is not None:
            load = after_read(load, *self._last_page)
            self._last_page = None
        self._load = smoothed(load, self._records, now - self._since, busy_per_s=self._busy_per_s)
        self._records = 0
        self._since = now
        return self._load


IDLE = ShardLoad()
"""A shard nobody has measured yet: what rows written before these attributes existed read as."""
