"""From a change event to a search document: index name, ``_id`` and plain JSON, all deterministic.

Invariants: two different primary keys of one table never share an ``_id`` (and an ``_id`` never
exceeds 512 bytes); a number's digits are never silently rounded; two different top-level
attribute names never share a ``_source`` name (rules in docs/indexer.md).
"""

from __future__ import annotations

import base64
import functools
import hashlib
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, TypeGuard

from bridge.contract import (
    AttributeValue,
    ChangeEvent,
    ContractError,
    EventName,
    Item,
    normalize_number,
    validate_item,
)
from consumers.indexer.actions import Action, ActionKind
from consumers.indexer.names import needs_renaming, source_name
from consumers.indexer.numbers import plain_number
from consumers.indexer.typed_fields import (
    TypedDocument,
    TypedFieldRules,
    add_dates,
    shadow_key,
    typed_leaves,
)

MAX_ID_BYTES = 512
"""Elasticsearch and OpenSearch reject longer ``_id`` values."""
HASHED_ID_PREFIX = "~sha256:"
"""Marks an id that is the hash of a too-long key; plain ids never contain ``~``."""
MAX_INDEX_BYTES = 255

_ID_SEPARATOR = "|"
# "%" is the escape character itself; "|" separates key attributes; "~" starts hashed ids.
_ID_ESCAPES = str.maketrans({"%": "%25", "|": "%7C", "~": "%7E"})
_INDEX_FORBIDDEN = str.maketrans(dict.fromkeys('\\/*?"<>| ,#:', "_"))
_INDEX_BAD_START = ("-", "_", "+", ".")


# ---------------------------------------------------------------------------------- index names


@functools.lru_cache(maxsize=1024)
def index_name(prefix: str, table: str) -> str:
    """``prefix + table`` made a valid index name; deterministic, so every process agrees.

    Lower-cased; each of ``\\ / * ? " < > | space , # :`` becomes ``_``; a name starting with
    ``- _ + .`` (which the engines reject or reserve for hidden/system indices) gets ``idx``
    in front; a name over 255 UTF-8 bytes is cut and ends with ``-`` and 8 hex digits of the
    SHA-256 of the full name. These steps can map two tables to one index (``Orders`` and
    ``orders``): :func:`index_collisions` finds that at start-up.
    """
    name = (prefix + table).lower().translate(_INDEX_FORBIDDEN)
    if not name:
        raise ValueError("an index name needs a table name")
    if name.startswith(_INDEX_BAD_START):
        name = "idx" + name
    encoded = name.encode("utf-8")
    if len(encoded) > MAX_INDEX_BYTES:
        digest = hashlib.sha256(encoded).hexdigest()[:8]
        head = encoded[: MAX_INDEX_BYTES - 9].decode("utf-8", errors="ignore")
        name = f"{head}-{digest}"
    return name


def index_collisions(prefix: str, tables: Iterable[str]) -> dict[str, list[str]]:
    """Index names that more than one of ``tables`` maps to (empty when all are distinct)."""
    owners: dict[str, list[str]] = {}
    for table in tables:
        owners.setdefault(index_name(prefix, table), []).append(table)
    return {index: names for index, names in owners.items() if len(set(names)) > 1}


# ------------------------------------------------------------------------------ _source names


def source_document(image: Item) -> dict[str, Any]:
    """The ``_source`` of an item image: :func:`to_plain_json`, top-level names by
    :func:`source_name`."""
    plain = to_plain_json(image)
    if not any(needs_renaming(name) for name in plain):
        return plain
    return {source_name(name): value for name, value in plain.items()}


# ------------------------------------------------------------------------------------- doc ids


def doc_id(keys: Item) -> str:
    """The ``_id`` of the item with primary key ``keys``; readable when short, hashed when long.

    Key values in attribute-name order, joined by ``|``: S as is with ``% | ~`` percent-escaped,
    N in canonical decimal (``1.0`` and ``1`` are one item), B as URL-safe base64. A table's key
    schema (names and types) never changes, so this is injective over one table's keys. Over 512
    UTF-8 bytes the id is ``~sha256:`` + the hex digest of that text instead.
    """
    if not 1 <= len(keys) <= 2:
        raise ContractError(f"a primary key has one or two attributes, not {len(keys)}")
    parts = [_id_part(name, keys[name]) for name in sorted(keys)]
    text = parts[0] if len(parts) == 1 else _ID_SEPARATOR.join(parts)
    if len(text) * 4 <= MAX_ID_BYTES:  # at most 4 UTF-8 bytes per character: no need to encode
        return text
    encoded = text.encode("utf-8")
    if len(encoded) <= MAX_ID_BYTES:
        return text
    return HASHED_ID_PREFIX + hashlib.sha256(encoded).hexdigest()


def _id_part(name: str, value: AttributeValue) -> str:
    if len(value) == 1:
        if (text := value.get("S")) is not None and isinstance(text, str) and text:
            return text.translate(_ID_ESCAPES) if _needs_escape(text) else text
        if (number := value.get("N")) is not None:
            return normalize_number(number)
        if isinstance(raw := value.get("B"), bytes | bytearray) and raw:
            return base64.urlsafe_b64encode(raw).decode("ascii")
    raise ContractError(
        f"key attribute {name} must be a non-empty S, N or B value, not {value!r:.80}"
    )


def _needs_escape(text: str) -> bool:
    return "%" in text or "|" in text or "~" in text


# ------------------------------------------------------------------------------- plain JSON


def to_plain_json(item: Item) -> dict[str, Any]:
    """DynamoDB typed JSON -> the plain JSON document (rules in docs/indexer.md).

    S string; N number when exact (below) else its canonical decimal string; B base64; BOOL;
    NULL null; M object; L array; SS/NS/BS arrays sorted by value (sets have no order, and a
    replayed image must give the same document).

    Every value is checked as it is converted, exactly as ``validate_item`` checks it, so an
    image decoded without validation (``decode(..., validate=False)``) is safe here: a malformed
    one raises :class:`ContractError` naming the attribute, never a stray ``TypeError``.
    """
    try:
        return _plain_map(item)
    except (_NotPlainError, ContractError, RecursionError):
        validate_item(item)  # the reference check names the path of the first malformed value
        raise ContractError("item is not DynamoDB typed JSON") from None


class _NotPlainError(Exception):
    """Something below is malformed; ``to_plain_json`` asks ``validate_item`` for the details."""


def _plain_map(item: Item) -> dict[str, Any]:
    # The hot path: strings and numbers are most attributes, so they are checked and converted
    # inline rather than through a call per value (a third of the conversion time).
    if type(item) is not dict:
        raise _NotPlainError
    plain: dict[str, Any] = {}
    for name, value in item.items():
        if type(name) is not str or type(value) is not dict or len(value) != 1:
            raise _NotPlainError
        if "S" in value:
            if type(text := value["S"]) is not str:
                raise _NotPlainError
            plain[name] = text
        elif "N" in value:
            if type(number := value["N"]) is not str:
                raise _NotPlainError
            plain[name] = plain_number(number)
        else:
            plain[name] = _plain(value)
    return plain


def _plain(value: AttributeValue) -> Any:
    # Membership tests on the one-key dict, most frequent types first.
    if type(value) is not dict or len(value) != 1:
        raise _NotPlainError
    if "S" in value:
        if type(text := value["S"]) is not str:
            raise _NotPlainError
        return text
    if "N" in value:
        if type(number := value["N"]) is not str:
            raise _NotPlainError
        return plain_number(number)
    if "M" in value:
        return _plain_map(value["M"])
    if "L" in value:
        if type(members := value["L"]) is not list:
            raise _NotPlainError
        return [_plain(member) for member in members]
    if "BOOL" in value:
        if type(flag := value["BOOL"]) is not bool:
            raise _NotPlainError
        return flag
    if "NULL" in value:
        if value["NULL"] is not True:
            raise _NotPlainError
        return None
    return _plain_set_or_binary(value)


def _plain_set_or_binary(value: AttributeValue) -> Any:
    if _is_set(strings := value.get("SS"), str):
        return sorted(strings)
    if _is_set(numbers := value.get("NS"), str):
        return _plain_number_set(numbers)
    if type(binary := value.get("B")) is bytes:
        return base64.b64encode(binary).decode("ascii")
    if _is_set(binaries := value.get("BS"), bytes):
        return [base64.b64encode(member).decode("ascii") for member in sorted(binaries)]
    raise _NotPlainError


def _plain_number_set(numbers: list[str]) -> list[Any]:
    """An NS as its members by value, each by the number rule; members that name one number
    (``1`` and ``1.0``) are not a set."""
    plain = [plain_number(member) for member in numbers]
    if str not in set(map(type, plain)):
        # Ints and floats from plain_number are exact: they compare and sort by value.
        if len(set(plain)) != len(plain):
            raise _NotPlainError
        return sorted(plain)
    if len({normalize_number(member) for member in numbers}) != len(numbers):
        raise _NotPlainError
    return [plain_number(member) for member in sorted(numbers, key=Decimal)]


def _is_set(payload: Any, member_type: type) -> TypeGuard[list[Any]]:
    """A DynamoDB set: a non-empty list of distinct members of one type."""
    return (
        type(payload) is list
        and bool(payload)
        and set(map(type, payload)) == {member_type}
        and len(set(payload)) == len(payload)
    )


# --------------------------------------------------------------------------------- actions


def build_action(
    event: ChangeEvent,
    index_prefix: str,
    rules: TypedFieldRules | None = None,
    indices: Mapping[str, str] | None = None,
) -> Action:
    """INSERT/MODIFY (stream or snapshot) -> index the whole new image; REMOVE -> delete.

    The document is the image's ``_source`` (:func:`source_document`) and its typed fields
    (``consumers.indexer.typed_fields``), which the body carries only into managed indices.
    The index is the table's alias, or ``indices[table]`` (a reindex fills a new generation).
    """
    index = indices.get(event.table) if indices else None
    if index is None:
        index = index_name(index_prefix, event.table)
    if event.event_name is EventName.REMOVE:
        return Action(
            ActionKind.DELETE,
            index,
            doc_id(event.keys),
            event.version,
            None,
            event_time_ms=event.approximate_creation_time_ms,
        )
    image = event.new_image
    if image is None:
        raise ContractError(
            f"{event.event_name} event {event.event_id} of table {event.table} has no new image"
        )
    document, typed = indexed_document(image, rules or _DEFAULT_RULES)
    return Action(
        ActionKind.INDEX,
        index,
        doc_id(event.keys),
        event.version,
        document,
        typed.fields,
        tuple(typed.fallbacks),
        event.approximate_creation_time_ms,
    )


_DEFAULT_RULES = TypedFieldRules()


# ---------------------------------------------------------------- _source and typed fields


def indexed_document(image: Item, rules: TypedFieldRules) -> tuple[dict[str, Any], TypedDocument]:
    """The ``_source`` of ``image`` (:func:`source_document`) and its typed fields
    (``typed_fields.typed_from_source`` of the image under its ``_source`` names), in one walk.

    The indexer's hot path: each top-level value is checked and converted once, and its typed
    leaves reuse the converted value. A malformed image raises :class:`ContractError` exactly as
    :func:`to_plain_json` does.
    """
    try:
        return _indexed_document(image, rules)
    except (_NotPlainError, ContractError, RecursionError):
        validate_item(image)  # the reference check names the path of the first malformed value
        raise ContractError("item is not DynamoDB typed JSON") from None


def _indexed_document(image: Item, rules: TypedFieldRules) -> tuple[dict[str, Any], TypedDocument]:
    if type(image) is not dict:
        raise _NotPlainError
    source: dict[str, Any] = {}
    typed = TypedDocument({})
    fields = typed.fields
    dates = rules.date_attributes
    for name, value in image.items():
        if type(name) is not str or type(value) is not dict or len(value) != 1:
            raise _NotPlainError
        names = _NAMES.get(name)
        if names is None:
            names = _names(name)
        stored, shadow = names
        # Strings and numbers are most attributes: converted and given their leaf inline.
        if "S" in value:
            if type(text := value["S"]) is not str:
                raise _NotPlainError
            source[stored] = text
            leaves: dict[str, Any] = {"S": text}
        elif "N" in value:
            if type(number := value["N"]) is not str:
                raise _NotPlainError
            plain = source[stored] = plain_number(number)
            leaves = {"N": plain}
        else:
            plain = source[stored] = _plain(value)
            ((tag, payload),) = value.items()
            leaves = typed_leaves(stored, tag, payload, plain, rules, typed.fallbacks)
            if leaves:
                fields[shadow] = leaves
            continue
        if dates and stored in dates:
            add_dates(leaves)
        fields[shadow] = leaves
    return source, typed


_NAMES: dict[str, tuple[str, str]] = {}
"""Attribute name -> (its ``_source`` name, its key under ``ddb``): names repeat on every item."""
_MAX_NAMES = 65536


def _names(name: str) -> tuple[str, str]:
    if len(_NAMES) >= _MAX_NAMES:  # attribute names that are data: do not grow without bound
        _NAMES.clear()
    stored = source_name(name)
    names = _NAMES[name] = (stored, shadow_key(stored))
    return names
