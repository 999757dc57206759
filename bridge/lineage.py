"""Shard lineage: a child shard is read only after each parent's SHARD_END checkpoint.

A parent that has no lease, or that is absent from the stream's latest listing (trimmed after
24 h), never blocks its child. A child that has not checkpointed yet inherits the largest
final version of its parents, so versions never decrease along a lineage.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace

from bridge.leases import LATEST, SHARD_END, TRIM_HORIZON, Lease, lease_key, new_lease
from bridge.shards import Shard, StreamInfo


def children(shards: Iterable[Shard]) -> dict[str, list[Shard]]:
    """Parent shard id -> the shards naming it as parent."""
    tree: dict[str, list[Shard]] = {}
    for shard in shards:
        if shard.parent_shard_id is not None:
            tree.setdefault(shard.parent_shard_id, []).append(shard)
    return tree


def children_of(parent_shard_id: str, shards: Iterable[Shard]) -> list[Shard]:
    """Filter a DescribeStream answer: emulators may ignore ShardFilter and return every shard."""
    return [shard for shard in shards if shard.parent_shard_id == parent_shard_id]


def _has_leased_descendant(
    shard_id: str, tree: Mapping[str, Sequence[Shard]], leased: Collection[str]
) -> bool:
    stack = [shard_id]
    visited: set[str] = set()
    while stack:
        current = stack.pop()
        for child in tree.get(current, ()):
            if child.shard_id in leased:
                return True
            if child.shard_id not in visited:
                visited.add(child.shard_id)
                stack.append(child.shard_id)
    return False


def new_leases(
    info: StreamInfo,
    shards: Sequence[Shard],
    existing: Iterable[Lease],
    *,
    start_latest: bool,
) -> list[Lease]:
    """Leases to create for the shards of one stream that have none yet.

    Every new shard starts at TRIM_HORIZON (a rotation child must never skip its backlog),
    except at the very first start of a stream with no lease at all when ``start_latest``:
    then open shards start at LATEST and closed ones are recorded as finished (SHARD_END), so
    they are never read later. A shard with a leased descendant is history, not new: it is
    not leased again (it reappeared in an inconsistent page, or its lease was cleaned up).
    """
    leased = {lease.shard_id for lease in existing if lease.stream_arn == info.stream_arn}
    first_start = not leased
    tree = children(shards)
    created: list[Lease] = []
    for shard in shards:
        if shard.shard_id in leased or _has_leased_descendant(shard.shard_id, tree, leased):
            continue
        if first_start and start_latest:
            checkpoint = LATEST if shard.is_open else SHARD_END
        else:
            checkpoint = TRIM_HORIZON
        parents = () if shard.parent_shard_id is None else (shard.parent_shard_id,)
        created.append(new_lease(info.table, info.stream_arn, shard.shard_id, parents, checkpoint))
    return created


def blocking_parents(
    lease: Lease, leases: Mapping[str, Lease], present: Collection[str]
) -> list[str]:
    """Parent shard ids that still hold ``lease`` back: leased, listed, and not at SHARD_END."""
    blocking = []
    for parent_id in lease.parent_shard_ids:
        parent = leases.get(lease_key(lease.stream_arn, parent_id))
        if parent is not None and parent_id in present and not parent.finished:
            blocking.append(parent_id)
    return blocking


def inherited(lease: Lease, leases: Mapping[str, Lease]) -> Lease:
    """The lease with the version it resumes from: its own, or its parents' final one."""
    if lease.started:
        return lease
    parent_versions = [
        parent.last_version
        for parent_id in lease.parent_shard_ids
        if (parent := leases.get(lease_key(lease.stream_arn, parent_id))) is not None
    ]
    return replace(lease, last_version=max([lease.last_version, *parent_versions]))


def readable(
    held: Iterable[Lease],
    leases: Mapping[str, Lease],
    present: Mapping[str, Collection[str]],
) -> list[Lease]:
    """Held leases that may be read now, each carrying the version it resumes from.

    ``leases`` are all known leases by key; ``present`` maps a stream ARN to the shard ids of
    its latest listing.
    """
    ready = []
    for lease in held:
        listed = present.get(lease.stream_arn)
        if lease.finished or listed is None:  # unlisted stream: cannot tell a parent is gone
            continue
        if blocking_parents(lease, leases, listed):
            continue
        ready.append(inherited(lease, leases))
    return ready


def deletable(leases: Iterable[Lease], present: Mapping[str, Collection[str]]) -> list[Lease]:
    """Finished leases whose shard left the stream and whose children all have started.

    Keeping a parent until every child has checkpointed keeps the version it passes on; a
    shard still listed keeps its lease, or the next sync would read it again from TRIM_HORIZON.
    """
    all_leases = list(leases)
    started_children: dict[str, list[bool]] = {}
    for lease in all_leases:
        for parent_id in lease.parent_shard_ids:
            key = lease_key(lease.stream_arn, parent_id)
            started_children.setdefault(key, []).append(lease.started)
    return [
        lease
        for lease in all_leases
        if lease.finished
        and lease.stream_arn in present
        and lease.shard_id not in present[lease.stream_arn]
        and started_children.get(lease.lease_key)
        and all(started_children[lease.lease_key])
    ]
