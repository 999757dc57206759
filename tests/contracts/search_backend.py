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


class Engine(Protocol):
    """An engine under test, and what the tests read of it directly."""

    def backend(self, **search_settings: Any) -> SearchBackend:
        """A backend with these ``search.*`` settings over this engine."""

    def index(self) -> str:
        """A fresh index name (removed after the test)."""

    def document(self, index: str, doc_id: str) -> tuple[int, dict[str, Any]] | None:
        """(version, source) of a document, or None when it does not exist."""

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
    results = engine.backend().bulk(actions)
    assert results[0].status == 404
    assert _outcomes(actions, results) == [Outcome.DONE]


def check_a_delete_is_remembered_within_gc_deletes(engine: Engine) -> None:
    """A late stale image (a backfill that overlapped the delete) cannot resurrect the item."""
    index = engine.index()
    backend = engine.backend()  # the shipped default, search.gc_deletes
    assert backend.bulk([Action(INDEX, index, "item", 1, {"v": 1})])[0].status == 201
    assert backend.bulk([Action(DELETE, index, "item", 3, None)])[0].status == 200
    late = [Action(INDEX, index, "item", 2, {"v": 2})]
    assert _outcomes(late, backend.bulk(late)) == [Outcome.STALE]
    assert engine.document(index, "item") is None


def check_a_delete_is_forgotten_after_gc_deletes(engine: Engine) -> None:
    """Past ``gc_deletes`` the same stale image comes back to life: why the window matters."""
    index = engine.index()
    backend = engine.backend(gc_deletes="100ms")
    assert backend.bulk([Action(INDEX, index, "item", 1, {"v": 1})])[0].status == 201
    assert backend.bulk([Action(DELETE, index, "item", 3, None)])[0].status == 200
    result = engine.after_gc_deletes(
        index, lambda: backend.bulk([Action(INDEX, index, "item", 2, {"v": 2})])[0]
    )
    assert result.status == 201, "a stale write after gc_deletes should resurrect the doc"
    assert engine.document(index, "item") == (2, {"v": 2})


CHECKS = (
    check_index_then_read,
    check_external_gte_refuses_older_and_accepts_equal,
    check_deleting_a_missing_document_is_done,
    check_a_delete_is_remembered_within_gc_deletes,
    check_a_delete_is_forgotten_after_gc_deletes,
)
