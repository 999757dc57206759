"""Re-applying dead letters once their cause is fixed: in order, idempotent, and never able to
bring back an item the table no longer has.

Each letter is decoded and applied as the indexer would (same document, same version, written
``external_gte``): a newer change already indexed wins (the letter is ``stale``), an equal one is
overwritten by itself. A letter whose item is gone from the table is skipped: the delete that
followed it may be older than the index's ``gc_deletes`` memory, and applying the letter would
resurrect the item.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bridge.contract import ChangeEvent, ContractError, EventName, Item, SchemaLookupError
from consumers.indexer.actions import Action, ItemResult
from consumers.indexer.documents import build_action
from consumers.indexer.outcomes import Outcome, outcome
from consumers.indexer.typed_fields import TypedFieldRules
from dynabridge.operations.dead_letters import Letter
from dynabridge.operations.errors import OperationError

BULK_SIZE = 200


class Engine(Protocol):
    def bulk(self, actions: Sequence[Action]) -> list[ItemResult]: ...


class ItemLookup(Protocol):
    def item(self, table: str, keys: Item) -> Item | None: ...


class Redriven(enum.StrEnum):
    INDEXED = "indexed"
    """Applied: the index now holds the letter's change."""
    STALE = "stale"
    """A newer change of the item is already indexed: nothing to do."""
    REFUSED = "refused"
    """The engine refuses it again: the cause is not fixed yet (see reason)."""
    GONE = "gone"
    """Skipped: the table no longer has the item (applying it would resurrect it)."""
    UNDECODABLE = "undecodable"
    """Skipped: the record is not a change event; nothing can be applied."""
    WOULD_APPLY = "would_apply"
    """--dry-run: it would be sent."""


@dataclass(frozen=True, slots=True)
class Result:
    letter: Letter
    verdict: Redriven
    reason: str = ""


@dataclass(slots=True)
class RedriveReport:
    table: str
    dry_run: bool
    results: list[Result] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts = {verdict.value: 0 for verdict in Redriven}
        for result in self.results:
            counts[result.verdict.value] += 1
        return {name: count for name, count in counts.items() if count}

    @property
    def settled(self) -> bool:
        """Nothing was refused again (everything applied, stale, gone or not applicable)."""
        return not any(r.verdict is Redriven.REFUSED for r in self.results)

    def as_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "dry_run": self.dry_run,
            "counts": self.counts(),
            "letters": [
                {**r.letter.as_json(), "redrive": r.verdict.value, "redrive_reason": r.reason}
                for r in self.results
            ],
        }

    def text(self, shown: int = 20) -> str:
        counts = ", ".join(f"{name} {count}" for name, count in self.counts().items())
        verb = "would redrive" if self.dry_run else "redrove"
        lines = [f"{verb} {len(self.results)} dead letter(s) of {self.table}: {counts or 'none'}"]
        for result in [r for r in self.results if r.verdict is not Redriven.INDEXED][:shown]:
            lines.append(
                f"  {result.letter.position} {result.letter.doc_id} v{result.letter.version}: "
                f"{result.verdict.value} {result.reason}".rstrip()
            )
        return "\n".join(lines)


def redrive(
    letters: Sequence[Letter],
    *,
    table: str,
    decode: Callable[[bytes], ChangeEvent],
    engine: Engine,
    items: ItemLookup,
    index_prefix: str,
    rules: TypedFieldRules,
    dry_run: bool = False,
) -> RedriveReport:
    """Apply ``letters`` in their order (partition, offset), in bulks of BULK_SIZE."""
    report = RedriveReport(table, dry_run)
    pending: list[tuple[Letter, Action]] = []
    for item in letters:
        action = _action(item, decode, items, table, index_prefix, rules, report)
        if action is None:
            continue
        if dry_run:
            report.results.append(Result(item, Redriven.WOULD_APPLY))
            continue
        pending.append((item, action))
        if len(pending) >= BULK_SIZE:
            _apply(pending, engine, report)
            pending = []
    if pending:
        _apply(pending, engine, report)
    report.results.sort(key=lambda result: (result.letter.partition, result.letter.offset))
    return report


def _action(
    item: Letter,
    decode: Callable[[bytes], ChangeEvent],
    items: ItemLookup,
    table: str,
    index_prefix: str,
    rules: TypedFieldRules,
    report: RedriveReport,
) -> Action | None:
    value = item.record.value
    try:
        if value is None:
            raise ContractError("no value")
        event = decode(value)
        action = build_action(event, index_prefix, rules)
    except SchemaLookupError as error:
        raise OperationError(f"dead letter {item.position}: {error}; nothing applied") from None
    except (ContractError, ValueError) as error:
        report.results.append(Result(item, Redriven.UNDECODABLE, str(error)[:200]))
        return None
    if event.event_name is not EventName.REMOVE and items.item(table, event.keys) is None:
        report.results.append(
            Result(item, Redriven.GONE, "the item is no longer in the table; not resurrected")
        )
        return None
    return action


def _apply(pending: list[tuple[Letter, Action]], engine: Engine, report: RedriveReport) -> None:
    answers = engine.bulk([action for _, action in pending])
    for (item, action), answer in zip(pending, answers, strict=True):
        verdict = outcome(action.kind, answer)
        if verdict is Outcome.DONE:
            report.results.append(Result(item, Redriven.INDEXED))
        elif verdict is Outcome.STALE:
            report.results.append(Result(item, Redriven.STALE, "a newer change is indexed"))
        elif verdict is Outcome.RETRY:
            raise OperationError(
                f"the search engine could not take dead letter {item.position} now "
                f"({answer.status} {answer.error_type}); rerun the redrive (it is idempotent)"
            )
        else:
            reason = f"{answer.status} {answer.error_type}: {answer.reason or ''}"[:300]
            report.results.append(Result(item, Redriven.REFUSED, reason))
