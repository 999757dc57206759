"""Top-level attribute names as ``_source`` holds them: every name kept, unless the engines
reserve or refuse it; then renamed by one injective rule (docs/indexer.md, "Names")."""

from __future__ import annotations

RENAMED_PREFIX = "~"
"""Starts every renamed top-level name; a name that starts with it is renamed too (injective)."""
RESERVED_NAMES = frozenset({"ddb"})
"""Top-level names dynabridge itself uses in the document (the typed fields' root)."""
_ESCAPED = str.maketrans({"%": "%25", ".": "%2E"})


def source_name(name: str) -> str:
    """A top-level attribute name as it is stored in ``_source``.

    Kept as it is, unless the engines reserve or refuse it at the top of a document: a name
    starting with ``_`` (metadata fields such as ``_id``, ``_source``, ``_routing``), empty or
    only white space, starting with ``.`` or holding ``..`` (no object path), dynabridge's own
    ``ddb``, or a name starting with ``~``. Those become ``~`` + the name with ``%``, ``.`` and
    white space percent-escaped: ``_id`` -> ``~_id``, ``.`` -> ``~%2E``, ``ddb`` -> ``~ddb``.
    Names inside maps are never renamed (the managed mapping does not parse them).
    """
    if not needs_renaming(name):
        return name
    escaped = name.translate(_ESCAPED)
    escaped = "".join(_percent(c) if c.isspace() else c for c in escaped)
    return RENAMED_PREFIX + escaped


def _percent(char: str) -> str:
    """URL-style: each UTF-8 byte as %XX (with ``%`` itself escaped, the result is injective)."""
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))


def needs_renaming(name: str) -> bool:
    """Whether :func:`source_name` changes ``name``."""
    return not name or name[0] in "_~." or ".." in name or name in RESERVED_NAMES or name.isspace()
