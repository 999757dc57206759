"""Commit tracking: which offset each partition may commit, as a pure function of what settled.

Invariant: the commit position of a partition is ``last settled offset + 1`` over the
contiguous settled prefix of the offsets received from it, so it never passes an offset that
was received and not yet settled (indexed, found stale, or acknowledged by the dead-letter
topic). Contiguity is over *received* offsets, not integers: compaction and transaction
markers leave gaps in a partition's offsets that no record will ever fill.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from consumers.indexer.records import Partition


@dataclass(slots=True)
class _PartitionState:
    received: deque[int] = field(default_factory=deque)
    """Offsets received and not yet passed by the position, ascending."""
    waiting: set[int] = field(default_factory=set)
    """The members of ``received``, for membership tests."""
    settled: set[int] = field(default_factory=set)
    """Members of ``received`` that settled out of order (behind an unsettled one)."""
    last_received: int | None = None
    position: int | None = None
    committed: int | None = None


class CommitTracker:
    """Per partition: offsets received, offsets settled, and the position safe to commit."""

    def __init__(self) -> None:
        self._partitions: dict[Partition, _PartitionState] = {}

    def received(self, partition: Partition, offset: int) -> None:
        """Record that ``offset`` was handed to the loop; offsets arrive ascending per partition."""
        state = self._partitions.get(partition)
        if state is None:
            state = self._partitions[partition] = _PartitionState()
        if state.last_received is not None and offset <= state.last_received:
            raise ValueError(
                f"{partition}: offset {offset} received after {state.last_received}; "
                "a partition delivers in order"
            )
        state.last_received = offset
        state.received.append(offset)
        state.waiting.add(offset)

    def settle(self, partition: Partition, offset: int) -> bool:
        """Mark ``offset`` settled; False when untracked (revoked partition, passed already)."""
        state = self._partitions.get(partition)
        if state is None or offset not in state.waiting:
            return False
        state.settled.add(offset)
        while state.received and state.received[0] in state.settled:
            head = state.received.popleft()
            state.settled.discard(head)
            state.waiting.discard(head)
            state.position = head + 1
        return True

    def position(self, partition: Partition) -> int | None:
        """The offset to commit (next to consume), or None when nothing has settled yet."""
        state = self._partitions.get(partition)
        return None if state is None else state.position

    def unsettled(self, partition: Partition) -> int:
        state = self._partitions.get(partition)
        return 0 if state is None else len(state.received) - len(state.settled)

    def due(self) -> dict[Partition, int]:
        """Positions that moved past what was last committed: what a commit should send."""
        return {
            partition: state.position
            for partition, state in self._partitions.items()
            if state.position is not None and state.position != state.committed
        }

    def committed(self, offsets: Mapping[Partition, int]) -> None:
        """Record that ``offsets`` were committed (acknowledged by the group coordinator)."""
        for partition, offset in offsets.items():
            state = self._partitions.get(partition)
            if state is not None:
                state.committed = offset

    def revoke(self, partitions: Iterable[Partition]) -> None:
        """Forget partitions this member no longer owns; their late settles are ignored."""
        for partition in partitions:
            self._partitions.pop(partition, None)

    def owns(self, partition: Partition) -> bool:
        """Whether ``partition`` is tracked (received something and was not revoked since)."""
        return partition in self._partitions

    def partitions(self) -> list[Partition]:
        return list(self._partitions)
