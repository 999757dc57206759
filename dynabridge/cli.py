"""The ``dynabridge`` command: the composition root, the only place that wires the packages.

Subcommands are loaded lazily, by name: ``dynabridge bridge run`` imports the bridge and the
shared runtime, never the operator commands, the dev stack or the demo.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

import click

COMMANDS: Mapping[str, str] = {
    "bridge": "dynabridge.processes:bridge_group",
    "index": "dynabridge.processes:index_group",
    "replay": "dynabridge.operations.commands:replay_command",
    "status": "dynabridge.operations.commands:status_command",
    "verify": "dynabridge.operations.commands:verify_command",
    "trace": "dynabridge.operations.commands:trace_command",
    "backfill": "dynabridge.operations.backfill:backfill_command",
    "dlq": "dynabridge.operations.dlq:dlq_group",
    "reindex": "dynabridge.operations.commands:reindex_command",
    "dev": "dynabridge.devstack.cli:dev_group",
    "demo": "dynabridge.demo.commands:demo_command",
}
"""Command name -> ``module:attribute`` of its click command."""


class LazyGroup(click.Group):
    """A group whose subcommands are imported when named (click's documented lazy pattern)."""

    def __init__(self, *args: Any, lazy: Mapping[str, str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self._lazy.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module_name, _, attribute = target.partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{target} is not a click command")
        return command


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="dynabridge")
def main() -> None:
    """dynabridge: DynamoDB Streams -> Kafka -> Elasticsearch / OpenSearch.

    Two long-running processes, scaled independently:

    \b
      dynabridge bridge run --config FILE   read table streams, publish to Kafka
      dynabridge index run --config FILE    consume the topics, keep the indices equal

    and `dynabridge dev up` for a real local stack (Kafka, Elasticsearch, OpenSearch, moto);
    `dynabridge demo` runs the whole pipeline on it and measures it.
    Operator commands: replay, status, verify, trace, backfill, dlq, reindex
    (docs/operations.md).
    """
