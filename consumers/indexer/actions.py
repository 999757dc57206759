"""What the indexer asks of a search engine, and what it answers: one bulk item each way.

An :class:`Action` always carries the change's version; backends write it with
``version_type=external_gte`` so an older change never overwrites a newer one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Any


class ActionKind(enum.StrEnum):
    INDEX = "index"
    DELETE = "delete"
    """The item is gone: into a managed index, a tombstone document at this version."""
    PURGE = "purge"
    """Remove an old tombstone for good (a real delete, conditional on its version)."""


@dataclass(frozen=True, slots=True)
class Action:
    kind: ActionKind
    index: str
    doc_id: str
    version: int
    """The event's version, written with ``version_type=external_gte``.

    ``external_gte`` rather than ``external``: an exact redelivery (same change, same version)
    is then an idempotent overwrite answered 2xx instead of a 409, and the bridge never gives two
    different changes of one item the same version (versions grow by at least 1 per record in a
    shard lineage), so "equal" always means "the same change".
    """
    document: dict[str, Any] | None
    """The ``_source`` (plain JSON) for INDEX, None for DELETE."""
    typed: dict[str, Any] | None = None
    """The typed fields (``ddb``), sent only into indices created with the managed mapping."""
    fallbacks: tuple[tuple[str, str], ...] = ()
    """(attribute, reason) where the item is not indexed as one field of its natural type."""
    event_time_ms: int = 0
    """The change's time: a managed index's tombstone records it (for purging old ones)."""

    def as_delete(self) -> Action:
        """A delete of this document at this action's version."""
        return Action(
            ActionKind.DELETE,
            self.index,
            self.doc_id,
            self.version,
            None,
            event_time_ms=self.event_time_ms,
        )

    def into(self, index: str) -> Action:
        """The same write into another index."""
        return replace(self, index=index)


@dataclass(frozen=True, slots=True)
class ItemResult:
    status: int
    """HTTP status of the bulk item; 0 when the request never reached the server for that item."""
    error_type: str | None
    """The engine's error type, e.g. ``version_conflict_engine_exception``; None on success."""
    reason: str | None
    index: str | None = None
    """The concrete index the engine wrote to (an alias resolved); None if it did not say."""
