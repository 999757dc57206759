"""Backfill runs for ``status``: the backfill's progress rows, read through its own adapter."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from bridge.backfill.errors import BackfillError
from bridge.backfill.progress import ProgressTable
from dynabridge.operations.errors import OperationError
from dynabridge.operations.status import BackfillSummary

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient


class BackfillRuns:
    """Every backfill recorded in the lease table, summarised."""

    def __init__(self, client: DynamoDBClient, lease_table: str) -> None:
        self._progress = ProgressTable(client, lease_table, time.time)
        self._lease_table = lease_table

    def backfills(self) -> list[BackfillSummary]:
        try:
            statuses = self._progress.backfills()
        except BackfillError as error:
            raise OperationError(f"backfill progress in {self._lease_table}: {error}") from error
        return [
            BackfillSummary(
                table=s.run.table,
                state=s.run.state.value,
                run_id=s.run.run_id,
                segments_done=s.segments_done,
                segments=s.run.total_segments,
                items=s.items,
                item_estimate=s.run.item_count_estimate,
                started_at=s.run.started_at,
                finished_at=s.run.finished_at,
                error=s.run.error,
            )
            for s in statuses
        ]
