"""``dynabridge verify``: a table and its index hold the same items, by id and by document.

Index side first: every searchable ``_id`` (a scroll: refreshed documents, tombstones left out).
Table side: a strongly consistent Scan, each page compared with the index's documents by
``_mget`` (real time). An id of the index that the Scan did not meet is an extra if the index
still holds it (``_mget`` again): an item created after the ids were read cannot look extra,
and one deleted meanwhile is not reported once its delete is indexed. Exact on a quiescent
pipeline; on a live one a difference may be a change still in flight: ``trace`` the id, or
verify again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Protocol

from bridge.contract import Item
from consumers.indexer.documents import doc_id, source_document
from dynabridge.operations.comparison import (
    Difference,
    DiffKind,
    VerifyReport,
    compare_page,
    dead_lettered,
)
from dynabridge.operations.dynamo import TableInfo
from dynabridge.operations.errors import IndexMissing
from dynabridge.operations.index_reader import StoredDocument


class TableSource(Protocol):
    def describe(self, table: str) -> TableInfo: ...
    def pages(self, table: str, page_size: int = 1000) -> Iterator[list[Item]]: ...


class IndexSource(Protocol):
    def count(self, index: str) -> int: ...
    def documents(self, index: str, ids: Sequence[str]) -> dict[str, StoredDocument]: ...
    def ids(self, index: str, page_size: int = 1000) -> Iterator[str]: ...


Progress = Callable[[int, int], None]
"""(items scanned so far, the table's approximate item count)."""


def verify(
    tables: TableSource,
    index_reader: IndexSource,
    *,
    table: str,
    index: str,
    sample: int,
    progress: Progress | None = None,
    dead_letters: Mapping[str, tuple[str, str]] | None = None,
) -> VerifyReport:
    """Compare ``table`` with ``index``; ids in ``dead_letters`` (id -> (reason, position)) that
    differ are reported as dead-lettered, with their reason, not as missing or different."""
    info = tables.describe(table)
    report = VerifyReport(table, index, sample)
    try:
        index_count = index_reader.count(index)
        unmet = set(index_reader.ids(index))  # before the Scan: see the module's docstring
    except IndexMissing:
        index_count, unmet = -1, set()
    found_total = 0
    for items in tables.pages(table):
        expected = {doc_id(info.key_schema.keys_of(item)): source_document(item) for item in items}
        unmet.difference_update(expected)
        found = {} if index_count < 0 else index_reader.documents(index, list(expected))
        found_total += len(found)
        differences = compare_page(expected, {i: d.source for i, d in found.items()})
        if dead_letters:
            differences = dead_lettered(differences, dead_letters)
        report.add(differences)
        report.table_items += len(expected)
        report.equal_documents += len(expected) - len(differences)
        if progress is not None:
            progress(report.table_items, info.item_count)
    if unmet:
        report.add(_extras(index_reader, index, sorted(unmet)))
    # The count sees refreshed documents only; mget also saw the unrefreshed ones.
    report.index_documents = max(index_count, found_total)
    return report


def _extras(index_reader: IndexSource, index: str, unmet: list[str]) -> Iterator[Difference]:
    """Ids the Scan did not meet that the index holds still (real time)."""
    for start in range(0, len(unmet), 1000):
        still = index_reader.documents(index, unmet[start : start + 1000])
        yield from (Difference(found, DiffKind.EXTRA) for found in sorted(still))
