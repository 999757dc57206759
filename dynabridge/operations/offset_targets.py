"""Where ``replay --to`` moves a consumer group, per partition, and when it must refuse.

A target resolves to a real offset in ``[low watermark, end]`` of each partition: Kafka
refuses negative offsets in an admin commit, so the sentinels ``earliest``/``latest`` are
looked up first. An admin commit is refused while the group has members, so the plan is only
applied to an empty group.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


class TargetError(ValueError):
    """``--to`` is not a position; the message lists the accepted forms."""


class TargetKind(enum.StrEnum):
    EARLIEST = "earliest"
    LATEST = "latest"
    TIMESTAMP = "timestamp"
    OFFSET = "offset"


@dataclass(frozen=True, slots=True)
class OffsetTarget:
    kind: TargetKind
    value: int | None = None
    """Epoch milliseconds for TIMESTAMP, the offset for OFFSET."""

    def describe(self) -> str:
        if self.kind is TargetKind.TIMESTAMP:
            assert self.value is not None
            when = dt.datetime.fromtimestamp(self.value / 1000, dt.UTC)
            return f"the first record at or after {when.isoformat()}"
        if self.kind is TargetKind.OFFSET:
            return f"offset {self.value}"
        return self.kind.value


_FORMS = (
    "earliest, latest, an ISO 8601 datetime with a timezone (2024-05-01T12:00:00Z), or an offset"
)


def parse_target(text: str) -> OffsetTarget:
    """``--to`` as a target; a datetime must carry its timezone (a naive one is ambiguous)."""
    value = text.strip()
    if value.lower() in (TargetKind.EARLIEST, TargetKind.LATEST):
        return OffsetTarget(TargetKind(value.lower()))
    if value.isdigit():
        return OffsetTarget(TargetKind.OFFSET, int(value))
    if value.startswith("-") and value[1:].isdigit():
        raise TargetError(f"--to {text}: offsets are 0 or more; use earliest for the first one")
    try:
        when = dt.datetime.fromisoformat(value)
    except ValueError:
        raise TargetError(f"--to {text!r} is not a position: give {_FORMS}") from None
    if when.tzinfo is None:
        raise TargetError(
            f"--to {text!r} has no timezone: add one, e.g. {value}Z for UTC or {value}+02:00"
        )
    return OffsetTarget(TargetKind.TIMESTAMP, int(when.timestamp() * 1000))


@dataclass(frozen=True, slots=True)
class Watermarks:
    low: int
    """The earliest offset still held (retention deletes below it)."""
    high: int
    """The end: the offset the next record will get."""


@dataclass(frozen=True, slots=True)
class Move:
    partition: int
    old: int | None
    """The committed offset, None when the group never committed on this partition."""
    new: int
    clamped: bool = False
    """An explicit offset was outside [low, end] and was moved to the nearest bound."""


def resolved_offset(
    target: OffsetTarget, marks: Watermarks, for_timestamp: int | None = None
) -> tuple[int, bool]:
    """The offset ``target`` names in a partition, and whether it had to be clamped.

    ``for_timestamp`` is Kafka's answer to ListOffsets by time: the first offset whose record
    timestamp is at or after the target, or -1 when every record is older (then: the end).
    """
    if target.kind is TargetKind.EARLIEST:
        return marks.low, False
    if target.kind is TargetKind.LATEST:
        return marks.high, False
    if target.kind is TargetKind.TIMESTAMP:
        if for_timestamp is None:
            raise ValueError("a timestamp target needs the ListOffsets answer by time")
        if for_timestamp < 0:
            return marks.high, False
        return max(marks.low, min(for_timestamp, marks.high)), False
    assert target.value is not None
    offset = max(marks.low, min(target.value, marks.high))
    return offset, offset != target.value


def plan(
    target: OffsetTarget,
    marks: Mapping[int, Watermarks],
    committed: Mapping[int, int | None],
    for_timestamp: Mapping[int, int] | None = None,
) -> list[Move]:
    """One move per partition of the topic, in partition order."""
    moves: list[Move] = []
    for partition in sorted(marks):
        found = None if for_timestamp is None else for_timestamp.get(partition, -1)
        new, clamped = resolved_offset(target, marks[partition], found)
        moves.append(Move(partition, committed.get(partition), new, clamped))
    return moves


@dataclass(frozen=True, slots=True)
class Member:
    member_id: str
    client_id: str
    host: str
    partitions: tuple[str, ...]
    """Assigned partitions as ``topic[n]``."""


@dataclass(frozen=True, slots=True)
class GroupInfo:
    group_id: str
    state: str
    """Kafka's group state name: EMPTY, STABLE, PREPARING_REBALANCE, DEAD, ..."""
    members: tuple[Member, ...]


def refusal(group: GroupInfo, session_timeout_ms: int) -> str | None:
    """Why the group's offsets cannot be reset now, or None when they can."""
    if not group.members:
        return None
    lines = [
        f"group {group.group_id!r} has {len(group.members)} live member(s) (state "
        f"{group.state}); Kafka refuses to reset the offsets of a group in use:"
    ]
    for member in group.members:
        owned = ", ".join(member.partitions) or "no partitions"
        lines.append(f"  {member.client_id} on {member.host} ({member.member_id}): {owned}")
    lines.append(
        "Stop every `dynabridge index run` of this group first (SIGTERM leaves the group at "
        "once). A SIGKILLed member stays listed until its session times out "
        f"(indexer.session_timeout_ms = {session_timeout_ms} ms): wait, then try again."
    )
    return "\n".join(lines)


def summary(moves: Sequence[Move]) -> tuple[int, int]:
    """(records the group will re-read, records it will skip) over all partitions."""
    back = sum(m.old - m.new for m in moves if m.old is not None and m.new < m.old)
    ahead = sum(m.new - m.old for m in moves if m.old is not None and m.new > m.old)
    return back, ahead
