"""``dynabridge dlq list|show|redrive``: a table's dead letters, and applying them again.

Exit codes (``bridge.runtime.exits``): 0 done (``redrive``: nothing refused again); 2 bad
configuration or input; 3 a service could not be read or written; 4 ``redrive`` left letters
the engine still refuses (their reasons are listed).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from bridge.runtime.exits import ExitCode
from bridge.runtime.process import fail, settings_or_exit
from bridge.runtime.settings import Settings
from dynabridge.operations.commands import config_option, json_option, reported, table_option

reason_option = click.option(
    "--reason",
    default=None,
    metavar="ERROR_TYPE",
    help="Only letters of this error type (as `dlq list` shows, e.g. document_parsing_exception).",
)


@click.group("dlq")
def dlq_group() -> None:
    """A table's dead letters (<topic>.dlq): list them, show one, redrive them after a fix."""


def _letters(settings: Settings, table: str) -> list[Any]:
    from bridge.contract import dlq_topic, topic_name
    from dynabridge.operations.dead_letters import read_letters
    from dynabridge.operations.kafka_admin import KafkaAdmin

    kafka = KafkaAdmin(settings.kafka)
    try:
        return read_letters(kafka, dlq_topic(topic_name(settings.kafka.topic_prefix, table)))
    finally:
        kafka.close()


@dlq_group.command("list")
@config_option
@table_option
@reason_option
@json_option
def list_command(config_path: Path | None, table: str, reason: str | None, as_json: bool) -> None:
    """Every dead letter of TABLE, oldest first: position (partition:offset), id, version,
    error type and reason, and the change record it was. A count per error type first."""
    from dynabridge.operations.dead_letters import matching, summary

    settings = settings_or_exit("dlq list", config_path)
    with reported("dlq list"):
        letters = matching(_letters(settings, table), reason)
    if as_json:
        payload: dict[str, Any] = {"table": table, "counts": summary(letters)}
        payload["letters"] = [item.as_json() for item in letters]
        click.echo(json.dumps(payload, indent=2))
        return
    counts = ", ".join(f"{kind} {count}" for kind, count in summary(letters).items())
    click.echo(f"{len(letters)} dead letter(s) of {table}: {counts or 'none'}")
    for item in letters:
        click.echo(
            f"  {item.position}  {item.doc_id}  v{item.version}  {item.event_name}  "
            f"{item.error_type}: {item.reason[:160]}"
        )


@dlq_group.command("show")
@config_option
@table_option
@click.option("--position", required=True, metavar="PARTITION:OFFSET", help="As `dlq list` shows.")
def show_command(config_path: Path | None, table: str, position: str) -> None:
    """One dead letter in full, as JSON: its headers, why it was refused, and the change it
    carries."""
    from bridge.contract import ContractError, SchemaLookupError, SchemaRegistry, decode

    settings = settings_or_exit("dlq show", config_path)
    with reported("dlq show"):
        found = [item for item in _letters(settings, table) if item.position == position]
    if not found:
        fail(
            "dlq show",
            f"no dead letter at {position} for {table} (see `dlq list`)",
            ExitCode.CONFIG,
        )
    item = found[0]
    url = settings.kafka.schema_registry_url
    details: dict[str, Any] = {**item.as_json(), "headers": {}}
    for name, value in item.record.headers:
        details["headers"][name] = None if value is None else value.decode("utf-8", "replace")
    try:
        value = item.record.value or b""
        event = decode(value, SchemaRegistry(url) if url else None)
        details["change"] = {
            "event_name": event.event_name.value,
            "keys": event.keys,
            "new_image": event.new_image,
            "version": event.version,
            "sequence_number": event.sequence_number,
        }
    except (ContractError, SchemaLookupError) as error:
        details["change"] = f"not decodable: {error}"
    click.echo(json.dumps(details, indent=2, default=str))


@dlq_group.command("redrive")
@config_option
@table_option
@reason_option
@click.option("--dry-run", is_flag=True, help="Decode and check every letter; send nothing.")
@json_option
def redrive_command(
    config_path: Path | None, table: str, reason: str | None, dry_run: bool, as_json: bool
) -> None:
    """Apply TABLE's dead letters again, in order, after the cause is fixed (a mapping, a
    template, an ingest pipeline). Idempotent: every write carries the change's version, so a
    newer change is never overwritten; letters of items the table no longer has are skipped
    (they would resurrect them). Safe while the indexer runs. Exit 0 when nothing is refused
    again, 4 when some still are (listed with their reasons)."""
    from functools import partial

    from bridge.contract import SchemaRegistry, decode
    from consumers.indexer.backend import build_backend
    from consumers.indexer.typed_fields import typed_rules
    from dynabridge.operations.dead_letters import matching
    from dynabridge.operations.dynamo import DynamoTables
    from dynabridge.operations.redrive import redrive

    settings = settings_or_exit("dlq redrive", config_path)
    url = settings.kafka.schema_registry_url
    with reported("dlq redrive"):
        from bridge.aws import aws_clients

        letters = matching(_letters(settings, table), reason)
        dynamodb, streams = aws_clients(settings.aws)
        engine = build_backend(settings.search, settings.aws.region)
        try:
            report = redrive(
                letters,
                table=table,
                decode=partial(decode, registry=SchemaRegistry(url) if url else None),
                engine=engine,
                items=DynamoTables(dynamodb, streams),
                index_prefix=settings.search.index_prefix,
                rules=typed_rules(settings.search),
                dry_run=dry_run,
            )
        finally:
            engine.close()
    click.echo(json.dumps(report.as_json(), indent=2) if as_json else report.text())
    sys.exit(ExitCode.OK if report.settled else ExitCode.DIFFERENT)
