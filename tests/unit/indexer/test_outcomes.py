"""The outcome table, row by row, and the overrides that beat it."""

from __future__ import annotations

import pytest

from consumers.indexer.actions import ActionKind, ItemResult
from consumers.indexer.outcomes import Outcome, outcome

INDEX, DELETE = ActionKind.INDEX, ActionKind.DELETE


def _r(status: int, error_type: str | None = None) -> ItemResult:
    return ItemResult(status, error_type, None if error_type is None else "why")


@pytest.mark.parametrize(
    ("kind", "result", "expected"),
    [
        # settled
        (INDEX, _r(200), Outcome.DONE),
        (INDEX, _r(201), Outcome.DONE),
        (DELETE, _r(200), Outcome.DONE),
        (INDEX, _r(409, "version_conflict_engine_exception"), Outcome.STALE),
        (DELETE, _r(409, "version_conflict_engine_exception"), Outcome.STALE),
        (DELETE, _r(404), Outcome.DONE),  # deleting what is not there
        (DELETE, _r(404, "index_not_found_exception"), Outcome.DONE),
        # retried
        (INDEX, _r(0), Outcome.RETRY),
        (DELETE, _r(0), Outcome.RETRY),
        (INDEX, _r(408), Outcome.RETRY),
        (INDEX, _r(429, "es_rejected_execution_exception"), Outcome.RETRY),
        (INDEX, _r(429, "circuit_breaking_exception"), Outcome.RETRY),
        (INDEX, _r(429), Outcome.RETRY),
        (INDEX, _r(500), Outcome.RETRY),
        (INDEX, _r(502), Outcome.RETRY),
        (DELETE, _r(503, "unavailable_shards_exception"), Outcome.RETRY),
        (INDEX, _r(504), Outcome.RETRY),
        (INDEX, _r(403, "cluster_block_exception"), Outcome.RETRY),  # disk flood stage
        (INDEX, _r(400, "process_cluster_event_timeout_exception"), Outcome.RETRY),
        # dead letters
        (INDEX, _r(400, "document_parsing_exception"), Outcome.DLQ),
        (INDEX, _r(400, "mapper_parsing_exception"), Outcome.DLQ),
        (INDEX, _r(400, "strict_dynamic_mapping_exception"), Outcome.DLQ),
        (INDEX, _r(400, "illegal_argument_exception"), Outcome.DLQ),  # total fields limit
        (INDEX, _r(400, "action_request_validation_exception"), Outcome.DLQ),
        (INDEX, _r(413, "request_entity_too_large"), Outcome.DLQ),
        (INDEX, _r(422), Outcome.DLQ),
        # stop the process
        (INDEX, _r(401, "security_exception"), Outcome.FATAL),
        (DELETE, _r(403, "security_exception"), Outcome.FATAL),
        (INDEX, _r(404, "index_not_found_exception"), Outcome.FATAL),
        (INDEX, _r(302), Outcome.FATAL),
        (INDEX, _r(100), Outcome.FATAL),
    ],
)
def test_table(kind: ActionKind, result: ItemResult, expected: Outcome) -> None:
    assert outcome(kind, result) is expected


def test_override_by_error_type_beats_the_table() -> None:
    result = _r(400, "illegal_argument_exception")
    assert outcome(INDEX, result, {"illegal_argument_exception": "retry"}) is Outcome.RETRY


def test_override_by_status_beats_the_table() -> None:
    assert outcome(INDEX, _r(403, "security_exception"), {"403": "retry"}) is Outcome.RETRY
    assert outcome(DELETE, _r(404), {"404": "dlq"}) is Outcome.DLQ


def test_error_type_override_beats_status_override() -> None:
    overrides = {"400": "fatal", "mapper_parsing_exception": "done"}
    assert outcome(INDEX, _r(400, "mapper_parsing_exception"), overrides) is Outcome.DONE
    assert outcome(INDEX, _r(400, "document_parsing_exception"), overrides) is Outcome.FATAL


def test_overrides_that_do_not_match_leave_the_table_alone() -> None:
    assert outcome(INDEX, _r(201), {"409": "dlq", "mapper_parsing_exception": "fatal"}) is (
        Outcome.DONE
    )
    assert outcome(INDEX, _r(409, "version_conflict_engine_exception"), {"400": "retry"}) is (
        Outcome.STALE
    )


def test_an_unknown_override_value_is_refused() -> None:
    with pytest.raises(ValueError, match="nonsense"):
        outcome(INDEX, _r(400), {"400": "nonsense"})
