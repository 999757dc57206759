"""Per-shard in-flight tracking between "handed to Kafka" and "acknowledged by Kafka".

The checkpointable position is the last record of the contiguous acknowledged prefix: a record
acknowledged after an earlier one still in flight moves nothing. A delivery failure latches
(first error wins) and is fatal; once latched the position never advances again, so a shard is
never checkpointed past an undelivered record.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Position:
    """A record's place in its shard lineage: resume after it, continue from its version."""

    sequence_number: str
    version: int


class DeliveryError(Exception):
    """Kafka refused a record for good (after the producer's own retries): the process stops."""


class ShardAcks:
    """Records of one shard in send order, ``ordinal`` 0, 1, 2, ... as :meth:`sent` hands out."""

    __slots__ = ("_acked", "_acked_count", "_error", "_low", "_next", "_pending", "_position")

    def __init__(self) -> None:
        self._pending: dict[int, Position] = {}
        self._acked: set[int] = set()
        self._next = 0
        self._low = 0
        self._position: Position | None = None
        self._error: str | None = None
        self._acked_count = 0

    def sent(self, sequence_number: str, version: int) -> int:
        """Track a record just handed to the producer; returns its ordinal for :meth:`delivered`."""
        ordinal = self._next
        self._pending[ordinal] = Position(sequence_number, version)
        self._next = ordinal + 1
        return ordinal

    def delivered(self, ordinal: int, error: str | None) -> None:
        """The producer's verdict on one record (called from its delivery callback)."""
        if error is not None:
            if self._error is None:
                self._error = error
            return
        if ordinal not in self._pending or ordinal < self._low:
            return  # a second report for the same record would be a producer bug; ignore it
        self._acked.add(ordinal)
        self._acked_count += 1
        if self._error is not None:
            return
        while self._low in self._acked:
            self._acked.discard(self._low)
            self._position = self._pending.pop(self._low)
            self._low += 1

    def acknowledged(self) -> Position | None:
        """The last record of the contiguous acknowledged prefix (None: nothing acknowledged)."""
        return self._position

    def in_flight(self) -> int:
        """Records handed to the producer and not yet in the acknowledged prefix."""
        return self._next - self._low

    def acked_count(self) -> int:
        """Records acknowledged so far (for the published counter)."""
        return self._acked_count

    def error(self) -> str | None:
        """The first delivery error, latched."""
        return self._error

    def raise_if_failed(self, shard_id: str) -> None:
        if self._error is not None:
            raise DeliveryError(f"Kafka did not accept a record of shard {shard_id}: {self._error}")
