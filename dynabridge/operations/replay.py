"""``dynabridge replay``: move the indexer group's committed offsets of one table's topic.

Only the committed offsets change; the group must be empty (no live member), and the new
offsets are real ones resolved by ListOffsets, within each partition's [low watermark, end].
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from dynabridge.operations.errors import OperationError
from dynabridge.operations.offset_targets import (
    GroupInfo,
    Move,
    OffsetTarget,
    TargetKind,
    Watermarks,
    plan,
    refusal,
    summary,
)


class GroupInUse(OperationError):  # noqa: N818 - the condition the operator must clear
    """The group has live members: Kafka would refuse, and they would overwrite the reset."""


class ReplayKafka(Protocol):
    def partitions(self, topic: str) -> list[int]: ...
    def watermarks(self, topic: str, partitions: Iterable[int]) -> dict[int, Watermarks]: ...
    def offsets_for_time(
        self, topic: str, partitions: Iterable[int], epoch_ms: int
    ) -> dict[int, int]: ...
    def committed(
        self, group: str, topic: str, partitions: Iterable[int]
    ) -> dict[int, int | None]: ...
    def group(self, group: str) -> GroupInfo: ...
    def alter(self, group: str, topic: str, offsets: Mapping[int, int]) -> None: ...


@dataclass(frozen=True, slots=True)
class ReplayResult:
    group: str
    topic: str
    target: OffsetTarget
    moves: list[Move]
    applied: bool
    refused: str | None = None
    """Why a dry run could not be applied now (live members), if so."""

    def as_json(self) -> dict[str, Any]:
        back, ahead = summary(self.moves)
        return {
            "group": self.group,
            "topic": self.topic,
            "to": self.target.describe(),
            "applied": self.applied,
            "refused": self.refused,
            "records_to_reread": back,
            "records_to_skip": ahead,
            "partitions": [
                {"partition": m.partition, "old": m.old, "new": m.new, "clamped": m.clamped}
                for m in self.moves
            ],
        }

    def text(self) -> str:
        verb = "reset" if self.applied else "would reset (dry run)"
        lines = [f"group {self.group} {verb} on {self.topic} to {self.target.describe()}:"]
        lines.append(f"  {'partition':>9}  {'old':>12}    {'new':>12}")
        for m in self.moves:
            old = "-" if m.old is None else str(m.old)
            note = "  (clamped to the partition's range)" if m.clamped else ""
            lines.append(f"  {m.partition:>9}  {old:>12} -> {m.new:>12}{note}")
        back, ahead = summary(self.moves)
        lines.append(f"  re-reads {back} record(s), skips {ahead} record(s)")
        if self.refused:
            lines.append("not applicable now: " + self.refused)
        return "\n".join(lines)


def replay(
    kafka: ReplayKafka,
    *,
    group: str,
    topic: str,
    target: OffsetTarget,
    session_timeout_ms: int,
    dry_run: bool,
) -> ReplayResult:
    """Plan the reset; apply it unless ``dry_run``; raise GroupInUse while members are live."""
    partitions = kafka.partitions(topic)
    reason = refusal(kafka.group(group), session_timeout_ms)
    if reason is not None and not dry_run:
        raise GroupInUse(reason)
    marks = kafka.watermarks(topic, partitions)
    committed = kafka.committed(group, topic, partitions)
    found = None
    if target.kind is TargetKind.TIMESTAMP:
        assert target.value is not None
        found = kafka.offsets_for_time(topic, partitions, target.value)
    moves = plan(target, marks, committed, found)
    if dry_run:
        return ReplayResult(group, topic, target, moves, applied=False, refused=reason)
    # A member may have joined since the check: Kafka then refuses per partition (alter raises).
    kafka.alter(group, topic, {m.partition: m.new for m in moves})
    return ReplayResult(group, topic, target, moves, applied=True)
