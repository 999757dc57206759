"""Batching: limits, per-document coalescing, and every absorbed offset carried along."""

from __future__ import annotations

from consumers.indexer.batching import Batcher, Entry, Limits
from consumers.indexer.records import Partition

P0 = Partition("ddb.orders", 0)
P1 = Partition("ddb.orders", 1)


def _entry(
    offset: int, doc: str, version: int, *, size: int = 10, partition: Partition = P0
) -> Entry[str]:
    return Entry(partition, offset, "orders", doc, version, size, payload=f"{doc}@{offset}")


def _batcher(docs: int = 100, size: int = 10_000, linger_s: float = 0.05) -> Batcher[str]:
    return Batcher(Limits(max_docs=docs, max_bytes=size, linger_s=linger_s))


def test_count_limit_closes_the_batch() -> None:
    batcher = _batcher(docs=2)
    assert batcher.add(_entry(0, "a", 1), now=0.0) is None
    assert batcher.add(_entry(1, "b", 1), now=0.0) is None
    assert batcher.full()
    closed = batcher.add(_entry(2, "c", 1), now=0.0)
    assert closed is not None
    assert [e.offset for e in closed.entries] == [0, 1]
    assert len(batcher) == 1


def test_byte_limit_closes_before_overflowing() -> None:
    batcher = _batcher(size=25)
    batcher.add(_entry(0, "a", 1, size=10), now=0.0)
    batcher.add(_entry(1, "b", 1, size=10), now=0.0)
    closed = batcher.add(_entry(2, "c", 1, size=10), now=0.0)
    assert closed is not None
    assert closed.size_bytes == 20


def test_a_single_oversize_change_still_gets_a_batch() -> None:
    batcher = _batcher(size=5)
    assert batcher.add(_entry(0, "a", 1, size=50), now=0.0) is None
    assert batcher.due(now=0.0)
    batch = batcher.take()
    assert batch is not None
    assert len(batch.entries) == 1


def test_linger_makes_a_partial_batch_due() -> None:
    batcher = _batcher(linger_s=0.05)
    assert not batcher.due(now=0.0)
    batcher.add(_entry(0, "a", 1), now=1.0)
    assert not batcher.due(now=1.04)
    assert batcher.due(now=1.05)
    assert batcher.take() is not None
    assert not batcher.due(now=9.0)
    assert batcher.take() is None


def test_newest_change_per_document_wins_and_carries_older_offsets() -> None:
    batcher = _batcher()
    batcher.add(_entry(0, "a", 1), now=0.0)
    batcher.add(_entry(1, "b", 1), now=0.0)
    batcher.add(_entry(2, "a", 2), now=0.0)
    batcher.add(_entry(3, "a", 3), now=0.0)
    batch = batcher.take()
    assert batch is not None
    by_doc = {e.doc_id: e for e in batch.entries}
    assert by_doc["a"].version == 3
    assert by_doc["a"].payload == "a@3"
    assert sorted(by_doc["a"].offsets) == [0, 2, 3]
    assert batch.coalesced == 2
    # Every offset of the batch settles with some entry.
    assert sorted(o for e in batch.entries for o in e.offsets) == [0, 1, 2, 3]


def test_an_older_change_arriving_later_loses_but_its_offset_settles() -> None:
    batcher = _batcher()
    batcher.add(_entry(5, "a", 9), now=0.0)
    batcher.add(_entry(6, "a", 4), now=0.0)  # e.g. a backfill image older than the stream change
    batch = batcher.take()
    assert batch is not None
    (entry,) = batch.entries
    assert entry.version == 9
    assert sorted(entry.offsets) == [5, 6]


def test_equal_versions_tie_break_by_offset() -> None:
    batcher = _batcher()
    batcher.add(_entry(1, "a", 7), now=0.0)
    batcher.add(_entry(2, "a", 7), now=0.0)
    batch = batcher.take()
    assert batch is not None
    assert batch.entries[0].offset == 2


def test_coalescing_does_not_count_towards_the_doc_limit_and_adjusts_bytes() -> None:
    batcher = _batcher(docs=2)
    for offset in range(10):
        assert batcher.add(_entry(offset, "a", offset, size=offset + 1), now=0.0) is None
    batch = batcher.take()
    assert batch is not None
    assert batch.size_bytes == 10
    assert len(batch.entries[0].offsets) == 10


def test_same_document_in_two_partitions_is_not_coalesced() -> None:
    # Only a broken producer puts one key in two partitions; both changes go out (external
    # versioning orders them) and each partition's offsets settle on their own.
    batcher = _batcher()
    batcher.add(_entry(0, "a", 1, partition=P0), now=0.0)
    batcher.add(_entry(0, "a", 2, partition=P1), now=0.0)
    batch = batcher.take()
    assert batch is not None
    assert len(batch.entries) == 2


def test_drop_forgets_revoked_partitions() -> None:
    batcher = _batcher()
    batcher.add(_entry(0, "a", 1, partition=P0), now=0.0)
    batcher.add(_entry(0, "b", 1, partition=P1), now=0.0)
    batcher.drop([P1])
    batch = batcher.take()
    assert batch is not None
    assert [e.partition for e in batch.entries] == [P0]
    assert batch.without([P0]).entries == ()
