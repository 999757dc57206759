"""Checkpoint sanity: a lease resumes only from a position of its own shard, in the table's
current stream.

A sequence-number checkpoint outside its shard's listed range (before its first sequence number,
or after the last one of a closed shard), or an unfinished lease of an older stream of the table
(the stream was disabled and re-enabled: a new ARN), cannot be resumed: the records after it
were not read. It is never skipped silently: the caller logs an ERROR, counts a gap and applies
``bridge.trimmed_policy`` (``fail`` stops the process; ``skip`` records the gap in the lease row
and reads the shard again from TRIM_HORIZON, or finishes the older stream's lease).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from bridge.leases import SENTINELS, SHARD_END, TRIM_HORIZON, Lease
from bridge.shards import Shard


class UnusableCheckpointError(Exception):
    """A checkpoint cannot be resumed from and ``bridge.trimmed_policy`` is ``fail``."""


class Remedy(enum.Enum):
    RESTART = "read the shard again from TRIM_HORIZON"
    FINISH = "finish the lease (SHARD_END)"


@dataclass(frozen=True, slots=True)
class Unusable:
    """A lease whose checkpoint cannot be resumed, what was lost, and what ``skip`` does."""

    lease: Lease
    gap: str
    remedy: Remedy


def out_of_range(lease: Lease, shard: Shard | None) -> str | None:
    """Why ``lease``'s checkpoint is no position in ``shard`` (its listing), or None."""
    if shard is None or lease.checkpoint in SENTINELS or not lease.checkpoint.isdigit():
        return None
    position = int(lease.checkpoint)
    if position < int(shard.starting_sequence_number):
        return f"before the shard's first sequence number {shard.starting_sequence_number}"
    ending = shard.ending_sequence_number
    if ending is not None and position > int(ending):
        return f"after the closed shard's last sequence number {ending}"
    return None


def unusable(
    held: Iterable[Lease],
    shards: Mapping[str, Shard],
    others: Iterable[Lease],
    current: Mapping[str, str],
) -> list[Unusable]:
    """Held leases checkpointed outside their shard, and unfinished leases of older streams.

    ``shards`` are the listed shards by lease key; ``others`` are lease rows of streams this
    worker does not read; ``current`` maps each table read to its current stream ARN.
    """
    found = []
    for lease in held:
        why = out_of_range(lease, shards.get(lease.lease_key))
        if why is not None:
            gap = (
                f"{lease.table} shard {lease.shard_id}: checkpoint {lease.checkpoint} is {why}; "
                "the records after the last one read are lost if the checkpoint is not from "
                "this shard"
            )
            found.append(Unusable(lease, gap, Remedy.RESTART))
    for lease in others:
        arn = current.get(lease.table)
        if arn is None or lease.stream_arn == arn or lease.finished:
            continue
        gap = (
            f"{lease.table} shard {lease.shard_id} of an older stream {lease.stream_arn} (the "
            f"table now streams to {arn}: disabled and re-enabled) was left unfinished at "
            f"{lease.checkpoint}: its records after that were not read"
        )
        found.append(Unusable(lease, gap, Remedy.FINISH))
    return found


def repaired(problem: Unusable) -> Lease:
    """The row ``skip`` writes: the gap recorded, and the shard restarted or finished.

    A restarted lease keeps its ``last_version``, so the versions of the re-read records go on
    increasing along the lineage.
    """
    lease = problem.lease
    checkpoint = TRIM_HORIZON if problem.remedy is Remedy.RESTART else SHARD_END
    return replace(
        lease, checkpoint=checkpoint, gaps=(*lease.gaps, problem.gap), counter=lease.counter + 1
    )
