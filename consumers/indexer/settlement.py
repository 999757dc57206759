"""A bulk's answer sorted by the outcome table: what settles, what is dead-lettered, what retries.

Invariant: every entry of the batch lands in exactly one bucket, in batch order; nothing is
dropped. The first FATAL item is kept to name it in the stop message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from consumers.indexer.actions import ActionKind, ItemResult
from consumers.indexer.batching import Batch, Entry
from consumers.indexer.changes import Change
from consumers.indexer.metrics import DocResult
from consumers.indexer.outcomes import Outcome, outcome


@dataclass(slots=True)
class Settlement:
    done: list[tuple[Entry[Change], DocResult]] = field(default_factory=list)
    dead: list[tuple[Entry[Change], ItemResult]] = field(default_factory=list)
    retry: list[Entry[Change]] = field(default_factory=list)
    """With ``attempts`` counted up."""
    fatal: list[tuple[Entry[Change], ItemResult]] = field(default_factory=list)


def settlement(
    batch: Batch[Change], results: Sequence[ItemResult], overrides: Mapping[str, str]
) -> Settlement:
    """Sort ``results`` (one per entry, same order) into the buckets of the outcome table."""
    if len(results) != len(batch.entries):
        raise ValueError(
            f"bulk answered {len(results)} items for {len(batch.entries)} actions; "
            "refusing to guess which is which"
        )
    sorted_ = Settlement()
    for item, result in zip(batch.entries, results, strict=True):
        kind = item.payload.action.kind
        verdict = outcome(kind, result, overrides)
        if verdict is Outcome.DONE:
            sorted_.done.append(
                (item, DocResult.DELETED if kind is ActionKind.DELETE else DocResult.INDEXED)
            )
        elif verdict is Outcome.STALE:
            sorted_.done.append((item, DocResult.STALE))
        elif verdict is Outcome.DLQ:
            sorted_.dead.append((item, result))
        elif verdict is Outcome.RETRY:
            sorted_.retry.append(replace(item, attempts=item.attempts + 1))
        else:
            sorted_.fatal.append((item, result))
    return sorted_
