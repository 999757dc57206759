"""Backfill progress rows in the bridge's lease table, and the claim that keeps one run per table.

Rows (hash key ``lease_key``; the ``backfill#`` prefix never collides with a shard lease key,
which starts with a stream ARN):

    backfill#<table>              the run: owner, claim counter, state, scan start, segments
    backfill#<table>#<segment>    a segment: resume key (after acknowledged pages), counters

Every write of the run row is conditional on the claim counter it read; every segment write
is conditional on the row still naming our run, so a run that was presumed dead and taken over
can no longer move progress (it gets :class:`ClaimLost` and stops).
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bridge.aws import (
    AwsCallError,
    AwsUnavailable,
    ConditionFailed,
    ResourceNotFound,
    call,
    with_hint,
)
from bridge.backfill.errors import BackfillError, ClaimLost, ProgressUnavailable
from bridge.backfill.plan import SegmentProgress
from bridge.contract import dumps_item, loads_item
from bridge.leases import BACKFILL_ROW_PREFIX

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

log = logging.getLogger(__name__)

HASH_KEY = "lease_key"
PREFIX = BACKFILL_ROW_PREFIX
_BATCH_GET_MAX = 100


class RunState(enum.StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    STOPPED = "stopped"
    """Stopped by a signal; a rerun resumes."""
    FAILED = "failed"
    """Stopped by an error; a rerun resumes."""


@dataclass(frozen=True, slots=True)
class RunRecord:
    table: str
    run_id: str
    owner: str
    counter: int
    state: RunState
    scan_start_s: int
    total_segments: int
    item_count_estimate: int
    started_at: float
    updated_at: float
    finished_at: float | None = None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class BackfillStatus:
    """What ``dynabridge status`` shows about one table's backfill."""

    run: RunRecord
    segments: tuple[SegmentProgress, ...]

    @property
    def items(self) -> int:
        return sum(s.items for s in self.segments)

    @property
    def segments_done(self) -> int:
        return sum(1 for s in self.segments if s.done)


def run_key(table: str) -> str:
    return f"{PREFIX}{table}"


def segment_key(table: str, segment: int) -> str:
    return f"{PREFIX}{table}#{segment:06d}"


class ProgressTable:
    """Backfill rows in the lease table, through a boto3 ``dynamodb`` client."""

    def __init__(
        self, client: DynamoDBClient, lease_table: str, wall_clock: Callable[[], float]
    ) -> None:
        self._client = client
        self._table = lease_table
        self._wall_clock = wall_clock  # informational timestamps only; no decision reads them

    # -- the run row ----------------------------------------------------------------------

    def run(self, table: str) -> RunRecord | None:
        response = self._call(
            self._client.get_item,
            TableName=self._table,
            Key={HASH_KEY: {"S": run_key(table)}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return None if item is None else _run_record(item)

    def create_run(self, run: RunRecord) -> bool:
        return self._put(_run_row(run), "attribute_not_exists(#key)", {"#key": HASH_KEY}, {})

    def replace_run(self, old: RunRecord, new: RunRecord) -> bool:
        """Write ``new`` if the row still holds ``old``'s claim counter; False otherwise."""
        return self._put(
            _run_row(new),
            "#counter = :counter",
            {"#counter": "claim_counter"},
            {":counter": {"N": str(old.counter)}},
        )

    # -- segment rows ---------------------------------------------------------------------

    def segments(self, table: str, total_segments: int) -> dict[int, SegmentProgress]:
        keys = [segment_key(table, s) for s in range(total_segments)]
        found: dict[int, SegmentProgress] = {}
        for start in range(0, len(keys), _BATCH_GET_MAX):
            request: Any = {
                self._table: {
                    "Keys": [{HASH_KEY: {"S": k}} for k in keys[start : start + _BATCH_GET_MAX]],
                    "ConsistentRead": True,
                }
            }
            while request:
                response = self._call(self._client.batch_get_item, RequestItems=request)
                for item in response.get("Responses", {}).get(self._table, []):
                    progress = _segment(item)
                    found[progress.segment] = progress
                request = response.get("UnprocessedKeys") or {}
        return found

    def adopt_segment(self, progress: SegmentProgress, run_id: str) -> None:
        """Write a segment row as ours (we hold the claim): a previous owner's writes now fail."""
        self._put(_segment_row(progress, run_id, self._wall_clock()), None, {}, {})

    def save_segment(self, progress: SegmentProgress, run_id: str) -> None:
        if not self._put(
            _segment_row(progress, run_id, self._wall_clock()),
            "#run = :run",
            {"#run": "run_id"},
            {":run": {"S": run_id}},
        ):
            raise ClaimLost(
                f"segment {progress.segment} of {progress.table} was taken over by another "
                "backfill run: this run stops without writing more progress"
            )

    # -- all backfills (for `dynabridge status`) ---------------------------------------------

    def backfills(self) -> list[BackfillStatus]:
        runs: dict[str, RunRecord] = {}
        segments: dict[str, list[SegmentProgress]] = {}
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "ConsistentRead": True,
            "FilterExpression": "begins_with(#key, :prefix)",
            "ExpressionAttributeNames": {"#key": HASH_KEY},
            "ExpressionAttributeValues": {":prefix": {"S": PREFIX}},
        }
        while True:
            page = self._call(self._client.scan, **kwargs)
            for item in page.get("Items", []):
                if item.get("kind", {}).get("S") == "run":
                    run = _run_record(item)
                    runs[run.table] = run
                else:
                    progress = _segment(item)
                    segments.setdefault(progress.table, []).append(progress)
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return [
            BackfillStatus(run, _of_run(run, segments.get(table, [])))
            for table, run in sorted(runs.items())
        ]

    # -- internals ------------------------------------------------------------------------

    def _put(
        self,
        row: dict[str, Any],
        condition: str | None,
        names: dict[str, str],
        values: dict[str, Any],
    ) -> bool:
        kwargs: dict[str, Any] = {"TableName": self._table, "Item": row}
        if condition is not None:
            kwargs["ConditionExpression"] = condition
            kwargs["ExpressionAttributeNames"] = names
            if values:
                kwargs["ExpressionAttributeValues"] = values
        try:
            self._call(self._client.put_item, **kwargs)
        except ConditionFailed:
            return False
        return True

    def _call(self, method: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return call(method, f"lease table {self._table!r}", **kwargs)
        except ConditionFailed:
            raise  # not an error: the caller's answer is False
        except AwsUnavailable as error:
            raise ProgressUnavailable(str(error)) from error
        except ResourceNotFound as error:
            raise BackfillError(
                f"{error}: start `dynabridge bridge run` once (it creates the lease table) "
                "or check bridge.lease_table"
            ) from error
        except AwsCallError as error:
            raise BackfillError(
                with_hint(error, "the backfill needs GetItem, BatchGetItem, PutItem and Scan on it")
            ) from error


def _of_run(run: RunRecord, rows: list[SegmentProgress]) -> tuple[SegmentProgress, ...]:
    """The segment rows of ``run`` (rows of an earlier run with another segment count aside)."""
    mine = [s for s in rows if s.total_segments == run.total_segments]
    return tuple(sorted(mine, key=lambda s: s.segment))


def list_backfills(dynamodb_client: DynamoDBClient, lease_table: str) -> list[BackfillStatus]:
    """Every backfill recorded in ``lease_table`` (running, stopped, failed or finished)."""
    return ProgressTable(dynamodb_client, lease_table, time.time).backfills()


# -- rows -----------------------------------------------------------------------------------


def _table_attr(table: str) -> dict[str, Any]:
    return {"table_name": {"S": table}}


def _run_row(run: RunRecord) -> dict[str, Any]:
    key = run_key(run.table)
    row: dict[str, Any] = {
        **_table_attr(run.table),
        HASH_KEY: {"S": key},
        "kind": {"S": "run"},
        "run_id": {"S": run.run_id},
        "owner": {"S": run.owner},
        "claim_counter": {"N": str(run.counter)},
        "state": {"S": run.state.value},
        "scan_start_s": {"N": str(run.scan_start_s)},
        "total_segments": {"N": str(run.total_segments)},
        "item_count_estimate": {"N": str(run.item_count_estimate)},
        "started_at": {"N": f"{run.started_at:.3f}"},
        "updated_at": {"N": f"{run.updated_at:.3f}"},
    }
    if run.finished_at is not None:
        row["finished_at"] = {"N": f"{run.finished_at:.3f}"}
    if run.error is not None:
        row["error"] = {"S": run.error[:2000]}
    return row


def _run_record(item: dict[str, Any]) -> RunRecord:
    try:
        return RunRecord(
            table=item["table_name"]["S"],
            run_id=item["run_id"]["S"],
            owner=item["owner"]["S"],
            counter=int(item["claim_counter"]["N"]),
            state=RunState(item["state"]["S"]),
            scan_start_s=int(item["scan_start_s"]["N"]),
            total_segments=int(item["total_segments"]["N"]),
            item_count_estimate=int(item["item_count_estimate"]["N"]),
            started_at=float(item["started_at"]["N"]),
            updated_at=float(item["updated_at"]["N"]),
            finished_at=float(item["finished_at"]["N"]) if "finished_at" in item else None,
            error=item["error"]["S"] if "error" in item else None,
        )
    except (KeyError, ValueError) as error:
        raise BackfillError(f"backfill row {item.get(HASH_KEY)} is malformed: {error}") from None


def _segment_row(progress: SegmentProgress, run_id: str, now: float) -> dict[str, Any]:
    key = segment_key(progress.table, progress.segment)
    row: dict[str, Any] = {
        **_table_attr(progress.table),
        HASH_KEY: {"S": key},
        "kind": {"S": "segment"},
        "run_id": {"S": run_id},
        "segment": {"N": str(progress.segment)},
        "total_segments": {"N": str(progress.total_segments)},
        "done": {"BOOL": progress.done},
        "items": {"N": str(progress.items)},
        "pages": {"N": str(progress.pages)},
        "consumed_rcu": {"N": repr(float(progress.consumed_rcu))},
        "from_start_scans": {"N": str(progress.from_start_scans)},
        "updated_at": {"N": f"{now:.3f}"},
    }
    if progress.start_key is not None:
        row["start_key"] = {"S": dumps_item(progress.start_key)}
    return row


def _segment(item: dict[str, Any]) -> SegmentProgress:
    try:
        return SegmentProgress(
            table=item["table_name"]["S"],
            segment=int(item["segment"]["N"]),
            total_segments=int(item["total_segments"]["N"]),
            start_key=loads_item(item["start_key"]["S"]) if "start_key" in item else None,
            done=bool(item["done"]["BOOL"]),
            items=int(item["items"]["N"]),
            pages=int(item["pages"]["N"]),
            consumed_rcu=float(item["consumed_rcu"]["N"]),
            from_start_scans=int(item["from_start_scans"]["N"]),
        )
    except (KeyError, ValueError) as error:
        raise BackfillError(f"backfill row {item.get(HASH_KEY)} is malformed: {error}") from None
