"""Table vs index: which ids are missing, extra or different, and the report ``verify`` prints.

A document is equal when the index's ``_source`` equals ``source_document`` of the table's item,
compared as parsed JSON (so key order and number spelling do not matter, values do).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


class DiffKind(enum.StrEnum):
    MISSING = "missing"
    """In the table, not in the index."""
    EXTRA = "extra"
    """In the index, not in the table."""
    DIFFERENT = "different"
    """In both, with a different document."""
    DEAD_LETTERED = "dead_lettered"
    """Missing or different because the engine refused its newest change (see ``reason``;
    fix the cause, then ``dynabridge dlq redrive``)."""


@dataclass(frozen=True, slots=True)
class Difference:
    doc_id: str
    kind: DiffKind
    fields: tuple[str, ...] = ()
    """Top-level attributes that differ (DIFFERENT only)."""
    reason: str = ""
    """DEAD_LETTERED only: the dead letter's error type and reason, and its position."""


def dead_lettered(
    differences: Iterable[Difference], letters: Mapping[str, tuple[str, str]]
) -> list[Difference]:
    """``differences`` with those of dead-lettered ids (id -> (reason, position)) named so."""
    named = []
    for difference in differences:
        found = letters.get(difference.doc_id)
        if found is None or difference.kind is DiffKind.EXTRA:
            named.append(difference)
        else:
            reason, position = found
            named.append(
                Difference(
                    difference.doc_id, DiffKind.DEAD_LETTERED, (), f"{reason} (dlq {position})"
                )
            )
    return named


def differing_fields(expected: Mapping[str, Any], actual: Mapping[str, Any]) -> tuple[str, ...]:
    """Top-level attribute names whose values differ, or that only one side has."""
    names = set(expected) | set(actual)
    return tuple(
        sorted(
            name
            for name in names
            if name not in expected or name not in actual or not same(expected[name], actual[name])
        )
    )


def same(a: Any, b: Any) -> bool:
    """JSON equality where ``1`` and ``1.0`` are equal but ``True`` and ``1`` are not."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def compare_page(
    expected: Mapping[str, Mapping[str, Any]], found: Mapping[str, Mapping[str, Any] | None]
) -> list[Difference]:
    """Differences for one page of table items (by ``_id``) against what the index holds."""
    differences: list[Difference] = []
    for doc_id, document in expected.items():
        actual = found.get(doc_id)
        if actual is None:
            differences.append(Difference(doc_id, DiffKind.MISSING))
            continue
        fields = differing_fields(document, actual)
        if fields:
            differences.append(Difference(doc_id, DiffKind.DIFFERENT, fields))
    return differences


@dataclass(slots=True)
class VerifyReport:
    """Counts of every kind, and the first ``sample`` differences of each kind."""

    table: str
    index: str
    sample: int
    table_items: int = 0
    index_documents: int = 0
    equal_documents: int = 0
    counts: dict[str, int] = field(default_factory=lambda: {kind.value: 0 for kind in DiffKind})
    examples: list[Difference] = field(default_factory=list)
    differing: list[str] = field(default_factory=list)
    """The id of every difference but the dead-lettered ones (not in :meth:`as_json`)."""

    @property
    def equal(self) -> bool:
        return not any(self.counts.values())

    def add(self, differences: Iterable[Difference]) -> None:
        for difference in differences:
            kind = difference.kind.value
            if self.counts[kind] < self.sample:
                self.examples.append(difference)
            self.counts[kind] += 1
            if difference.kind is not DiffKind.DEAD_LETTERED:
                self.differing.append(difference.doc_id)

    def as_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "index": self.index,
            "equal": self.equal,
            "table_items": self.table_items,
            "index_documents": self.index_documents,
            "equal_documents": self.equal_documents,
            "differences": dict(self.counts),
            "examples": [
                {"id": d.doc_id, "kind": d.kind.value, "fields": list(d.fields), "reason": d.reason}
                for d in self.examples
            ],
        }

    def text(self) -> str:
        verdict = "EQUAL" if self.equal else "DIFFERENT"
        lines = [
            f"table {self.table} ({self.table_items} items) vs index {self.index} "
            f"({self.index_documents} documents): {verdict}",
            f"  equal {self.equal_documents}, "
            + ", ".join(f"{kind} {count}" for kind, count in self.counts.items()),
        ]
        for kind in DiffKind:
            shown = [d for d in self.examples if d.kind is kind]
            if not shown:
                continue
            more = self.counts[kind.value] - len(shown)
            lines.append(f"  {kind.value} (first {len(shown)}{f', {more} more' if more else ''}):")
            for d in shown:
                detail = f"  fields: {', '.join(d.fields)}" if d.fields else ""
                detail += f"  {d.reason}" if d.reason else ""
                lines.append(f"    {d.doc_id}{detail}")
        return "\n".join(lines)
