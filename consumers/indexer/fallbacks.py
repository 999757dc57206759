"""Which attributes fall back from one field of their natural type, and why: seen once, said once.

Per document, ``typed_fields`` names mixed lists, deep or wide maps, long values and renamed
names; across documents this module notices an attribute whose DynamoDB type drifts (N in one
item, S or M in another). Each (table, attribute, reason) is reported the first time it is seen
(one warning, not one per document); the count of documents goes to a metric whose attribute
label is bounded per table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from consumers.indexer.typed_fields import MARKERS, Fallback

MAX_ATTRIBUTES_PER_TABLE = 200
"""Distinct attribute labels per table in the metric; beyond it they count as ``(other)``."""
OTHER = "(other)"
_KINDS = MARKERS - {"NULL", "date"}


class FallbackReport:
    """What this process has seen: the DynamoDB types of every typed attribute, and notes."""

    def __init__(self) -> None:
        self._kinds: dict[str, dict[str, frozenset[str]]] = {}
        """Table -> attribute -> the leaves (DynamoDB types) seen under it."""
        self._noted: set[tuple[str, str, str]] = set()
        self._labels: dict[str, set[str]] = {}

    def observe(
        self,
        table: str,
        typed: Mapping[str, Any] | None,
        notes: Iterable[tuple[str, str]],
    ) -> list[tuple[str, str]]:
        """The (attribute, reason) pairs of one indexed document, with type drift added."""
        found = list(notes)
        if not typed:
            return found
        kinds_of = self._kinds.get(table)
        if kinds_of is None:
            kinds_of = self._kinds[table] = {}
        for attribute, leaves in typed.items():  # once per attribute of every document: lean
            seen = kinds_of.get(attribute)
            if seen is not None and seen.issuperset(leaves):
                continue
            kinds = frozenset(leaves) if seen is None else seen.union(leaves)
            kinds_of[attribute] = kinds
            if seen is not None and len(kinds & _KINDS) > 1 and len(seen & _KINDS) <= 1:
                found.append((attribute, Fallback.MIXED_TYPES))
        return found

    def first_time(self, table: str, attribute: str, reason: str) -> bool:
        """True once per (table, attribute, reason): the moment to say it."""
        key = (table, attribute, reason)
        if key in self._noted:
            return False
        self._noted.add(key)
        return True

    def label(self, table: str, attribute: str) -> str:
        """The metric label of ``attribute``: its name, or ``(other)`` past the bound."""
        labels = self._labels.setdefault(table, set())
        if attribute in labels:
            return attribute
        if len(labels) >= MAX_ATTRIBUTES_PER_TABLE:
            return OTHER
        labels.add(attribute)
        return attribute
