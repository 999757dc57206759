"""Documents with a change on its way to the engine; while one is, no other change to it goes out.

Invariant: a document (partition, index, ``_id``) has at most one change sent and not yet
settled: in a bulk in flight, waiting to be retried, or being deleted after its dead letter. So
with several bulks in flight at once, two changes to one document are never in flight together,
and each document's changes reach the engine in partition order. A batch holding a busy document
waits, and every batch behind it waits too (batches go out in the order they were closed).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from consumers.indexer.batching import Batch, Entry
from consumers.indexer.records import Partition

Document = tuple[Partition, str, str]
"""(partition, index, ``_id``): what the batcher coalesces on."""


def document(entry: Entry[Any]) -> Document:
    return (entry.partition, entry.index, entry.doc_id)


class InFlightDocuments:
    """The documents whose change was sent and has not settled (or been abandoned) yet."""

    def __init__(self) -> None:
        self._busy: set[Document] = set()

    def __len__(self) -> int:
        return len(self._busy)

    def __contains__(self, key: object) -> bool:
        return key in self._busy

    def free(self, batch: Batch[Any]) -> bool:
        """Whether ``batch`` may go out: none of its documents has a change in flight."""
        busy = self._busy
        return not busy or not any(document(entry) in busy for entry in batch.entries)

    def hold(self, batch: Batch[Any]) -> None:
        """``batch`` was sent: its documents are busy until each entry is released. Sending it
        again (a retry, the delete after a dead letter) holds nothing new."""
        self._busy.update(document(entry) for entry in batch.entries)

    def release(self, entry: Entry[Any]) -> None:
        """``entry`` settled, or was abandoned (its partition went to another member): the next
        change to its document may go out."""
        self._busy.discard(document(entry))

    def release_all(self, entries: Iterable[Entry[Any]]) -> None:
        busy = self._busy
        for entry in entries:
            busy.discard(document(entry))
