"""``dynabridge backfill``: the composition root of a backfill run (builds the real clients).

Exit codes (``bridge.runtime.exits``): 0 every segment done (or nothing left to do), 1 a fatal
error (rerun resumes), 2 bad input, 3 DynamoDB or the lease table unavailable (rerun resumes),
5 refused (another run holds the table, or the index forgets deletes too soon), 6 stopped by a
signal (rerun resumes). The progress display goes to stderr; ``--json`` prints the summary on
stdout.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bridge.backfill.errors import (
    BackfillError,
    BackfillRunning,
    ProgressUnavailable,
    ResumeMismatch,
    ScanUnavailable,
    StreamNotEnabled,
    TableNotFound,
    TombstoneWindowTooShort,
)
from bridge.backfill.runner import Options
from bridge.backfill.tombstones import Window, problem
from bridge.runtime.exits import ExitCode
from bridge.runtime.process import settings_or_exit
from bridge.runtime.settings import ConfigError, Settings

if TYPE_CHECKING:
    from confluent_kafka import Producer  # noqa: TID251 - types only
    from mypy_boto3_dynamodb import DynamoDBClient

    from bridge.aws import TableDescription
    from bridge.backfill.display import Summary
    from bridge.contract import ChangeEvent

log = logging.getLogger("backfill")

_EXIT_CODES: tuple[tuple[type[BackfillError], ExitCode], ...] = (
    (TableNotFound, ExitCode.CONFIG),
    (StreamNotEnabled, ExitCode.CONFIG),
    (ResumeMismatch, ExitCode.CONFIG),
    (BackfillRunning, ExitCode.REFUSED),
    (TombstoneWindowTooShort, ExitCode.REFUSED),
    (ProgressUnavailable, ExitCode.UNAVAILABLE),
    (ScanUnavailable, ExitCode.UNAVAILABLE),
    (BackfillError, ExitCode.FATAL),
)
"""The first matching class gives the exit code of a run stopped by a BackfillError."""


@click.command("backfill")
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--table", required=True, help="The DynamoDB table to copy into its topic.")
@click.option("--segments", type=click.IntRange(1, 1_000_000), help="Parallel Scan segments.")
@click.option("--max-rcu", type=click.FloatRange(min=0.5), help="Read capacity units per second.")
@click.option("--max-items-per-second", type=click.FloatRange(min=1), help="Items per second.")
@click.option("--consistent-read", is_flag=True, help="Strongly consistent Scan (2x the RCU).")
@click.option("--restart", is_flag=True, help="Forget saved progress and scan from the start.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON summary on stdout at the end.")
@click.option("--page-size", type=click.IntRange(1, 10_000), help="Scan Limit (default: 1 MB).")
@click.option("--workers", type=click.IntRange(1, 256), default=16, show_default=True)
@click.option("--claim-ttl-s", type=click.FloatRange(min=1), default=15.0, hidden=True)
def backfill_command(
    config_path: Path | None,
    table: str,
    segments: int | None,
    max_rcu: float | None,
    max_items_per_second: float | None,
    consistent_read: bool,
    restart: bool,
    as_json: bool,
    page_size: int | None,
    workers: int,
    claim_ttl_s: float,
) -> None:
    """Copy a table's existing items into its topic as SNAPSHOT events (docs/backfill.md).

    Runs beside `dynabridge bridge run` (start the bridge first): the stream keeps flowing,
    and versions make any change from around the scan win over the scanned image.
    Resumable: a rerun continues each segment after its last acknowledged page.
    """
    if max_rcu is not None and max_items_per_second is not None:
        raise click.UsageError("give --max-rcu or --max-items-per-second, not both")
    settings = settings_or_exit("backfill", config_path, log_as="backfill")
    options = Options(
        segments=segments, max_rcu=max_rcu, max_items_per_s=max_items_per_second,
        consistent_read=consistent_read, restart=restart, page_size=page_size,
        workers=workers, claim_ttl_s=claim_ttl_s, owner=f"{socket.gethostname()}-{os.getpid()}",
    )  # fmt: skip
    code, summary = run_backfill(settings, table, options)
    if as_json and summary is not None:
        click.echo(json.dumps(summary.as_json(), indent=2))
    sys.exit(code)


def _say(line: str) -> None:
    click.echo(line, err=True)


def run_backfill(
    settings: Settings,
    table: str,
    options: Options,
    *,
    stop: threading.Event | None = None,
    before_publish: Callable[[ChangeEvent], None] | None = None,
    say: Callable[[str], None] = _say,
) -> tuple[int, Summary | None]:
    """Build the clients, check the setup, run; returns (exit code, summary if it ran)."""
    from bridge.aws import aws_clients
    from bridge.backfill.progress import ProgressTable
    from bridge.backfill.runner import Backfill
    from bridge.backfill.scan import DynamoTable
    from bridge.contract import Encoder, SchemaRegistry
    from bridge.producer import KafkaPublisher, ensure_topics

    if stop is None:
        from bridge.runtime.shutdown import install_stop_signals

        stop = threading.Event()
        install_stop_signals(stop)
    try:
        dynamodb, _ = aws_clients(settings.aws)
        shape = DynamoTable(dynamodb).describe(table)
        _check_tombstones(settings, table, options.window, say)
        _check_bridge(dynamodb, settings.bridge.lease_table, shape, say)
        ensure_topics(settings.kafka, settings.topics, [table])
        url = settings.kafka.schema_registry_url
        encoder = Encoder(SchemaRegistry(url) if url else None)
        factory = _producer_factory(options.window.delivery_timeout_s)
        publisher = KafkaPublisher(settings.kafka, encoder, producer_factory=factory)
        store = ProgressTable(dynamodb, settings.bridge.lease_table, time.time)
        backfill = Backfill(
            shape, DynamoTable(dynamodb), publisher, store, options, stop,
            say=say, before_publish=before_publish,
        )  # fmt: skip
        summary = backfill.run()
    except BackfillError as error:
        say(f"dynabridge backfill: {error}")
        return next(code for kind, code in _EXIT_CODES if isinstance(error, kind)), None
    except ConfigError as error:
        say(f"dynabridge backfill: {error}")
        return ExitCode.CONFIG, None
    except Exception as error:  # crash-only: any failure ends the run; a rerun resumes
        log.debug("fatal error", exc_info=True)
        say(f"dynabridge backfill stopped on a fatal error: {type(error).__name__}: {error}")
        return ExitCode.FATAL, None
    return (ExitCode.STOPPED if summary.state == "stopped" else ExitCode.OK), summary


def _producer_factory(delivery_timeout_s: float) -> Callable[[dict[str, Any]], Producer]:
    """The bridge's producer settings, with the delivery timeout the tombstone argument needs."""

    def build(config: dict[str, Any]) -> Producer:
        from confluent_kafka import Producer  # noqa: TID251 - the backfill's Kafka adapter

        return Producer({**config, "message.timeout.ms": int(delivery_timeout_s * 1000)})

    return build


def _check_tombstones(
    settings: Settings, table: str, window: Window, say: Callable[[str], None]
) -> None:
    """Refuse when the table's index forgets deletes before a stale image could arrive (a
    managed index keeps them as tombstones: nothing to check)."""
    from consumers.indexer.documents import index_name
    from dynabridge.operations.gc_deletes import (
        SearchCheckUnavailable,
        index_gc_deletes,
        keeps_tombstones,
    )

    index = index_name(settings.search.index_prefix, table)
    try:
        if keeps_tombstones(settings.search, index, settings.aws.region) is not False:
            return
        actual = index_gc_deletes(settings.search, index, settings.aws.region)
    except SearchCheckUnavailable as error:
        say(f"warning: cannot read index.gc_deletes of {index} ({error}); make sure it is >= 1h")
        return
    # A missing index is created by the indexer with search.gc_deletes.
    why = problem(index, actual if actual is not None else settings.search.gc_deletes, window)
    if why is not None:
        raise TombstoneWindowTooShort(why)


def _check_bridge(
    dynamodb: DynamoDBClient, lease_table: str, shape: TableDescription, say: Callable[[str], None]
) -> None:
    """Warn when no bridge has leased the table's stream yet (the backfill does not need it now,
    but every change made during the scan must reach Kafka through the stream)."""
    from bridge.lease_store import DynamoLeaseStore

    store = DynamoLeaseStore(dynamodb, lease_table)
    store.ensure_table()
    if not any(lease.stream_arn == shape.stream_arn for lease in store.leases()):
        say(
            f"warning: no bridge has leased the stream of {shape.table} yet: start `dynabridge "
            "bridge run` on it (start_position trim_horizon) within 24 h, or changes made "
            "during the scan are lost"
        )
