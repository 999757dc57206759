"""The demo workload: seeded, lossless shapes, and the ordering rules the latency check needs."""

from __future__ import annotations

from collections import Counter

from bridge.contract import normalize_number, validate_item
from consumers.indexer.documents import doc_id, to_plain_json
from dynabridge.demo.workload import REV, Change, ChangeKind, Shape, Workload


def _run(workload: Workload, n: int, settled: bool = True) -> list[Change]:
    changes = []
    for seq in range(1, n + 1):
        change = workload.next(seq, lambda _keys: settled)
        workload.finished(change)
        changes.append(change)
    return changes


def test_the_same_seed_gives_the_same_changes() -> None:
    first = _run(Workload(3, "t"), 300)
    second = _run(Workload(3, "t"), 300)
    assert first == second


def test_every_kind_and_every_shape_appears_and_images_are_valid() -> None:
    workload = Workload(5, "t")
    changes = _run(workload, 600)
    assert set(workload.counts) == set(ChangeKind)
    assert sum(workload.counts.values()) == 600
    kinds_of_values: Counter[str] = Counter()
    for change in changes:
        if change.image is None:
            continue
        validate_item(change.image)
        assert change.image[REV] == {"N": str(change.seq)}
        to_plain_json(change.image)  # converts without error: numbers fit 38 digits
        for value in change.image.values():
            kinds_of_values.update(value.keys())
    assert {"M", "L", "SS", "NS", "BS", "B", "N", "BOOL", "NULL", "S"} <= set(kinds_of_values)
    assert {i["kind"]["S"] for c in changes if (i := c.image)} == {"order", "sensor", "profile"}


def test_numbers_use_all_38_digits_and_are_canonical() -> None:
    changes = _run(Workload(9, "t"), 200)
    numbers = [
        v["N"] for c in changes if c.image for v in c.image.values() if isinstance(v.get("N"), str)
    ]
    digits = [len(n.lstrip("-").replace(".", "")) for n in numbers]
    assert max(digits) == 38
    assert all(normalize_number(n) == n for n in numbers)


def test_deletes_only_hit_settled_items_and_keys_are_never_reused() -> None:
    workload = Workload(11, "t")
    never_settled = _run(workload, 300, settled=False)
    assert all(c.kind is not ChangeKind.DELETE for c in never_settled)
    changes = _run(workload, 600)
    deleted = set()
    for change in [*never_settled, *changes]:
        key = doc_id(change.keys)
        assert key not in deleted, "a deleted key was written again"
        if change.kind is ChangeKind.DELETE:
            deleted.add(key)
    assert deleted


def test_a_key_with_a_write_in_flight_is_never_handed_out() -> None:
    workload = Workload(13, "t")
    in_flight = [workload.next(seq, lambda _keys: True) for seq in range(1, 400)]
    keys = [doc_id(c.keys) for c in in_flight]
    assert len(keys) == len(set(keys))


def test_compact_items_take_every_kind_of_change() -> None:
    workload = Workload(17, "t", shapes=(Shape.COMPACT,))
    changes = _run(workload, 300)
    assert set(workload.counts) == set(ChangeKind)
    assert {i["kind"]["S"] for c in changes if (i := c.image)} == {"compact"}
    updates = [c.update for c in changes if c.update is not None]
    assert updates
    assert all("#amount = :amount" in u.expression for u in updates)
