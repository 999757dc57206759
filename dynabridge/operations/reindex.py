"""``dynabridge reindex``: rebuild a table's index from its topic, with no downtime.

    plan ─▶ create generation N+1 (new mappings/settings) ─▶ fill: a consumer group of its own
    reads the topic from the earliest offset into N+1 ─▶ caught up ─▶ verify N+1 against the
    table ─▶ block writes to N ─▶ drain to the end offsets read after the block ─▶ refresh N+1
    ─▶ switch the alias to N+1 (one atomic ``_aliases`` call) ─▶ done (N kept read-only, or
    dropped with --drop-old)

Invariant (no search misses a document, no change is left only in N): once N refuses writes,
everything it holds came from records below the end offsets read after the block, and N+1
holds all of those (drained, refreshed) before the alias moves; the live indexer's writes
refused meanwhile are retried (its outcome table retries ``cluster_block_exception``) and land,
through the alias, in N+1. Versions make every double write idempotent. The rebuild's state
lives in N+1's ``_meta`` (phase, group, owner, a heartbeat): a rerun after a crash resumes it,
a second run while the heartbeat moves is refused.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from consumers.indexer.templates import generation_name
from dynabridge.operations.comparison import same
from dynabridge.operations.generations import Layout
from dynabridge.operations.index_reader import StoredDocument
from dynabridge.operations.offset_targets import Watermarks

HEARTBEAT_S = 5.0
"""How often a running rebuild moves its heartbeat."""
ALIVE_WATCH_S = 3 * HEARTBEAT_S
"""How long another run watches a heartbeat before presuming the rebuild dead."""


class Phase(enum.StrEnum):
    FILLING = "filling"
    BLOCKED = "blocked"
    """The old index refuses writes; the switch is next (a resume finishes it)."""
    DONE = "done"


class ReindexRefused(Exception):  # noqa: N818 - the operator's answer, like GroupInUse
    """Not safe or not possible now; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class Plan:
    table: str
    alias: str
    old: str | None
    """What searches read now (None: nothing yet)."""
    new: str
    group: str
    resume: bool
    """An unfinished rebuild of this generation is continued."""
    legacy: bool
    """The old index is a concrete index of the alias's name: the switch removes it."""
    history: str
    """How the topic holds the table's whole history (or why not)."""

    def as_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "alias": self.alias,
            "from": self.old,
            "to": self.new,
            "group": self.group,
            "resume": self.resume,
            "legacy_index_removed_at_switch": self.legacy,
            "history": self.history,
        }

    def text(self) -> str:
        verb = "resume rebuilding" if self.resume else "rebuild"
        lines = [
            f"reindex {self.table}: {verb} {self.alias} into {self.new} "
            f"(searches read {self.old or 'nothing yet'} until the switch)",
            f"  consumer group {self.group}, from the earliest offset of the table's topic",
            f"  history: {self.history}",
        ]
        if self.legacy:
            lines.append(
                f"  {self.alias} is a concrete index: the atomic switch removes it and makes "
                f"{self.alias} an alias of {self.new}; a read-only copy of it stays as "
                f"{generation_name(self.alias, 0)}"
            )
        return "\n".join(lines)


def history_problem(
    lows: Mapping[int, int],
    cleanup_policy: str | None,
    oldest_retained_ms: int | None,
    backfills_started_ms: Sequence[int],
) -> tuple[str | None, str]:
    """(why the topic cannot rebuild the index, or None; how it can)."""
    if cleanup_policy is not None and cleanup_policy.split(",") == ["compact"]:
        return None, "the topic is compacted: it keeps the latest change of every item"
    if all(low == 0 for low in lows.values()):
        return None, "the topic holds every change since its first record"
    covered = [
        started
        for started in backfills_started_ms
        if oldest_retained_ms is not None and started >= oldest_retained_ms
    ]
    if covered:
        return None, (
            "retention removed the oldest changes, but a finished backfill (a snapshot of the "
            "table) was published after the oldest change still retained"
        )
    trimmed = ", ".join(f"p{p} from offset {low}" for p, low in sorted(lows.items()) if low)
    return (
        f"the topic no longer holds the table's whole history (retention removed the oldest "
        f"changes: {trimmed}): a rebuild from it would miss every item not changed since. Run "
        "`dynabridge backfill --table T` (it publishes a snapshot of the table into the topic), "
        "then reindex again",
        "",
    )


def lag(ends: Mapping[int, Watermarks], committed: Mapping[int, int | None]) -> dict[int, int]:
    """Records the rebuild's group has still to read, per partition."""
    return {
        partition: max(0, marks.high - max(committed.get(partition) or 0, marks.low))
        for partition, marks in ends.items()
    }


def eta_s(remaining: int, rate_per_s: float) -> float:
    return math.inf if rate_per_s <= 0 else remaining / rate_per_s


def caught_up(remaining: Mapping[int, int], threshold: int) -> bool:
    return sum(remaining.values()) <= threshold


def unsettled(
    ids: Iterable[str], new: Mapping[str, StoredDocument], live: Mapping[str, StoredDocument]
) -> list[str]:
    """Ids whose document the new generation does not hold as the live one does.

    A document of the new generation that differs from the table is a change still in flight
    when the live generation (fed from the same topic) holds the very same version and
    ``_source``: the pipeline has not delivered that change to either yet, and the switch loses
    nothing. Absent from both (deleted, or not indexed yet in either) counts as the same.
    """
    pending = []
    for doc_id in ids:
        ours, theirs = new.get(doc_id), live.get(doc_id)
        if ours is None and theirs is None:
            continue
        if (
            ours is None
            or theirs is None
            or ours.version != theirs.version
            or not same(ours.source, theirs.source)
        ):
            pending.append(doc_id)
    return pending


def alive(
    read_heartbeat: Callable[[], object], watch_s: float, sleep: Callable[[float], None]
) -> bool:
    """Whether a heartbeat moves within ``watch_s`` (a run is alive). The heartbeat is any
    value that a live run changes: the rebuild's (beat count, phase), so a run that finishes
    while watched counts as alive too."""
    first = read_heartbeat()
    step = min(1.0, watch_s / 5)
    for _ in range(math.ceil(watch_s / step)):
        sleep(step)
        if read_heartbeat() != first:
            return True
    return False


@dataclass(slots=True)
class Report:
    plan: Plan
    documents: int = 0
    fill_s: float = 0.0
    lag_at_switch: int = 0
    drained_s: float = 0.0
    verify: dict[str, Any] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)
    switched: bool = False
    kept: str | None = None
    """The index searches read before, kept read-only (None: dropped, or nothing before)."""

    def as_json(self) -> dict[str, Any]:
        return {
            **self.plan.as_json(),
            "switched": self.switched,
            "documents": self.documents,
            "fill_seconds": round(self.fill_s, 1),
            "lag_at_switch": self.lag_at_switch,
            "writes_blocked_seconds": round(self.drained_s, 1),
            "verify": self.verify,
            "dropped": self.dropped,
            "kept": self.kept,
        }

    def text(self) -> str:
        if not self.switched:
            return self.plan.text()
        dropped = f"; dropped {', '.join(self.dropped)}" if self.dropped else ""
        kept = f"; {self.kept} kept, read-only" if self.kept else ""
        return (
            f"reindex {self.plan.table}: {self.plan.alias} now reads {self.plan.new} "
            f"({self.documents} documents, filled in {self.fill_s:.1f}s, lag at the switch "
            f"{self.lag_at_switch} records, verify {self.verify.get('verdict', '?')}){kept}"
            f"{dropped}"
        )


class Topic(Protocol):
    def partitions(self, topic: str) -> list[int]: ...
    def watermarks(self, topic: str, partitions: Iterable[int]) -> dict[int, Watermarks]: ...
    def committed(
        self, group: str, topic: str, partitions: Iterable[int]
    ) -> dict[int, int | None]: ...


def progress_line(table: str, new: str, remaining: Mapping[int, int], rate_per_s: float) -> str:
    total = sum(remaining.values())
    per_partition = " ".join(f"p{p}:{n}" for p, n in sorted(remaining.items()))
    eta = eta_s(total, rate_per_s)
    eta_text = "-" if math.isinf(eta) else f"{eta:.0f}s"
    return (
        f"reindex {table}: filling {new}: lag {total} ({per_partition}), "
        f"{rate_per_s:.0f} changes/s, ETA {eta_text}"
    )


def next_layout_plan(
    table: str,
    layout: Layout,
    group_prefix: str,
    history: str,
    now_owner_alive: Callable[[int], bool],
) -> Plan:
    """The generation to build: an unfinished one (resumed unless its owner is alive), or a
    new one."""
    unfinished = sorted(
        number
        for number, meta in layout.generations.items()
        if meta.get("reindex", {}).get("phase") in (Phase.FILLING, Phase.BLOCKED)
    )
    if unfinished:
        number = unfinished[-1]
        if now_owner_alive(number):
            owner = layout.generations[number]["reindex"].get("owner", "?")
            raise ReindexRefused(
                f"a reindex of {table} is running ({_name(layout.alias, number)}, owner "
                f"{owner}, its heartbeat is moving): wait for it, or stop it first"
            )
        group = str(layout.generations[number]["reindex"].get("group"))
        return Plan(table, layout.alias, layout.current, _name(layout.alias, number), group,
                    True, layout.legacy, history)  # fmt: skip
    number = layout.next_generation
    return Plan(table, layout.alias, layout.current, _name(layout.alias, number),
                f"{group_prefix}.reindex.{number}", False, layout.legacy, history)  # fmt: skip


def _name(alias: str, number: int) -> str:
    return generation_name(alias, number)
