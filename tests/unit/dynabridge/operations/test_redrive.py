"""Dead letters read back and redriven: in order, idempotent, never resurrecting an item."""

from __future__ import annotations

from bridge.contract import Item, decode, headers
from consumers.indexer.actions import ItemResult
from consumers.indexer.dlq import dead_letter_headers
from consumers.indexer.records import DeadLetter, Record
from consumers.indexer.typed_fields import TypedFieldRules
from dynabridge.operations.dead_letters import (
    Letter,
    dead_lettered_ids,
    letter,
    matching,
    summary,
)
from dynabridge.operations.fields import field_report
from dynabridge.operations.redrive import Redriven, RedriveReport, redrive
from tests.unit.indexer.fakes import P0, FakeClock, FakeSearch, event, record


class Table:
    def __init__(self, present: set[str]) -> None:
        self.present = present

    def item(self, table: str, keys: Item) -> Item | None:
        return keys if keys["id"]["S"] in self.present else None


def _letter(
    offset: int, doc: str, version: int, error_type: str = "document_parsing_exception"
) -> Letter:
    change = event(doc, version)
    plain = record(P0, offset, change)
    original = Record(
        plain.topic, plain.partition, offset, plain.key, plain.value, tuple(headers(change))
    )
    dead = DeadLetter(original, error_type, f"failed to parse field [v] of {doc}", 400, "orders", 1)
    letter_headers = [
        (name, value.encode() if isinstance(value, str) else value)
        for name, value in dead_letter_headers(dead)
    ]
    return letter(
        Record("ddb.orders.dlq", 0, offset, original.key, original.value, tuple(letter_headers))
    )


def test_letters_carry_id_version_and_reason_from_their_headers() -> None:
    found = _letter(4, "a", 7)
    assert (found.doc_id, found.version, found.error_type) == ("a", 7, "document_parsing_exception")
    assert found.position == "0:4"
    assert found.source == "ddb.orders[0]@4"
    letters = [found, _letter(5, "a", 9, "other"), _letter(6, "b", 3)]
    assert dead_lettered_ids(letters)["a"][1] == "0:5", "the newest letter of an id counts"
    assert summary(letters) == {"document_parsing_exception": 2, "other": 1}
    assert [item.offset for item in matching(letters, "other")] == [5]


def _redrive(
    letters: list[Letter], engine: FakeSearch, present: set[str], dry_run: bool = False
) -> RedriveReport:
    return redrive(
        letters,
        table="orders",
        decode=decode,
        engine=engine,
        items=Table(present),
        index_prefix="",
        rules=TypedFieldRules(),
        dry_run=dry_run,
    )


def test_redrive_applies_in_order_skips_gone_items_and_keeps_newer_changes() -> None:
    engine = FakeSearch(FakeClock())
    engine.apply(engine_action(doc="newer", version=50))
    letters = [_letter(1, "a", 7), _letter(2, "gone", 8), _letter(3, "newer", 9)]
    report = _redrive(letters, engine, {"a", "newer"})
    verdicts = {r.letter.doc_id: r.verdict for r in report.results}
    assert verdicts == {"a": Redriven.INDEXED, "gone": Redriven.GONE, "newer": Redriven.STALE}
    assert engine.docs[("orders", "a")][0] == 7
    assert ("orders", "gone") not in engine.docs, "an item the table lost is not resurrected"
    assert engine.docs[("orders", "newer")][0] == 50, "a newer change is never overwritten"
    assert report.settled
    again = _redrive(letters, engine, {"a", "newer"})
    expected = [Redriven.INDEXED, Redriven.GONE, Redriven.STALE]
    assert [r.verdict for r in again.results] == expected, "idempotent: it overwrites itself"


def test_a_letter_still_refused_is_reported_and_a_dry_run_sends_nothing() -> None:
    engine = FakeSearch(FakeClock())
    engine.script.append(
        lambda actions: [ItemResult(400, "document_parsing_exception", "still") for _ in actions]
    )
    letters = [_letter(1, "a", 7)]
    dry = _redrive(letters, engine, {"a"}, dry_run=True)
    assert [r.verdict for r in dry.results] == [Redriven.WOULD_APPLY]
    assert engine.bulks == []
    report = _redrive(letters, engine, {"a"})
    assert [r.verdict for r in report.results] == [Redriven.REFUSED]
    assert not report.settled
    assert "still" in report.results[0].reason


def engine_action(doc: str, version: int):  # type: ignore[no-untyped-def]
    from consumers.indexer.documents import build_action

    return build_action(event(doc, version), "")


def test_the_mapping_tells_which_attributes_fell_back() -> None:
    from consumers.indexer.templates import MAPPING_VERSION

    mappings = {
        "_meta": {"dynabridge": {"mapping": MAPPING_VERSION}},
        "properties": {
            "ddb": {
                "properties": {
                    "price": {"properties": {"N": {"type": "double"}}},
                    "drift": {"properties": {"N": {}, "S": {}, "M": {}}},
                    "addr": {"properties": {"M": {}}},
                    "~_id": {"properties": {"S": {}}},
                }
            }
        },
    }
    managed, fields = field_report(mappings)
    assert managed
    notes = {f.attribute: f.notes for f in fields}
    assert set(notes) == {"drift", "addr", "~_id"}
    assert "mixed types (S, N, M): one field each" in notes["drift"]
    assert any("keywords by path" in n for n in notes["addr"])
    assert any("renamed" in n for n in notes["~_id"])
    assert field_report({"dynamic": True}) == (False, [])
