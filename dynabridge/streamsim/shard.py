"""One shard's records: a hash range, a sequence range, and the records dealt into it, each
serialized once, in sequence order; read by position ("after sequence number P").

Invariant: a read from a position below what was trimmed from the shard fails (Trimmed), it
never skips records silently.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass

from dynabridge.streamsim.hashing import HashRange

COMPACT_AFTER = 4096
"""Trimmed records are dropped from a shard's lists in bulk, once this many piled up."""


class ModelError(Exception):
    """A request the stream refuses; the service turns each kind into AWS's error."""


class Trimmed(ModelError):  # noqa: N818 - AWS's word
    pass


@dataclass(frozen=True, slots=True)
class Encoded:
    """A record serialized once, with what the oracle keeps of it."""

    body: bytes
    size_bytes: int
    event_name: str
    event_id: str
    keys: bytes
    """The record's ``Keys``, as JSON."""


Encoder = Callable[[str], Encoded]
"""Builds a record's JSON once its sequence number (decimal text) is known."""


@dataclass(frozen=True, slots=True)
class Emitted:
    """The oracle's summary of one record, kept after the record itself is trimmed."""

    sequence_number: int
    event_name: str
    event_id: str
    keys: bytes
    appended_s: float


@dataclass(frozen=True, slots=True)
class Page:
    bodies: list[bytes]
    after: int
    """The position after this page (the last sequence number returned, or unchanged)."""
    at_end: bool
    """The shard is closed and nothing is left after this page: no next iterator."""


class Shard:
    """One shard: a hash range, a sequence range, and its live records in order."""

    __slots__ = (
        "_bodies", "_first", "_oracle", "_seqs", "_sizes", "_times", "appended", "closed_s",
        "created_s", "ending", "hash_range", "last_seq", "parent_id", "rotate_at", "shard_id",
        "starting", "trimmed_through",
    )  # fmt: skip

    def __init__(
        self,
        shard_id: str,
        parent_id: str | None,
        hash_range: HashRange,
        starting: int,
        created_s: float,
        rotate_at: float | None,
    ) -> None:
        self.shard_id = shard_id
        self.parent_id = parent_id
        self.hash_range = hash_range
        self.starting = starting
        self.ending: int | None = None
        self.created_s = created_s
        self.closed_s: float | None = None
        self.rotate_at = rotate_at
        self.appended = 0
        self.last_seq = starting - 1
        self.trimmed_through = starting - 1
        self._seqs: list[int] = []
        self._bodies: list[bytes] = []
        self._sizes: list[int] = []
        self._times: list[float] = []
        self._first = 0
        # The oracle as parallel columns: no object per record for the garbage collector.
        self._oracle: tuple[list[int], list[str], list[str], list[bytes], list[float]] = (
            [],
            [],
            [],
            [],
            [],
        )

    @property
    def is_open(self) -> bool:
        return self.ending is None

    @property
    def live_records(self) -> int:
        return len(self._seqs) - self._first

    def add(self, seq: int, encoded: Encoded, now: float, oracle: bool) -> None:
        self._seqs.append(seq)
        self._bodies.append(encoded.body)
        self._sizes.append(encoded.size_bytes)
        self._times.append(now)
        self.last_seq = seq
        self.appended += 1
        if oracle:
            seqs, names, ids, keys, times = self._oracle
            seqs.append(seq)
            names.append(encoded.event_name)
            ids.append(encoded.event_id)
            keys.append(encoded.keys)
            times.append(now)

    @property
    def emitted(self) -> list[Emitted]:
        """Every record dealt into the shard, trimmed ones included (when ``oracle`` is on)."""
        return [Emitted(*entry) for entry in zip(*self._oracle, strict=True)]

    def close(self, now: float) -> None:
        self.ending = self.last_seq if self.appended else self.starting
        self.closed_s = now

    def trim_through(self, seq: int) -> None:
        """Drop every record with a sequence number up to ``seq``."""
        if seq <= self.trimmed_through:
            return
        cut = bisect.bisect_right(self._seqs, seq, lo=self._first)
        self._first = cut
        self.trimmed_through = max(seq, self.trimmed_through)
        if self._first >= COMPACT_AFTER and self._first * 2 >= len(self._seqs):
            for column in (self._seqs, self._bodies, self._sizes, self._times):
                del column[: self._first]
            self._first = 0

    def holds(self, seq: int) -> bool:
        """A live record of this shard has sequence number ``seq``."""
        index = bisect.bisect_left(self._seqs, seq, lo=self._first)
        return index < len(self._seqs) and self._seqs[index] == seq

    @property
    def fully_trimmed(self) -> bool:
        return self.trimmed_through >= self.last_seq

    def oldest_live_time(self) -> float | None:
        return self._times[self._first] if self.live_records else None

    def first_at_or_after(self, when_s: float) -> int:
        """The position before the first live record appended at or after ``when_s``."""
        index = bisect.bisect_left(self._times, when_s, lo=self._first)
        return self._seqs[index] - 1 if index < len(self._seqs) else self.last_seq

    def page(self, after: int, limit: int, max_bytes: int) -> Page:
        if after < self.trimmed_through:
            raise Trimmed(self.shard_id)
        start = bisect.bisect_right(self._seqs, after, lo=self._first)
        stop = min(len(self._seqs), start + limit)
        total = 0
        end = start
        sizes = self._sizes
        while end < stop:
            total += sizes[end]
            if total > max_bytes and end > start:
                break
            end += 1
        new_after = self._seqs[end - 1] if end > start else after
        at_end = not self.is_open and end == len(self._seqs)
        return Page(self._bodies[start:end], new_after, at_end)
