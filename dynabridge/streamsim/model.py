"""The shard tree of one simulated stream: records dealt into shards by key hash, sequence
numbers, rotations and splits, trimming, listings and read positions. Pure: every call takes
``now`` (wall-clock seconds) and randomness comes from the stream's own ``random.Random``.

Invariants this module owns:

- sequence numbers are minted from one counter per stream, so they increase within a shard, a
  child's start is above its parent's end, and records of one item (one hash) stay in order
  along the lineage;
- the open shards tile the hash space (``hashing``), so every change has exactly one shard;
- a read position is "after sequence number P"; a position below what was trimmed from its
  shard is an error (TrimmedDataAccessException), never a silent skip;
- a closed shard whose records are all trimmed leaves the stream (ResourceNotFoundException).

::

    shard A [0, 2^128)  ──rotate──▶  A' [0, 2^128)  ──split──▶  B [0, 2^127)
      (closed: Ending = last seq)       (closed)          └──▶  C [2^127, 2^128)
"""

from __future__ import annotations

import bisect
import enum
import random
from collections import deque
from collections.abc import Iterator

from dynabridge.streamsim.config import StreamConfig
from dynabridge.streamsim.hashing import HashRange, even_ranges
from dynabridge.streamsim.shard import (
    Encoder,
    ModelError,
    Shard,
    Trimmed,
)


class StreamStatus(enum.StrEnum):
    ENABLED = "ENABLED"
    DISABLED = "DISABLED"


class IteratorKind(enum.StrEnum):
    TRIM_HORIZON = "TRIM_HORIZON"
    LATEST = "LATEST"
    AT_SEQUENCE_NUMBER = "AT_SEQUENCE_NUMBER"
    AFTER_SEQUENCE_NUMBER = "AFTER_SEQUENCE_NUMBER"
    AT_TIMESTAMP = "AT_TIMESTAMP"


class ShardGone(ModelError):  # noqa: N818 - AWS's word
    pass


class InvalidPosition(ModelError):  # noqa: N818 - a validation failure
    pass


class StreamDisabled(ModelError):  # noqa: N818 - a state
    pass


class Stream:
    """One stream of one table: its shards (open, closed, gone) and its sequence counter."""

    def __init__(
        self,
        *,
        table: str,
        arn: str,
        label: str,
        created_s: float,
        view_type: str,
        config: StreamConfig,
        rng: random.Random,
    ) -> None:
        self.table = table
        self.arn = arn
        self.label = label
        self.created_s = created_s
        self.view_type = view_type
        self.config = config
        self.status = StreamStatus.ENABLED
        self._rng = rng
        digits = config.sequence_digits
        # Seconds-based start: a stream created later starts higher, as on AWS.
        self._next_seq: int = 10 ** (digits - 1) + int(created_s * 1000) * 10 ** (digits - 15)
        self._last_ms = 0
        self.shards: dict[str, Shard] = {}
        """Every shard still in the stream, open or closed, by id (ids sort by creation)."""
        self.gone: dict[str, Shard] = {}
        """Closed shards trimmed away: no longer listed or readable; the oracle keeps them."""
        self._open: list[Shard] = []  # sorted by hash range start
        self._starts: list[int] = []
        # Every record in arrival order, as parallel columns (no object per record).
        self._arrival_times: deque[float] = deque()
        self._arrival_shards: deque[Shard] = deque()
        self._arrival_seqs: deque[int] = deque()
        self._closed: deque[Shard] = deque()
        self._live = 0
        for hash_range in even_ranges(config.shards):
            self._add_open(self._new_shard(None, hash_range, created_s))

    # -- writing --------------------------------------------------------------------------

    def append(self, now: float, key_hash: int, encode: Encoder) -> Shard:
        """Deal one change into the open shard covering ``key_hash``."""
        if self.status is StreamStatus.DISABLED:
            raise StreamDisabled(self.arn)
        shard = self._open[bisect.bisect_right(self._starts, key_hash) - 1]
        seq = self._mint()
        shard.add(seq, encode(str(seq)), now, self.config.oracle)
        self._arrival_times.append(now)
        self._arrival_shards.append(shard)
        self._arrival_seqs.append(seq)
        self._live += 1
        if self._live > self.config.max_records:
            self._trim_oldest(forget=True)
        every = self.config.rotate_every_records
        if every and shard.appended >= every:
            self._auto_rotate(shard, now)
        return shard

    def rotate(self, now: float, shard_id: str) -> list[Shard]:
        """Close an open shard; a child with the same hash range opens."""
        shard = self._open_shard(shard_id)
        return self._replace(shard, [shard.hash_range], now)

    def split(self, now: float, shard_id: str) -> list[Shard]:
        """Close an open shard; two children open, each with half of its range."""
        shard = self._open_shard(shard_id)
        if len(self._open) >= self.config.max_open_shards:
            raise InvalidPosition(
                f"cannot split {shard_id}: {len(self._open)} shards open, "
                f"max_open_shards is {self.config.max_open_shards}"
            )
        try:
            halves = list(shard.hash_range.halves())
        except ValueError as exc:
            raise InvalidPosition(str(exc)) from exc
        return self._replace(shard, halves, now)

    def reconfigure(self, now: float, config: StreamConfig) -> None:
        if config.sequence_digits != self.config.sequence_digits:
            raise InvalidPosition("sequence_digits is fixed when the stream is created")
        if config.shards < len(self._open) and config.shards != self.config.shards:
            raise InvalidPosition(
                f"{len(self._open)} shards are open; DynamoDB never merges shards, so "
                f"shards cannot go down to {config.shards}"
            )
        timing = (config.rotate_every_s, config.rotate_jitter)
        retimed = timing != (self.config.rotate_every_s, self.config.rotate_jitter)
        self.config = config
        if retimed:
            for shard in self._open:
                shard.rotate_at = self._rotation_deadline(shard.created_s)
        while len(self._open) < config.shards:
            widest = max(self._open, key=lambda shard: shard.hash_range.width)
            self.split(now, widest.shard_id)

    def disable(self, now: float) -> None:
        """The table's stream turned off: every open shard closes, nothing more is written."""
        for shard in list(self._open):
            shard.close(now)
            self._closed.append(shard)
        self._open.clear()
        self._starts.clear()
        self.status = StreamStatus.DISABLED

    # -- time ----------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Apply what is due at ``now``: timed rotations, then retention trimming."""
        for shard in [s for s in self._open if s.rotate_at is not None and now >= s.rotate_at]:
            if shard.is_open:
                self._auto_rotate(shard, now)
        horizon = now - self.config.retention_s
        while self._arrival_times and self._arrival_times[0] <= horizon:
            self._trim_oldest(forget=False)
        # Closed in time order: a shard closed before the horizon holds only trimmed records.
        while self._closed and (self._closed[0].closed_s or 0.0) <= horizon:
            self._forget(self._closed.popleft())

    def trim(self, now: float, *, older_than_s: float = 0.0, shard_id: str | None = None) -> int:
        """Trim records appended more than ``older_than_s`` ago (of one shard, or all);
        returns how many. A closed shard left without records leaves the stream."""
        horizon = now - older_than_s
        shards = [self.shard(shard_id)] if shard_id is not None else list(self.shards.values())
        trimmed = 0
        for shard in shards:
            before = shard.live_records
            cut = shard.first_at_or_after(horizon) if older_than_s > 0 else shard.last_seq
            shard.trim_through(cut)
            trimmed += before - shard.live_records
            if not shard.is_open and shard.fully_trimmed:
                self._forget(shard)
        self._live -= trimmed
        return trimmed

    # -- reading -------------------------------------------------------------------------

    def shard(self, shard_id: str) -> Shard:
        found = self.shards.get(shard_id)
        if found is None:
            raise ShardGone(shard_id)
        return found

    @property
    def open_shards(self) -> list[Shard]:
        return list(self._open)

    @property
    def last_sequence_number(self) -> int:
        return self._next_seq - 1

    def position(
        self, shard: Shard, kind: IteratorKind, sequence_number: int | None, when_s: float | None
    ) -> int:
        """The read position ("after P") an iterator of ``kind`` starts at."""
        if kind is IteratorKind.TRIM_HORIZON:
            return shard.trimmed_through
        if kind is IteratorKind.LATEST:
            return shard.last_seq
        if kind is IteratorKind.AT_TIMESTAMP:
            assert when_s is not None
            return shard.first_at_or_after(when_s)
        assert sequence_number is not None
        highest = shard.ending if shard.ending is not None else self.last_sequence_number
        if not shard.starting <= sequence_number <= highest:
            raise InvalidPosition(
                f"Invalid SequenceNumber {sequence_number} for shard {shard.shard_id}: its "
                f"range is [{shard.starting}, {highest}]"
            )
        after = sequence_number - 1 if kind is IteratorKind.AT_SEQUENCE_NUMBER else sequence_number
        if after < shard.trimmed_through:
            raise Trimmed(shard.shard_id)
        # Numbers are minted per stream, so a sibling's number can fall inside this shard's
        # range: only this shard's own numbers (its records, its start and end) are positions.
        own = sequence_number in (shard.starting, shard.ending) or shard.holds(sequence_number)
        if sequence_number > shard.trimmed_through and not own:
            raise InvalidPosition(
                f"Invalid SequenceNumber {sequence_number}: it is not a record of shard "
                f"{shard.shard_id}"
            )
        return after

    def listing(
        self, now: float, *, parent_id: str | None = None, lag_applies: bool = True
    ) -> list[Shard]:
        """The shards DescribeStream shows at ``now``, in id order: recent children may lag."""
        lag = self.config.listing_lag_s if lag_applies else 0.0
        return [
            shard
            for shard_id, shard in sorted(self.shards.items())
            if (parent_id is None or shard.parent_id == parent_id)
            and not (shard.parent_id is not None and lag and now < shard.created_s + lag)
        ]

    def omitted(self, page: list[Shard]) -> list[Shard]:
        """``page``, without one shard at the configured rate (an inconsistent listing)."""
        if page and self._rng.random() < self.config.omit_shard_rate:
            victim = self._rng.randrange(len(page))
            return page[:victim] + page[victim + 1 :]
        return page

    def all_shards(self) -> Iterator[Shard]:
        """Every shard ever, gone ones included (for the oracle), in id order."""
        merged = {**self.gone, **self.shards}
        return (merged[shard_id] for shard_id in sorted(merged))

    # -- internals -----------------------------------------------------------------------

    def _mint(self) -> int:
        seq = self._next_seq
        self._next_seq += 1
        return seq

    def _new_shard(self, parent: Shard | None, hash_range: HashRange, now: float) -> Shard:
        # Ids embed the creation time in ms, strictly increasing, so id order is creation
        # order (a child always sorts after its parent), as AWS's ids do.
        self._last_ms = max(int(now * 1000), self._last_ms + 1)
        shard_id = f"shardId-{self._last_ms:020d}-{self._rng.getrandbits(32):08x}"
        shard = Shard(
            shard_id,
            parent.shard_id if parent else None,
            hash_range,
            self._mint(),
            now,
            self._rotation_deadline(now),
        )
        self.shards[shard_id] = shard
        return shard

    def _rotation_deadline(self, created_s: float) -> float | None:
        every = self.config.rotate_every_s
        if not every:
            return None
        jitter = self.config.rotate_jitter
        return created_s + every * self._rng.uniform(1 - jitter, 1 + jitter)

    def _add_open(self, shard: Shard) -> None:
        index = bisect.bisect_left(self._starts, shard.hash_range.start)
        self._starts.insert(index, shard.hash_range.start)
        self._open.insert(index, shard)

    def _open_shard(self, shard_id: str) -> Shard:
        shard = self.shard(shard_id)
        if not shard.is_open:
            raise InvalidPosition(f"shard {shard_id} is already closed")
        return shard

    def _replace(self, shard: Shard, ranges: list[HashRange], now: float) -> list[Shard]:
        shard.close(now)
        self._closed.append(shard)
        index = self._open.index(shard)
        del self._open[index]
        del self._starts[index]
        children = [self._new_shard(shard, hash_range, now) for hash_range in ranges]
        for child in children:
            self._add_open(child)
        return children

    def _auto_rotate(self, shard: Shard, now: float) -> None:
        config = self.config
        if (
            config.split_rate
            and len(self._open) < config.max_open_shards
            and shard.hash_range.width > 1
            and self._rng.random() < config.split_rate
        ):
            self._replace(shard, list(shard.hash_range.halves()), now)
        else:
            self._replace(shard, [shard.hash_range], now)

    def _trim_oldest(self, *, forget: bool) -> None:
        """Trim the stream's oldest record; ``forget``: a closed shard left empty by the
        memory cap leaves at once (by age, it leaves ``retention_s`` after closing)."""
        self._arrival_times.popleft()
        shard, seq = self._arrival_shards.popleft(), self._arrival_seqs.popleft()
        if seq > shard.trimmed_through:
            before = shard.live_records
            shard.trim_through(seq)
            self._live -= before - shard.live_records
        if forget and not shard.is_open and shard.fully_trimmed:
            self._forget(shard)

    def _forget(self, shard: Shard) -> None:
        if self.shards.pop(shard.shard_id, None) is not None:
            self.gone[shard.shard_id] = shard
