"""``dynabridge replay|status|verify|trace``: the operator commands' composition root.

Exit codes (``bridge.runtime.exits``): 0 done / equal / in sync; 2 bad configuration or input;
3 a service could not be read or written, or status listed a problem reading one; 4 a
difference found (verify) or an item stuck (trace); 5 a reset refused (replay, live group).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from bridge.runtime.exits import ExitCode
from bridge.runtime.process import fail, settings_or_exit
from bridge.runtime.settings import ConfigError, Settings
from dynabridge.operations.errors import OperationError

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="YAML config file (the processes' own); without it, DYNABRIDGE_* variables only.",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
table_option = click.option("--table", required=True, help="DynamoDB table name.")


@contextmanager
def reported(command: str) -> Iterator[None]:
    """OperationError (or a search failure) -> its message on stderr and exit 3; nothing else
    is swallowed."""
    from consumers.search.errors import SearchFailure

    try:
        yield
    except ConfigError as error:  # refused credentials or certificates (Kafka, the engine)
        fail(command, str(error), ExitCode.CONFIG)
    except (OperationError, SearchFailure) as error:
        fail(command, str(error), ExitCode.UNAVAILABLE)


def _emit(data: dict[str, Any] | str, as_json: bool) -> None:
    click.echo(json.dumps(data, indent=2, default=str) if as_json else data)


def _aws(settings: Settings) -> Any:
    from bridge.aws import aws_clients

    return aws_clients(settings.aws)


# -------------------------------------------------------------------------------- replay


def _target(_ctx: click.Context, _param: click.Parameter, value: str) -> Any:
    from dynabridge.operations.offset_targets import TargetError, parse_target

    try:
        return parse_target(value)
    except TargetError as error:
        raise click.BadParameter(str(error)) from None


@click.command("replay")
@config_option
@table_option
@click.option(
    "--to",
    "target",
    required=True,
    callback=_target,
    metavar="earliest|latest|DATETIME|OFFSET",
    help="earliest, latest, an ISO 8601 datetime with timezone (first record at or after it), "
    "or an offset (clamped to each partition's range).",
)
@click.option(
    "--dry-run", is_flag=True, help="Show old -> new offsets per partition; change nothing."
)
@json_option
def replay_command(
    config_path: Path | None, table: str, target: Any, dry_run: bool, as_json: bool
) -> None:
    """Reset the indexer group's committed offsets for TABLE's topic, to re-index from there.

    The group (indexer.group_id) must have no live member: stop every `dynabridge index run`
    first; they resume from the new offsets when started again. Re-indexing is harmless:
    every write carries the change's version, so older versions never overwrite newer ones.
    """
    from bridge.contract import ContractError, topic_name
    from dynabridge.operations.kafka_admin import KafkaAdmin
    from dynabridge.operations.replay import GroupInUse, replay

    settings = settings_or_exit("replay", config_path)
    try:
        topic = topic_name(settings.kafka.topic_prefix, table)
    except ContractError as error:
        fail("replay", f"--table {table}: {error}", ExitCode.CONFIG)
    with reported("replay"):
        kafka = KafkaAdmin(settings.kafka)
        try:
            result = replay(
                kafka,
                group=settings.indexer.group_id,
                topic=topic,
                target=target,
                session_timeout_ms=settings.indexer.session_timeout_ms,
                dry_run=dry_run,
            )
        except GroupInUse as error:
            fail("replay", f"refused: {error}", ExitCode.REFUSED)
        finally:
            kafka.close()
    _emit(result.as_json() if as_json else result.text(), as_json)


# -------------------------------------------------------------------------------- status


@click.command("status")
@config_option
@click.option(
    "--table",
    "tables",
    multiple=True,
    help="Only these tables (repeatable); default: bridge.tables and indexer.tables.",
)
@click.option(
    "--interval",
    "interval_s",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds between the two reads that tell live workers (lease counters move) from dead "
    "ones and measure the partitions' rates; default 1.5 x bridge.lease_renew_interval_s; 0 "
    "reads once.",
)
@json_option
def status_command(
    config_path: Path | None, tables: tuple[str, ...], interval_s: float | None, as_json: bool
) -> None:
    """Per table: shard leases, checkpoints, each shard's load and time until unread records
    are trimmed, and per partition the indexer group's committed offset, end offset, lag (records
    and seconds) and rates; which processes live; how many bridge workers and indexers the
    pipeline needs now, and why (docs/operations.md, Scaling); running and finished backfills;
    the attributes its index does not hold in one field of their own type.

    Exit 3 when something could not be read (each problem is listed), 0 otherwise."""
    from bridge.discovery import StreamDiscovery
    from bridge.lease_store import DynamoLeaseStore
    from bridge.scaling import BridgeTargets
    from consumers.indexer.scaling import IndexerTargets
    from dynabridge.operations.backfills import BackfillRuns
    from dynabridge.operations.dynamo import DynamoTables
    from dynabridge.operations.index_reader import build_reader
    from dynabridge.operations.kafka_admin import KafkaAdmin
    from dynabridge.operations.status import StatusInputs, collect
    from dynabridge.operations.text import status_text

    settings = settings_or_exit("status", config_path)
    names = list(tables) or sorted(set(settings.bridge.tables) | set(settings.indexer_tables()))
    if not names:
        fail("status", "no table: pass --table T or set bridge.tables", ExitCode.CONFIG)
    interval = settings.bridge.lease_renew_interval_s * 1.5 if interval_s is None else interval_s
    with reported("status"):
        dynamodb, streams = _aws(settings)
        kafka = KafkaAdmin(settings.kafka)
        indices = build_reader(settings.search, settings.aws.region)
        try:
            report = collect(
                StatusInputs(
                    names,
                    settings.bridge.lease_table,
                    settings.indexer.group_id,
                    settings.kafka.topic_prefix,
                    interval,
                    settings.search.index_prefix,
                    BridgeTargets(
                        settings.scaling.bridge_max_unread_age_s,
                        settings.scaling.bridge_busy_shards_per_worker,
                    ),
                    IndexerTargets(
                        settings.scaling.indexer_drain_s,
                        settings.scaling.indexer_records_per_s_per_consumer,
                    ),
                ),
                DynamoTables(dynamodb, streams),
                StreamDiscovery(dynamodb, streams),
                DynamoLeaseStore(dynamodb, settings.bridge.lease_table),
                kafka,
                BackfillRuns(dynamodb, settings.bridge.lease_table),
                indices,
            )
        finally:
            kafka.close()
            indices.close()
    _emit(report.as_json() if as_json else status_text(report), as_json)
    problems = report.problems or any(table.problems for table in report.tables)
    sys.exit(ExitCode.UNAVAILABLE if problems else ExitCode.OK)


# -------------------------------------------------------------------------------- verify


def _progress(every_s: float = 1.0) -> Callable[[int, int], None]:
    last = [0.0]

    def show(scanned: int, approximate: int) -> None:
        now = time.monotonic()
        if now - last[0] >= every_s:
            last[0] = now
            click.echo(f"verify: scanned {scanned} of ~{approximate} items", err=True)

    return show


@click.command("verify")
@config_option
@table_option
@click.option(
    "--sample",
    type=click.IntRange(min=0),
    default=20,
    show_default=True,
    help="How many differences of each kind (missing, extra, different, dead_lettered) to list.",
)
@click.option("--quiet", is_flag=True, help="No progress lines on stderr.")
@json_option
def verify_command(
    config_path: Path | None, table: str, sample: int, quiet: bool, as_json: bool
) -> None:
    """Compare TABLE (a consistent Scan) with its index: ids missing, extra, or with a document
    unequal to the item's _source; ids whose newest change the engine refused are listed as
    dead-lettered, with the reason (from the table's dead-letter topic). Exit 0 only when
    equal, 4 when they differ."""
    from bridge.contract import dlq_topic, topic_name
    from consumers.indexer.documents import index_name
    from dynabridge.operations.dead_letters import dead_lettered_ids, read_letters
    from dynabridge.operations.dynamo import DynamoTables
    from dynabridge.operations.index_reader import build_reader
    from dynabridge.operations.kafka_admin import KafkaAdmin
    from dynabridge.operations.verify import verify

    settings = settings_or_exit("verify", config_path)
    index = index_name(settings.search.index_prefix, table)
    with reported("verify"):
        dynamodb, streams = _aws(settings)
        reader = build_reader(settings.search, settings.aws.region)
        kafka = KafkaAdmin(settings.kafka)
        try:
            topic = dlq_topic(topic_name(settings.kafka.topic_prefix, table))
            letters = dead_lettered_ids(read_letters(kafka, topic))
            report = verify(
                DynamoTables(dynamodb, streams),
                reader,
                table=table,
                index=index,
                sample=sample,
                progress=None if quiet else _progress(),
                dead_letters=letters,
            )
        finally:
            reader.close()
            kafka.close()
    _emit(report.as_json() if as_json else report.text(), as_json)
    sys.exit(ExitCode.OK if report.equal else ExitCode.DIFFERENT)


# -------------------------------------------------------------------------------- trace


@click.command("trace")
@config_option
@table_option
@click.option(
    "--key",
    "key_text",
    required=True,
    help='The item\'s primary key as JSON: plain {"pk": "a", "sk": 3} or typed '
    '{"pk": {"S": "a"}, "sk": {"N": "3"}}.',
)
@click.option(
    "--stream-limit",
    type=click.IntRange(min=1),
    default=100_000,
    show_default=True,
    help="Most stream records read per shard (from TRIM_HORIZON).",
)
@click.option(
    "--kafka-limit",
    type=click.IntRange(min=1),
    default=50_000,
    show_default=True,
    help="Most records read back from the end of the key's partition.",
)
@json_option
def trace_command(
    config_path: Path | None,
    table: str,
    key_text: str,
    stream_limit: int,
    kafka_limit: int,
    as_json: bool,
) -> None:
    """Follow one item: table, latest stream change vs the lease checkpoint, its Kafka record
    (partition by murmur2 of the key), the group's commit, and the indexed version; say where
    it is stuck. Exit 0 when the index is in sync, 4 when it is stuck somewhere."""
    from bridge.discovery import StreamDiscovery
    from bridge.lease_store import DynamoLeaseStore
    from bridge.leases import LeaseTableError
    from bridge.shards import StreamError
    from dynabridge.operations.dynamo import DynamoTables
    from dynabridge.operations.index_reader import build_reader
    from dynabridge.operations.item_keys import KeyInputError, parse_key
    from dynabridge.operations.kafka_admin import KafkaAdmin
    from dynabridge.operations.text import trace_text
    from dynabridge.operations.trace import TraceRequest, trace
    from dynabridge.operations.verdict import Stage

    settings = settings_or_exit("trace", config_path)
    with reported("trace"):
        dynamodb, streams = _aws(settings)
        tables = DynamoTables(dynamodb, streams)
        info = tables.describe(table)
        try:
            keys = parse_key(key_text, info.key_schema)
        except KeyInputError as error:
            fail("trace", str(error), ExitCode.CONFIG)
        try:
            leases = DynamoLeaseStore(dynamodb, settings.bridge.lease_table).leases()
            shards = (
                StreamDiscovery(dynamodb, streams).shards(info.stream_arn)
                if info.stream_arn
                else []
            )
        except (LeaseTableError, StreamError) as error:
            raise OperationError(str(error)) from None
        kafka = KafkaAdmin(settings.kafka)
        reader = build_reader(settings.search, settings.aws.region)
        request = TraceRequest(
            info,
            keys,
            settings.indexer.group_id,
            settings.kafka.topic_prefix,
            settings.search.index_prefix,
            stream_limit,
            kafka_limit,
        )
        try:
            report = trace(request, tables, shards, leases, kafka, reader)
        finally:
            kafka.close()
            reader.close()
    _emit(report.as_json() if as_json else trace_text(report), as_json)
    sys.exit(ExitCode.OK if report.verdict.stage is Stage.IN_SYNC else ExitCode.DIFFERENT)


OPERATOR_COMMANDS = (replay_command, status_command, verify_command, trace_command)


# -------------------------------------------------------------------------------- reindex


@click.command("reindex")
@config_option
@table_option
@click.option(
    "--mappings",
    "mappings_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="JSON or YAML mappings for the new index, merged over search.index_mappings.",
)
@click.option(
    "--settings",
    "settings_path",
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="JSON or YAML index settings for the new index, merged over search.index_settings.",
)
@click.option("--dry-run", is_flag=True, help="Show the plan; change nothing.")
@click.option("--drop-old", is_flag=True, help="Delete the previous index after the switch.")
@click.option(
    "--abort",
    is_flag=True,
    help="Give up an unfinished reindex: the old index takes writes again, the new one and "
    "its consumer group are deleted.",
)
@click.option(
    "--switch-lag",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Records of lag at or below which the new index counts as caught up (live tables "
    "may never reach 0; the drain after the switch covers what is left).",
)
@json_option
def reindex_command(
    config_path: Path | None,
    table: str,
    mappings_path: Path | None,
    settings_path: Path | None,
    dry_run: bool,
    drop_old: bool,
    abort: bool,
    switch_lag: int,
    as_json: bool,
) -> None:
    """Rebuild TABLE's index with no downtime: a new generation (new mappings or settings)
    filled from the topic by a consumer group of its own, verified against the table, then
    swapped in behind the alias atomically while the live indexer keeps writing. Resumes
    after a crash; refuses while another reindex of the table runs, and when the topic no
    longer holds the table's whole history (then it says to backfill first). Exit 0 done,
    2 bad input, 3 a service failed (rerun resumes), 5 refused (docs/operations.md)."""
    from bridge.aws import aws_clients
    from consumers.indexer.main import run_indexer
    from consumers.search.factory import connect
    from dynabridge.operations.backfills import BackfillRuns
    from dynabridge.operations.dynamo import DynamoTables
    from dynabridge.operations.generations import Generations
    from dynabridge.operations.index_reader import build_reader
    from dynabridge.operations.kafka_admin import KafkaAdmin
    from dynabridge.operations.rebuild import Options, Rebuild, load_file
    from dynabridge.operations.reindex import ReindexRefused
    from dynabridge.operations.verify import verify

    settings = settings_or_exit("reindex", config_path)
    with reported("reindex"):
        options = Options(
            mappings=load_file(mappings_path),
            settings=load_file(settings_path),
            dry_run=dry_run,
            drop_old=drop_old,
            switch_lag=switch_lag,
        )
        dynamodb, streams = aws_clients(settings.aws)
        kafka = KafkaAdmin(settings.kafka)
        engine = Generations(connect(settings.search, settings.aws.region))
        reader = build_reader(settings.search, settings.aws.region)

        def verified(index: str, letters: Any) -> dict[str, Any]:
            report = verify(DynamoTables(dynamodb, streams), reader, table=table, index=index,
                            sample=20, dead_letters=letters)  # fmt: skip
            return {**report.as_json(), "differing_ids": report.differing}

        def backfills_started_ms() -> list[int]:
            try:
                runs = BackfillRuns(dynamodb, settings.bridge.lease_table).backfills()
            except OperationError:
                return []
            return [
                int(b.started_at * 1000) for b in runs if b.table == table and b.state == "finished"
            ]

        rebuild = Rebuild(settings, table, options, engine, kafka, verified, reader.documents,
                          backfills_started_ms, run_indexer, _say)  # fmt: skip
        try:
            if abort:
                for line in rebuild.abort():
                    click.echo(f"reindex {table}: {line}")
                return
            report = rebuild.run()
        except ReindexRefused as error:
            fail("reindex", f"refused: {error}", ExitCode.REFUSED)
        finally:
            kafka.close()
            engine.close()
            reader.close()
    _emit(report.as_json() if as_json else report.text(), as_json)


def _say(line: str) -> None:
    click.echo(line, err=True)
