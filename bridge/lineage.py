"""Shard lineage: a child shard is read only after each parent's SHARD_END checkpoint.

A parent holds its child back until its lease row says SHARD_END, whatever this worker's
DescribeStream listing shows (a listing can be stale). A parent without a lease row holds it
back too, unless the service said that shard no longer exists (``gone``: trimmed after 24 h).
A child's lease is created only once its parents are finished or gone, so a child never
exists, is taken or is read ahead of a parent. A child that has not checkpointed yet inherits
the largest *final* (SHARD_END) version of its parents, so versions never decrease along a
lineage.

    parent's state        lease row            listing / service        child
    FINISHED              SHARD_END            any                      may start (inherits)
    UNFINISHED            any other            any (even absent)        waits
    UNLEASED              none                 listed, or not known     waits (its lease comes
                                               to be gone               first); a child that
                                                                        already checkpointed
                                                                        does not wait
    GONE                  none                 absent, and the service  starts as a lineage root
                                               says the shard is gone
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace

from bridge.leases import LATEST, SHARD_END, TRIM_HORIZON, Lease, lease_key, new_lease
from bridge.shards import Shard, StreamInfo


class ParentState(enum.Enum):
    FINISHED = "finished"
    UNFINISHED = "unfinished"
    UNLEASED = "unleased"
    GONE = "gone"


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


def parents_first(shards: Sequence[Shard]) -> list[Shard]:
    """The listing reordered so that every listed parent comes before its children."""
    by_id = {shard.shard_id: shard for shard in shards}
    ordered: list[Shard] = []
    placed: set[str] = set()
    for shard in shards:
        chain: list[Shard] = []
        current: Shard | None = shard
        while current is not None and current.shard_id not in placed:
            chain.append(current)
            placed.add(current.shard_id)
            parent = current.parent_shard_id
            current = by_id.get(parent) if parent is not None else None
        ordered.extend(reversed(chain))
    return ordered


def _has_started_descendant(
    shard_id: str, tree: Mapping[str, Sequence[Shard]], leased: Mapping[str, Lease]
) -> bool:
    stack = [shard_id]
    visited: set[str] = set()
    while stack:
        current = stack.pop()
        for child in tree.get(current, ()):
            lease = leased.get(child.shard_id)
            if lease is not None and lease.started:
                return True
            if child.shard_id not in visited:
                visited.add(child.shard_id)
                stack.append(child.shard_id)
    return False


def parent_state(
    stream_arn: str, parent_id: str, leases: Mapping[str, Lease], gone: Collection[str]
) -> ParentState:
    """What a parent means for its child (``leases`` by key, ``gone``: shard ids of the stream)."""
    parent = leases.get(lease_key(stream_arn, parent_id))
    if parent is not None:
        return ParentState.FINISHED if parent.finished else ParentState.UNFINISHED
    return ParentState.GONE if parent_id in gone else ParentState.UNLEASED


def parents_to_probe(
    shards: Sequence[Shard], existing: Iterable[Lease], gone: Collection[str]
) -> set[str]:
    """Parents that are neither listed, leased nor known to be gone, but that a listed shard
    without a lease, or a lease that has not started, names: ask the service whether they
    still exist (a listing may omit a shard)."""
    listed = {shard.shard_id for shard in shards}
    leased = {lease.shard_id: lease for lease in existing}
    named = {
        shard.parent_shard_id
        for shard in shards
        if shard.parent_shard_id is not None and shard.shard_id not in leased
    }
    for lease in leased.values():
        if not lease.started:
            named.update(lease.parent_shard_ids)
    return {p for p in named if p not in listed and p not in leased and p not in gone}


def new_leases(
    info: StreamInfo,
    shards: Sequence[Shard],
    existing: Iterable[Lease],
    *,
    start_latest: bool,
    gone: Collection[str] = frozenset(),
) -> list[Lease]:
    """Leases to create for the shards of one stream that have none yet, parents first.

    A shard gets a lease only when it is a root, or its parent is finished (SHARD_END) or gone;
    the child of an unfinished parent is leased by the parent's ``shard_end`` (or a later sync).
    Every new shard starts at TRIM_HORIZON (a rotation child must never skip its backlog),
    except at the very first start of a stream with no lease at all when ``start_latest``:
    then open shards start at LATEST and closed ones are recorded as finished (SHARD_END), so
    they are never read later. A shard with a descendant that has already checkpointed is
    history, not new: it is not leased again (it reappeared in an inconsistent page after its
    lease was cleaned up).
    """
    leased = {lease.shard_id: lease for lease in existing if lease.stream_arn == info.stream_arn}
    first_start = not leased
    listed = {shard.shard_id for shard in shards}
    tree = children(shards)
    finished: set[str] = {shard_id for shard_id, lease in leased.items() if lease.finished}
    created: list[Lease] = []
    for shard in parents_first(shards):
        if shard.shard_id in leased:
            continue
        if _has_started_descendant(shard.shard_id, tree, leased):
            finished.add(shard.shard_id)  # its descendants started: it was finished long ago
            continue
        parent = shard.parent_shard_id
        waits = parent in listed or parent in leased or parent not in gone
        if parent is not None and parent not in finished and waits:
            continue  # unfinished, not leased yet, or not known to be gone
        if first_start and start_latest:
            checkpoint = LATEST if shard.is_open else SHARD_END
        else:
            checkpoint = TRIM_HORIZON
        if checkpoint == SHARD_END:
            finished.add(shard.shard_id)
        parents = () if parent is None else (parent,)
        created.append(new_lease(info.table, info.stream_arn, shard.shard_id, parents, checkpoint))
    return created


def blocking_parents(
    lease: Lease, leases: Mapping[str, Lease], gone: Collection[str] = frozenset()
) -> list[str]:
    """Parent shard ids that still hold ``lease`` back (see the table in the module docstring)."""
    blocking = []
    for parent_id in lease.parent_shard_ids:
        state = parent_state(lease.stream_arn, parent_id, leases, gone)
        if state is ParentState.UNFINISHED or (state is ParentState.UNLEASED and not lease.started):
            blocking.append(parent_id)
    return blocking


def inherited(lease: Lease, leases: Mapping[str, Lease]) -> Lease:
    """The lease with the version it resumes from: its own, or its finished parents' final one.

    Only a SHARD_END checkpoint holds a parent's final version; a mid-shard checkpoint is older
    than the parent's last records, and inheriting it would let a child's change of an item get
    a lower version than the parent's last change of that item.
    """
    if lease.started:
        return lease
    parent_versions = [
        parent.last_version
        for parent_id in lease.parent_shard_ids
        if (parent := leases.get(lease_key(lease.stream_arn, parent_id))) is not None
        and parent.finished
    ]
    return replace(lease, last_version=max([lease.last_version, *parent_versions]))


def readable(
    held: Iterable[Lease],
    leases: Mapping[str, Lease],
    present: Mapping[str, Collection[str]],
    gone: Mapping[str, Collection[str]] | None = None,
) -> list[Lease]:
    """Held leases that may be read now, each carrying the version it resumes from.

    ``leases`` are all known leases by key; ``present`` maps a stream ARN to the shard ids of
    its latest listing (a stream never listed yet reads nothing); ``gone`` maps it to the shard
    ids the service said no longer exist.
    """
    ready = []
    for lease in held:
        if lease.finished or lease.stream_arn not in present:
            continue
        stream_gone = (gone or {}).get(lease.stream_arn, frozenset())
        if blocking_parents(lease, leases, stream_gone):
            continue
        ready.append(inherited(lease, leases))
    return ready


def deletable(leases: Iterable[Lease], present: Mapping[str, Collection[str]]) -> list[Lease]:
    """Finished leases whose shard left the stream and whose children all have started.

    Keeping a parent until every child has checkpointed keeps the version it passes on; a
    shard still listed keeps its lease, or the next sync would read it again from TRIM_HORIZON.
    A lease that recorded a gap is kept: it is the record of that gap.
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
        and not lease.gaps
        and lease.stream_arn in present
        and lease.shard_id not in present[lease.stream_arn]
        and started_children.get(lease.lease_key)
        and all(started_children[lease.lease_key])
    ]
