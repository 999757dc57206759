"""Typed fields: every value of an item indexed under its DynamoDB type, so no value can conflict.

``_source`` holds the item at its own names and is never indexed by the engine (the managed
mapping is ``dynamic: false``); what is searched is ``ddb.<attribute>.<TYPE>``, one field per
attribute and DynamoDB type, so an attribute that holds a number in one item and a string or a
map in another, or a list of mixed values, indexes every value and refuses none::

    ddb.<attr>.S       text, with .keyword      S, SS, and the S members of lists
    ddb.<attr>.N       double                   N, NS (38 digits in _source, rounded here)
    ddb.<attr>.BOOL    boolean
    ddb.<attr>.B       keyword (base64)         B, BS
    ddb.<attr>.NULL    boolean true             the attribute is NULL (or holds a NULL)
    ddb.<attr>.M       flattened / flat_object  maps deeper than search.typed_depth, or wider
                                                than search.typed_keys_per_map: every leaf as a
                                                keyword, searchable by path (ddb.<attr>.M.a.b)
    ddb.<attr>.date    date                     configured attributes (search.date_attributes)

Maps within ``typed_depth`` get typed fields per key (``ddb.<attr>.<key>.N``); maps inside lists
add their keys to the list's path, as the engines do with arrays of objects. Pure and
deterministic: the same image always gives the same fields.
"""

from __future__ import annotations

import base64
import enum
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from bridge.contract import AttributeValue, Item
from bridge.runtime.settings import SearchSettings
from consumers.indexer.names import source_name
from consumers.indexer.numbers import plain_number

ROOT = "ddb"
"""The object holding every typed field; excluded from ``_source``."""
MARKERS = frozenset({"S", "N", "BOOL", "B", "NULL", "M", "date"})
"""Leaf names under an attribute's path; a map key equal to one is written ``~<key>``."""
MAX_KEYWORD_CHARS = 1024
"""Strings longer than this are left out of ``M`` (OpenSearch refuses keyword terms over 32 KB);
they stay in ``_source`` and, at typed depth, in the ``S`` text field."""


class Fallback(enum.StrEnum):
    """Why an attribute is not indexed as one field of its natural type (reported per attribute)."""

    MIXED_TYPES = "mixed_types"
    """Values of several DynamoDB types (a mixed list, or a type that drifts): one field each."""
    DEEP_MAP = "deep_map"
    """Maps nested deeper than search.typed_depth: their leaves are indexed as keywords (M)."""
    WIDE_MAP = "wide_map"
    """A map with more keys than search.typed_keys_per_map: its leaves are keywords (M)."""
    LONG_VALUE = "long_value"
    """A string over MAX_KEYWORD_CHARS inside a keyword-indexed map: left out of the index."""
    RENAMED = "renamed"
    """A name the engines reserve or refuse at top level, stored as ``~<escaped>``."""


@dataclass(frozen=True, slots=True)
class TypedFieldRules:
    depth: int = 1
    """How many levels of maps get typed fields of their own (1: top-level attributes only)."""
    keys_per_map: int = 100
    date_attributes: Collection[str] = ()


def typed_rules(settings: SearchSettings) -> TypedFieldRules:
    """The rules ``search.*`` configures (dates by their ``_source`` names)."""
    return TypedFieldRules(
        depth=settings.typed_depth,
        keys_per_map=settings.typed_keys_per_map,
        date_attributes=frozenset(source_name(name) for name in settings.date_attributes),
    )


@dataclass(slots=True)
class TypedDocument:
    fields: dict[str, Any]
    """The ``ddb`` object: shadow key of each top-level attribute -> its typed leaves."""
    fallbacks: list[tuple[str, Fallback]] = field(default_factory=list)
    """(attribute name in _source, why), at most one of each per attribute."""


def shadow_key(name: str) -> str:
    """An attribute name as an object key under ``ddb``: no dots (they would nest objects),
    no whitespace-only names, never a leaf marker."""
    if "%" in name or "." in name or not name.strip():
        name = name.replace("%", "%25").replace(".", "%2E")
        if not name.strip():
            name = "".join(f"%{byte:02X}" for byte in name.encode("utf-8"))
    return "~" + name if name in MARKERS else name


def typed_fields(item: Item, rules: TypedFieldRules) -> TypedDocument:
    """The typed fields of ``item`` (top-level names already as they appear in ``_source``)."""
    document = TypedDocument({})
    for name, value in item.items():
        leaves: dict[str, Any] = {}
        notes: set[Fallback] = set()
        _collect(value, leaves, rules.depth, rules, notes)
        if name in rules.date_attributes:
            add_dates(leaves)
        if _kinds(leaves) > 1:
            notes.add(Fallback.MIXED_TYPES)
        if leaves:
            document.fields[shadow_key(name)] = leaves
        document.fallbacks.extend((name, note) for note in sorted(notes))
    return document


def typed_from_source(
    item: Item, source: Mapping[str, Any], rules: TypedFieldRules
) -> TypedDocument:
    """:func:`typed_fields` of a validated ``item`` whose ``_source`` (same names, same order)
    is already converted: the leaves reuse its values instead of converting them again.

    A property test holds it equal to :func:`typed_fields`; the indexer's hot path is the same
    per attribute (:func:`typed_leaves`), fused with the ``_source`` conversion
    (``documents.indexed_document``).
    """
    document = TypedDocument({})
    for (name, value), plain in zip(item.items(), source.values(), strict=True):
        ((tag, payload),) = value.items()
        leaves = typed_leaves(name, tag, payload, plain, rules, document.fallbacks)
        if leaves:
            document.fields[shadow_key(name)] = leaves
    return document


def typed_leaves(
    name: str,
    tag: str,
    payload: Any,
    plain: Any,
    rules: TypedFieldRules,
    fallbacks: list[tuple[str, Fallback]],
) -> dict[str, Any]:
    """The typed leaves of top-level attribute ``name`` (a validated ``{tag: payload}``) from its
    converted ``_source`` value ``plain``; why it falls back is appended to ``fallbacks``."""
    kind = _SCALARS.get(tag)
    if kind is not None:
        leaves: dict[str, Any] = {kind: plain}
    elif tag == "M" and rules.depth == 1:
        if _short(plain):
            leaves = {"M": plain}
        else:
            notes: set[Fallback] = set()
            leaves = {"M": _without_long_strings(plain, notes)}
            fallbacks.extend((name, note) for note in notes)
    elif tag == "L" and rules.depth == 1:
        leaves, notes = {}, set()
        _list_leaves(payload, plain, leaves, None if _short(plain) else notes)
        # Only type markers are keys here (no map keys at depth 1), and NULL is no type.
        if len(leaves) - ("NULL" in leaves) > 1:
            notes.add(Fallback.MIXED_TYPES)
        if notes:
            fallbacks.extend((name, note) for note in sorted(notes))
    elif tag == "NULL":
        leaves = {"NULL": True}
    else:  # typed depth: the general walk
        leaves, notes = {}, set()
        _collect({tag: payload}, leaves, rules.depth, rules, notes)
        if _kinds(leaves) > 1:
            notes.add(Fallback.MIXED_TYPES)
        fallbacks.extend((name, note) for note in sorted(notes))
    if name in rules.date_attributes:
        add_dates(leaves)
    return leaves


_dumps = orjson.dumps
_SCALARS = {"S": "S", "N": "N", "BOOL": "BOOL", "B": "B", "SS": "S", "NS": "N", "BS": "B"}
"""Types whose ``_source`` value is already their typed leaf (a set: the sorted array)."""


def _list_leaves(
    members: list[AttributeValue],
    plain: list[Any],
    leaves: dict[str, Any],
    notes: set[Fallback] | None,
) -> None:
    """A list's members into their types' leaves, from their already converted values.

    ``notes`` None: the list is known to hold no string too long for a keyword (:func:`_short`).
    """
    for member, value in zip(members, plain, strict=True):
        ((tag, _),) = member.items()
        kind = _SCALARS.get(tag)
        if kind is not None:
            if tag in ("SS", "NS", "BS"):
                for one in value:
                    _add(leaves, kind, one)
            else:
                _add(leaves, kind, value)
        elif tag == "NULL":
            leaves["NULL"] = True
        elif tag == "M":
            _add(leaves, "M", value if notes is None else _without_long_strings(value, notes))
        else:  # a list inside the list
            _list_leaves(member["L"], value, leaves, notes)


def _short(plain: Any) -> bool:
    """No string in ``plain`` can be over MAX_KEYWORD_CHARS: its whole JSON is not longer (a
    character is at least one UTF-8 byte). One C call instead of a walk, for the common case."""
    return len(_dumps(plain)) <= MAX_KEYWORD_CHARS


def _without_long_strings(plain: Any, notes: set[Fallback]) -> Any:
    """``plain`` as a keyword-indexed value: itself, unless a string in it is too long."""
    if not _has_long_string(plain):
        return plain
    notes.add(Fallback.LONG_VALUE)
    return _dropped(plain)


def _has_long_string(plain: Any) -> bool:
    if type(plain) is str:
        return len(plain) > MAX_KEYWORD_CHARS
    if type(plain) is dict:
        return any(_has_long_string(member) for member in plain.values())
    if type(plain) is list:
        return any(_has_long_string(member) for member in plain)
    return False


def _dropped(plain: Any) -> Any:
    if type(plain) is dict:
        return {
            key: _dropped(member)
            for key, member in plain.items()
            if not (type(member) is str and len(member) > MAX_KEYWORD_CHARS)
        }
    if type(plain) is list:
        return [
            _dropped(member)
            for member in plain
            if not (type(member) is str and len(member) > MAX_KEYWORD_CHARS)
        ]
    return plain


def _kinds(leaves: Mapping[str, Any]) -> int:
    return sum(1 for kind in leaves if kind in MARKERS and kind != "NULL" and kind != "date")


def _add(leaves: dict[str, Any], kind: str, value: Any) -> None:
    """One more value of ``kind``: a scalar first, a list once there are several."""
    current = leaves.get(kind, _MISSING)
    if current is _MISSING:
        leaves[kind] = value
    elif type(current) is list:
        current.append(value)
    else:
        leaves[kind] = [current, value]


_MISSING = object()


def _collect(
    value: AttributeValue,
    leaves: dict[str, Any],
    depth_left: int,
    rules: TypedFieldRules,
    notes: set[Fallback],
) -> None:
    ((tag, payload),) = value.items()
    if tag == "S":
        _add(leaves, "S", payload)
    elif tag == "N":
        _add(leaves, "N", plain_number(payload))
    elif tag == "BOOL":
        _add(leaves, "BOOL", payload)
    elif tag == "NULL":
        leaves["NULL"] = True
    elif tag == "B":
        _add(leaves, "B", base64.b64encode(payload).decode("ascii"))
    elif tag == "SS":
        for member in payload:
            _add(leaves, "S", member)
    elif tag == "NS":
        for member in payload:
            _add(leaves, "N", plain_number(member))
    elif tag == "BS":
        for member in payload:
            _add(leaves, "B", base64.b64encode(member).decode("ascii"))
    elif tag == "L":
        for member in payload:
            _collect(member, leaves, depth_left, rules, notes)
    else:  # "M"
        _collect_map(payload, leaves, depth_left, rules, notes)


def _collect_map(
    members: Item,
    leaves: dict[str, Any],
    depth_left: int,
    rules: TypedFieldRules,
    notes: set[Fallback],
) -> None:
    if depth_left > 1 and len(members) <= rules.keys_per_map:
        for key, member in members.items():
            _collect(member, leaves.setdefault(shadow_key(key), {}), depth_left - 1, rules, notes)
        return
    if depth_left > 1:
        notes.add(Fallback.WIDE_MAP)
    elif rules.depth > 1:
        notes.add(Fallback.DEEP_MAP)
    _add(leaves, "M", _keywords(members, notes))


def _keywords(members: Item, notes: set[Fallback]) -> dict[str, Any]:
    """A map as plain JSON for a keyword-indexed field, strings too long for a term left out."""
    plain: dict[str, Any] = {}
    for key, member in members.items():
        value = _keyword(member, notes)
        if value is not _MISSING:
            plain[key] = value
    return plain


def _keyword(value: AttributeValue, notes: set[Fallback]) -> Any:
    ((tag, payload),) = value.items()
    if tag == "S" or tag == "B":
        text = payload if tag == "S" else base64.b64encode(payload).decode("ascii")
        if len(text) > MAX_KEYWORD_CHARS:
            notes.add(Fallback.LONG_VALUE)
            return _MISSING
        return text
    if tag == "N":
        return plain_number(payload)
    if tag == "BOOL":
        return payload
    if tag == "NULL":
        return None
    if tag == "M":
        return _keywords(payload, notes)
    members = payload if tag == "L" else [{tag[0]: member} for member in payload]
    kept = [_keyword(member, notes) for member in members]
    return [member for member in kept if member is not _MISSING]


def add_dates(leaves: dict[str, Any]) -> None:
    """Configured date attributes: their S and N values also go to the ``date`` field."""
    for kind in ("S", "N"):
        values = leaves.get(kind, _MISSING)
        if values is _MISSING:
            continue
        for value in values if type(values) is list else [values]:
            _add(leaves, "date", value)
