"""From a consumed record to a batch entry: decode the event, build its action, or name the poison.

A record that cannot become an action (bytes that are not a change event, an event that breaks
the contract) raises :class:`Poison` with the error type its dead letter will carry; it is never
dropped and never stops the loop.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from bridge.contract import ChangeEvent, ContractError
from consumers.indexer.actions import Action
from consumers.indexer.batching import Entry
from consumers.indexer.documents import build_action
from consumers.indexer.records import Record
from consumers.indexer.typed_fields import TypedFieldRules

UNDECODABLE = "undecodable"
"""Dead-letter error type of bytes that are not a change event."""
INVALID_CHANGE = "invalid_change"
"""Dead-letter error type of a decoded event no action can be built from."""


@dataclass(frozen=True, slots=True)
class Change:
    """What a batch entry carries: the record (for a dead letter) and the action built from it."""

    record: Record
    action: Action
    table: str
    event_time_ms: int
    dead_lettered: bool = False
    """Dead-lettered already: the action is the delete of the older version it leaves behind."""


class Poison(Exception):  # noqa: N818 - a kind of record, not a failure of the loop
    def __init__(self, error_type: str, reason: str) -> None:
        super().__init__(reason)
        self.error_type = error_type


def to_entry(
    record: Record,
    decode: Callable[[bytes], ChangeEvent],
    index_prefix: str,
    rules: TypedFieldRules | None = None,
    indices: Mapping[str, str] | None = None,
) -> Entry[Change]:
    """The batch entry of ``record``; raises :class:`Poison` when it cannot be indexed.

    ``SchemaLookupError`` passes through: the record names a schema that cannot be had now,
    which is not its fault, so it must not become a dead letter.

    Its size is the record's key and value bytes: what the batch byte limit counts. (The JSON
    sent is typically 1.5-2x the Avro bytes: leave headroom under a hard request limit.)
    """
    if record.value is None:
        raise Poison(UNDECODABLE, "record has no value (a tombstone is not a change event)")
    try:
        event = decode(record.value)
    except ContractError as error:
        raise Poison(UNDECODABLE, str(error)) from None
    try:
        action = build_action(event, index_prefix, rules, indices)
    except (ContractError, ValueError) as error:
        raise Poison(INVALID_CHANGE, str(error)) from None
    change = Change(record, action, event.table, event.approximate_creation_time_ms)
    size = len(record.value) + len(record.key or b"")
    return Entry(
        record.source, record.offset, action.index, action.doc_id, action.version, size, change
    )
