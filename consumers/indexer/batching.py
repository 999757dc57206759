"""Batches of changes for one bulk request: closed by count, bytes or linger time.

Invariant: a batch holds at most one change per (partition, index, doc_id), the newest by
(version, offset); every offset it absorbed is carried by the change that superseded it
(``Entry.covers``), so all of a batch's offsets settle when its bulk items settle and a
dropped duplicate can never hold a commit back. The loop sends one batch at a time, so two
changes to one document are never in flight together and never reordered.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from consumers.indexer.records import Partition

P = TypeVar("P")


@dataclass(frozen=True, slots=True)
class Entry(Generic[P]):
    """One change waiting for the search engine, with the offsets its outcome settles."""

    partition: Partition
    offset: int
    index: str
    doc_id: str
    version: int
    size_bytes: int
    payload: P
    covers: tuple[int, ...] = ()
    """Offsets (same partition) of older changes to this document that this one superseded."""
    attempts: int = 0

    @property
    def offsets(self) -> tuple[int, ...]:
        return (*self.covers, self.offset)

    def newer_than(self, other: Entry[P]) -> bool:
        return (self.version, self.offset) > (other.version, other.offset)


@dataclass(frozen=True, slots=True)
class Batch(Generic[P]):
    entries: tuple[Entry[P], ...]
    size_bytes: int
    coalesced: int
    """Changes dropped because a newer change to the same document was in the batch."""

    def without(self, partitions: Collection[Partition]) -> Batch[P]:
        """The batch minus the changes of ``partitions`` (revoked from this member)."""
        kept = tuple(e for e in self.entries if e.partition not in partitions)
        return Batch(kept, sum(e.size_bytes for e in kept), self.coalesced)


@dataclass(frozen=True, slots=True)
class Limits:
    max_docs: int
    max_bytes: int
    linger_s: float


class Batcher(Generic[P]):
    """The open batch. ``add`` hands back the previous batch when the new change would not fit."""

    def __init__(self, limits: Limits) -> None:
        self._limits = limits
        self._entries: dict[tuple[Partition, str, str], Entry[P]] = {}
        self._size_bytes = 0
        self._coalesced = 0
        self._opened_at: float | None = None

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, entry: Entry[P], now: float) -> Batch[P] | None:
        key = (entry.partition, entry.index, entry.doc_id)
        existing = self._entries.get(key)
        if existing is not None:
            self._coalesce(key, existing, entry)
            return None
        closed = None
        if self._entries and (
            len(self._entries) >= self._limits.max_docs
            or self._size_bytes + entry.size_bytes > self._limits.max_bytes
        ):
            closed = self.take()
        if self._opened_at is None:
            self._opened_at = now
        self._entries[key] = entry
        self._size_bytes += entry.size_bytes
        return closed

    def _coalesce(self, key: tuple[Partition, str, str], old: Entry[P], new: Entry[P]) -> None:
        self._coalesced += 1
        if new.newer_than(old):
            winner = replace(new, covers=(*old.covers, old.offset, *new.covers))
        else:
            # An older change arriving later (a replay or a backfill overlap) loses, but its
            # offset still settles with the winner.
            winner = replace(old, covers=tuple(sorted((*old.covers, new.offset, *new.covers))))
        self._size_bytes += winner.size_bytes - old.size_bytes
        self._entries[key] = winner

    def full(self) -> bool:
        return (
            len(self._entries) >= self._limits.max_docs
            or self._size_bytes >= self._limits.max_bytes
        )

    def due(self, now: float) -> bool:
        """The batch is full, or its first change has waited ``linger_s``."""
        if self._opened_at is None:
            return False
        return self.full() or now >= self._opened_at + self._limits.linger_s

    def wait_s(self, now: float) -> float | None:
        """Seconds until the open batch is due by linger; None when nothing is open."""
        if self._opened_at is None:
            return None
        return 0.0 if self.full() else max(0.0, self._opened_at + self._limits.linger_s - now)

    def take(self) -> Batch[P] | None:
        if not self._entries:
            return None
        batch = Batch(tuple(self._entries.values()), self._size_bytes, self._coalesced)
        self._entries = {}
        self._size_bytes = 0
        self._coalesced = 0
        self._opened_at = None
        return batch

    def drop(self, partitions: Collection[Partition]) -> None:
        """Forget the open changes of ``partitions`` (revoked: the next owner reads them again)."""
        self._entries = {k: e for k, e in self._entries.items() if e.partition not in partitions}
        self._size_bytes = sum(e.size_bytes for e in self._entries.values())
        if not self._entries:
            self._opened_at = None
