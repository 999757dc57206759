"""Document diffing for verify: JSON equality, per-field differences, sampled report."""

from __future__ import annotations

from dynabridge.operations.comparison import (
    Difference,
    DiffKind,
    VerifyReport,
    compare_page,
    dead_lettered,
    differing_fields,
    same,
)


def test_same_is_json_equality() -> None:
    assert same({"a": [1, {"b": 2.0}]}, {"a": [1, {"b": 2}]})
    assert not same(True, 1)
    assert not same([1, 2], [2, 1])
    assert not same({"a": 1}, {"a": 1, "b": None})


def test_differing_fields_names_changed_added_and_removed_attributes() -> None:
    expected = {"a": 1, "b": "x", "c": [1]}
    assert differing_fields(expected, {"a": 1, "b": "y", "d": 0}) == ("b", "c", "d")
    assert differing_fields(expected, dict(expected)) == ()


def test_compare_page() -> None:
    expected = {"1": {"a": 1}, "2": {"a": 2}, "3": {"a": 3}}
    found = {"1": {"a": 1}, "2": {"a": 20}}
    assert compare_page(expected, found) == [
        Difference("2", DiffKind.DIFFERENT, ("a",)),
        Difference("3", DiffKind.MISSING),
    ]


def test_report_counts_everything_and_lists_a_sample() -> None:
    report = VerifyReport("t", "i", sample=2)
    report.add(Difference(str(n), DiffKind.MISSING) for n in range(5))
    report.add([Difference("x", DiffKind.EXTRA)])
    assert not report.equal
    assert report.counts == {"missing": 5, "extra": 1, "different": 0, "dead_lettered": 0}
    assert [d.doc_id for d in report.examples] == ["0", "1", "x"]
    assert "missing (first 2, 3 more)" in report.text()
    assert VerifyReport("t", "i", sample=2).equal


def test_dead_lettered_ids_are_named_with_their_reason_not_as_missing() -> None:
    differences = [
        Difference("a", DiffKind.MISSING),
        Difference("b", DiffKind.DIFFERENT, ("qty",)),
        Difference("c", DiffKind.MISSING),
        Difference("d", DiffKind.EXTRA),
    ]
    letters = {"a": ("document_parsing_exception: qty", "0:4"), "d": ("x", "1:1")}
    named = dead_lettered(differences, letters)
    assert [(d.doc_id, d.kind) for d in named] == [
        ("a", DiffKind.DEAD_LETTERED),
        ("b", DiffKind.DIFFERENT),
        ("c", DiffKind.MISSING),
        ("d", DiffKind.EXTRA),
    ]
    assert named[0].reason == "document_parsing_exception: qty (dlq 0:4)"
    report = VerifyReport("t", "i", sample=5)
    report.add(named)
    assert not report.equal
    assert "dead_lettered 1" in report.text()
    assert "document_parsing_exception: qty (dlq 0:4)" in report.text()
