"""Which attributes of a table are not indexed as one field of their natural type, read from
the index's own mapping (the managed mapping's typed fields, ``ddb.<attr>.<TYPE>``).

The mapping is the record every indexer process shares: an attribute that ever held values of
two DynamoDB types has a field for each; a map indexed as keywords has an ``M`` field.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from consumers.indexer.names import RENAMED_PREFIX
from consumers.indexer.templates import is_managed
from consumers.indexer.typed_fields import MARKERS, ROOT

_KINDS = ("S", "N", "BOOL", "B", "M")


@dataclass(frozen=True, slots=True)
class FieldStatus:
    attribute: str
    """As it appears under ``ddb`` (escaped: ``%2E`` for a dot, ``~`` before a marker)."""
    types: tuple[str, ...]
    notes: tuple[str, ...]


def field_report(mappings: Mapping[str, Any]) -> tuple[bool, list[FieldStatus]]:
    """(managed, the attributes worth naming) of one index's mappings."""
    if not is_managed(mappings):
        return False, []
    root = mappings.get("properties", {}).get(ROOT, {}).get("properties", {})
    found = []
    for attribute, body in sorted(root.items()):
        leaves = body.get("properties", {}) if isinstance(body, Mapping) else {}
        types = tuple(kind for kind in _KINDS if kind in leaves)
        notes = []
        if len([kind for kind in types if kind != "M"]) > 1 or ("M" in types and len(types) > 1):
            notes.append(f"mixed types ({', '.join(types)}): one field each")
        if "M" in types:
            notes.append(f"maps indexed as keywords by path ({ROOT}.{attribute}.M.<key>)")
        if any(key not in MARKERS for key in leaves):
            notes.append("map keys with typed fields of their own")
        if attribute.startswith(RENAMED_PREFIX) and not attribute.startswith("~" * 2):
            original = unquote(attribute[len(RENAMED_PREFIX) :])
            if original not in MARKERS:
                notes.append(f"renamed in _source (the engines refuse {original!r} there)")
        if notes:
            found.append(FieldStatus(attribute, types, tuple(notes)))
    return True, found
