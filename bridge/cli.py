"""The ``dynabridge`` command: the composition root, the only place that builds real clients.

Each process keeps its own command module (``bridge.commands``, ``consumers.indexer.commands``);
the dev stack lives in ``bridge.devstack``. This module only assembles them.
"""

from __future__ import annotations

import click

from bridge.backfill.commands import backfill_command
from bridge.commands import bridge_group
from bridge.demo.commands import demo_command
from bridge.devstack.cli import dev_group
from consumers.indexer.commands import index_group
from consumers.operations.commands import OPERATOR_COMMANDS


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="dynabridge")
def main() -> None:
    """dynabridge: DynamoDB Streams -> Kafka -> Elasticsearch / OpenSearch.

    Two long-running processes, scaled independently:

    \b
      dynabridge bridge run --config FILE   read table streams, publish to Kafka
      dynabridge index run --config FILE    consume the topics, keep the indices equal

    and `dynabridge dev up` for a real local stack (Kafka, Elasticsearch, OpenSearch, moto);
    `dynabridge demo` runs the whole pipeline on it and measures it.
    Operator commands: replay, status, verify, trace (docs/operations.md).
    """


main.add_command(bridge_group)
main.add_command(index_group)
main.add_command(dev_group)
main.add_command(backfill_command)
main.add_command(demo_command)
for _command in OPERATOR_COMMANDS:
    main.add_command(_command)
