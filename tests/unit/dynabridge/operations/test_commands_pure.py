"""replay, verify and status over scripted collaborators: what each reads, decides and writes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

import pytest

from bridge.contract import Item
from bridge.leases import Lease, new_lease, renewed
from dynabridge.operations.comparison import DiffKind
from dynabridge.operations.dynamo import TableInfo
from dynabridge.operations.errors import IndexMissing
from dynabridge.operations.group_lag import partition_lag
from dynabridge.operations.index_reader import StoredDocument
from dynabridge.operations.item_keys import KeyAttribute, KeySchema, ScalarType
from dynabridge.operations.offset_targets import (
    GroupInfo,
    Member,
    OffsetTarget,
    TargetKind,
    Watermarks,
)
from dynabridge.operations.replay import GroupInUse, replay
from dynabridge.operations.status import owners_alive, renewing, trim_in_s
from dynabridge.operations.verify import verify


class FakeKafka:
    def __init__(self, members: tuple[Member, ...] = ()) -> None:
        self.members = members
        self.altered: dict[int, int] | None = None

    def partitions(self, topic: str) -> list[int]:
        return [0, 1]

    def watermarks(self, topic: str, partitions: Iterable[int]) -> dict[int, Watermarks]:
        return {0: Watermarks(0, 10), 1: Watermarks(4, 6)}

    def offsets_for_time(
        self, topic: str, partitions: Iterable[int], epoch_ms: int
    ) -> dict[int, int]:
        return {0: 7, 1: -1}

    def committed(self, group: str, topic: str, partitions: Iterable[int]) -> dict[int, int | None]:
        return {0: 10, 1: None}

    def group(self, group: str) -> GroupInfo:
        return GroupInfo(group, "STABLE" if self.members else "EMPTY", self.members)

    def alter(self, group: str, topic: str, offsets: Mapping[int, int]) -> None:
        self.altered = dict(offsets)


def _replay(kafka: FakeKafka, target: OffsetTarget, dry_run: bool = False) -> object:
    return replay(
        kafka, group="g", topic="t", target=target, session_timeout_ms=6000, dry_run=dry_run
    )


def test_replay_applies_resolved_offsets_to_an_empty_group() -> None:
    kafka = FakeKafka()
    _replay(kafka, OffsetTarget(TargetKind.TIMESTAMP, 5))
    assert kafka.altered == {0: 7, 1: 6}


def test_replay_refuses_live_members_but_a_dry_run_still_plans() -> None:
    kafka = FakeKafka((Member("m", "c", "h", ("t[0]",)),))
    with pytest.raises(GroupInUse, match="live member"):
        _replay(kafka, OffsetTarget(TargetKind.EARLIEST))
    result = _replay(kafka, OffsetTarget(TargetKind.EARLIEST), dry_run=True)
    assert kafka.altered is None
    assert "not applicable now" in result.text()  # type: ignore[attr-defined]


SCHEMA = KeySchema((KeyAttribute("id", ScalarType.S),))


class FakeTable:
    def __init__(self, items: list[Item]) -> None:
        self.items = items

    def describe(self, table: str) -> TableInfo:
        return TableInfo(table, SCHEMA, None, len(self.items))

    def pages(self, table: str, page_size: int = 1000) -> Iterator[list[Item]]:
        yield self.items[:2]
        yield self.items[2:]


class FakeIndex:
    """``unrefreshed`` ids are found by ``_mget`` (real time) but not by count or ids."""

    def __init__(
        self, docs: dict[str, dict[str, object]] | None, unrefreshed: frozenset[str] = frozenset()
    ) -> None:
        self.docs = docs
        self.unrefreshed = unrefreshed
        self.id_scans = 0
        self.deleted_after_id_scan: set[str] = set()

    def count(self, index: str) -> int:
        if self.docs is None:
            raise IndexMissing(index)
        return len(set(self.docs) - self.unrefreshed)

    def documents(self, index: str, ids: Sequence[str]) -> dict[str, StoredDocument]:
        assert self.docs is not None
        return {i: StoredDocument(i, 1, dict(self.docs[i])) for i in ids if i in self.docs}

    def ids(self, index: str, page_size: int = 1000) -> Iterator[str]:
        self.id_scans += 1
        assert self.docs is not None
        yield from [i for i in self.docs if i not in self.unrefreshed]
        for gone in self.deleted_after_id_scan:
            del self.docs[gone]


ITEMS: list[Item] = [{"id": {"S": f"i{n}"}, "n": {"N": str(n)}} for n in range(3)]


def test_verify_equal_reports_progress() -> None:
    index = FakeIndex({f"i{n}": {"id": f"i{n}", "n": n} for n in range(3)})
    seen: list[tuple[int, int]] = []
    report = verify(
        FakeTable(ITEMS), index, table="t", index="t", sample=5, progress=lambda *a: seen.append(a)
    )
    assert report.equal
    assert seen == [(2, 3), (3, 3)]


def test_verify_finds_an_extra_that_an_unrefreshed_document_hides_from_the_count() -> None:
    # Searchable: i0, i1, zz (3, the table's count); i2 only by real-time get. A verify that
    # looked for extras only when the count exceeded what it found would call this equal.
    docs: dict[str, dict[str, object]] = {f"i{n}": {"id": f"i{n}", "n": n} for n in range(3)}
    index = FakeIndex({**docs, "zz": {}}, unrefreshed=frozenset({"i2"}))
    report = verify(FakeTable(ITEMS), index, table="t", index="t", sample=5)
    assert report.counts == {"missing": 0, "extra": 1, "different": 0, "dead_lettered": 0}


def test_verify_does_not_report_an_id_deleted_after_the_ids_were_read() -> None:
    docs: dict[str, dict[str, object]] = {f"i{n}": {"id": f"i{n}", "n": n} for n in range(3)}
    index = FakeIndex({**docs, "zz": {}, "yy": {}})
    index.deleted_after_id_scan = {"zz"}  # its delete was in flight: indexed during the Scan
    report = verify(FakeTable(ITEMS), index, table="t", index="t", sample=5)
    assert report.counts["extra"] == 1
    assert [(d.doc_id, d.kind) for d in report.examples] == [("yy", DiffKind.EXTRA)]


def test_verify_finds_extra_missing_and_different() -> None:
    index = FakeIndex({"i0": {"id": "i0", "n": 0}, "i1": {"id": "i1", "n": 9}, "zz": {}})
    report = verify(FakeTable(ITEMS), index, table="t", index="t", sample=5)
    assert report.counts == {"missing": 1, "extra": 1, "different": 1, "dead_lettered": 0}
    assert index.id_scans == 1


def test_verify_without_index_counts_everything_missing() -> None:
    report = verify(FakeTable(ITEMS), FakeIndex(None), table="t", index="t", sample=1)
    assert report.counts["missing"] == 3
    assert report.index_documents == 0


def test_status_pure_parts() -> None:
    assert partition_lag(0, Watermarks(5, 20), 12).lag == 8
    assert partition_lag(0, Watermarks(5, 20), None).lag == 15  # nothing committed: from low
    assert partition_lag(0, Watermarks(5, 20), 2).lag == 15  # committed below retention
    age, left = trim_in_s(created_ms=1_000_000, now_s=1_000 + 3600)
    assert (age, left) == (3600, 23 * 3600)
    a = new_lease("t", "arn", "s1", (), "TRIM_HORIZON", owner="w1")
    b = new_lease("t", "arn", "s2", (), "TRIM_HORIZON", owner="w2")
    first: list[Lease] = [a, b]
    second = [renewed(a), b]
    moved = renewing(first, second)
    assert moved == {a.lease_key: True, b.lease_key: False}
    assert owners_alive(second, moved) == {"w1": True, "w2": False}
