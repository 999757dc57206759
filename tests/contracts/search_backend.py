"""The search backend contract: what the indexer relies on from an engine, as tests.

Run against the unit tests' fake (``tests/unit/indexer/test_backend_contract.py``) and against
the real Elasticsearch and OpenSearch (``tests/integration/indexer/test_backend_contract.py``):
a fake that passes it can stand in for the engines in the loop's unit tests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from consumers.indexer.actions import Action, ActionKind, ItemResult
from consumers.indexer.backend import SearchBackend
from consumers.indexer.outcomes import Outcome, outcome

INDEX, DELETE = ActionKind.INDEX, ActionKind.DELETE


class Backend(SearchBackend, Protocol):
    def purge_tombstones(self, older_than_ms: int, limit: int = 1000) -> int: ...


class Engine(Protocol):
    """An engine under test, and what the tests read of it directly."""

    def backend(self, **search_settings: Any) -> Backend:
        """A backend with these ``search.*`` settings over this engine."""

    def index(self) -> str:
        """A fresh index name (removed after the test)."""

    def document(self, index: str, doc_id: str) -> tuple[int, dict[str, Any]] | None:
        """(version, source) of a document, or None when it does not exist."""

    def now_ms(self) -> int:
        """The engine's notion of now, as the tombstones' ``at`` (epoch milliseconds)."""

    def after_gc_deletes(self, index: str, attempt: Callable[[], ItemResult]) -> ItemResult:
        """``attempt()`` once the engine may have forgotten the index's deletes: the first
        answer that is not a version conflict, or the last conflict at the deadline."""


def _outcomes(actions: list[Action], results: list[ItemResult]) -> list[Outcome]:
    return [outcome(a.kind, r) for a, r in zip(actions, results, strict=True)]


def check_index_then_read(engine: Engine) -> None:
    index = engine.index()
    backend = engine.backend()
    doc = {"name": "héllo", "n": 7, "price": 19.99, "tags": ["a", "b"], "big": "9007199254740993"}
    assert _outcomes(
        [Action(INDEX, index, "a|b%7C~", 5, doc)],
        backend.bulk([Action(INDEX, index, "a|b%7C~", 5, doc)]),
    ) == [Outcome.DONE]
    assert engine.document(index, "a|b%7C~") == (5, doc)


def check_external_gte_refuses_older_and_accepts_equal(engine: Engine) -> None:
    index = engine.index()
    backend = engine.backend()
    assert backend.bulk([Action(INDEX, index, "k", 10, {"v": "new"})])[0].status == 201
    again = [
        Action(INDEX, index, "k", 10, {"v": "new"}),
        Action(INDEX, index, "k", 9, {"v": "old"}),
    ]
    results = backend.bulk(again)
    assert [r.status for r in results] == [200, 409]
    assert results[1].error_type == "version_conflict_engine_exception"
    assert _outcomes(again, results) == [Outcome.DONE, Outcome.STALE]
    stale_delete = [Action(DELETE, index, "k", 8, None)]
    assert _outcomes(stale_delete, backend.bulk(stale_delete)) == [Outcome.STALE]
    assert engine.document(index, "k") == (10, {"v": "new"})


def check_deleting_a_missing_document_is_done(engine: Engine) -> None:
    index = engine.index()
    actions = [Action(DELETE, index, "never-indexed", 3, None)]
    assert _outcomes(actions, engine.backend().bulk(actions)) == [Outcome.DONE]
    assert engine.document(index, "never-indexed") is None
    older = [Action(INDEX, index, "never-indexed", 2, {"v": 2})]
    assert _outcomes(older, engine.backend().bulk(older)) == [Outcome.STALE], (
        "the delete's version is kept even when nothing was there"
    )


def check_a_delete_is_remembered_within_gc_deletes(engine: Engine) -> None:
    """A late stale image (a backfill that overlapped the delete) cannot resurrect the item."""
    index = engine.index()
    backend = engine.backend()  # the shipped default, search.gc_deletes
    assert backend.bulk([Action(INDEX, index, "item", 1, {"v": 1})])[0].status == 201
    assert backend.bulk([Action(DELETE, index, "item", 3, None)])[0].status == 200
    late = [Action(INDEX, index, "item", 2, {"v": 2})]
    assert _outcomes(late, backend.bulk(late)) == [Outcome.STALE]
    assert engine.document(index, "item") is None


def check_a_delete_is_still_remembered_after_gc_deletes(engine: Engine) -> None:
    """Past ``gc_deletes`` the engine forgets a real delete; the tombstone document keeps the
    delete's version, so a late stale image (a backfill, a replay from the middle of the log)
    still cannot resurrect the item."""
    index = engine.index()
    backend = engine.backend(gc_deletes="100ms")
    assert backend.bulk([Action(INDEX, index, "item", 1, {"v": 1})])[0].status == 201
    assert _outcomes(
        [Action(DELETE, index, "item", 3, None)],
        backend.bulk([Action(DELETE, index, "item", 3, None)]),
    ) == [Outcome.DONE]
    result = engine.after_gc_deletes(
        index, lambda: backend.bulk([Action(INDEX, index, "item", 2, {"v": 2})])[0]
    )
    assert result.status == 409, "a stale write after gc_deletes must not resurrect the item"
    assert engine.document(index, "item") is None
    newer = [Action(INDEX, index, "item", 4, {"v": 4})]
    assert _outcomes(newer, backend.bulk(newer)) == [Outcome.DONE], "a newer change re-creates it"
    assert engine.document(index, "item") == (4, {"v": 4})


def check_old_tombstones_are_purged_then_forgotten_like_a_delete(engine: Engine) -> None:
    """A purge removes a tombstone for good: the engine then remembers it only for
    ``gc_deletes`` (which is why tombstones outlive the topics' retention)."""
    index = engine.index()
    backend = engine.backend(gc_deletes="100ms")
    delete = Action(DELETE, index, "old", 3, None, event_time_ms=engine.now_ms() - 10_000)
    keep = Action(DELETE, index, "recent", 3, None, event_time_ms=engine.now_ms())
    assert _outcomes([delete, keep], backend.bulk([delete, keep])) == [Outcome.DONE] * 2
    purged = engine.after_gc_deletes(
        index,
        lambda: ItemResult(
            200 if backend.purge_tombstones(engine.now_ms() - 5000) else 409, None, None
        ),
    )
    assert purged.status == 200, "the old tombstone was purged"
    stale = [Action(INDEX, index, "old", 2, {"v": 2}), Action(INDEX, index, "recent", 2, {"v": 2})]
    result = engine.after_gc_deletes(index, lambda: backend.bulk(stale[:1])[0])
    assert result.status == 201, "past gc_deletes a purged item's stale change is accepted"
    assert _outcomes(stale[1:], backend.bulk(stale[1:])) == [Outcome.STALE], "recent: kept"


CHECKS = (
    check_index_then_read,
    check_external_gte_refuses_older_and_accepts_equal,
    check_deleting_a_missing_document_is_done,
    check_a_delete_is_remembered_within_gc_deletes,
    check_a_delete_is_still_remembered_after_gc_deletes,
    check_old_tombstones_are_purged_then_forgotten_like_a_delete,
)
