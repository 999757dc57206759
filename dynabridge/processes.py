"""``dynabridge bridge run`` and ``dynabridge index run``: the two long-running processes.

Each command loads the settings (or exits 2) and hands them to its process's composition
(``bridge.main``, ``consumers.indexer.main``), imported only when the command runs: a process
loads its own code and the shared runtime, nothing of the operator tools, dev stack or demo.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from bridge.runtime.process import settings_or_exit

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="YAML config file; without it, configuration comes from DYNABRIDGE_* variables only.",
)


@click.group("bridge")
def bridge_group() -> None:
    """Process 1: read DynamoDB Streams shard by shard and publish each change to Kafka."""


@bridge_group.command("run")
@config_option
def bridge_run_command(config_path: Path | None) -> None:
    """Read every configured table's stream and publish each change to its Kafka topic.

    Runs until SIGTERM/SIGINT: then stops reading, flushes Kafka, checkpoints and releases
    its shard leases. Several processes on the same tables share the shards. Serves
    /metrics, /healthz and /readyz on metrics.port (default 9108). Exit codes: 0 clean stop,
    1 fatal error, 2 bad configuration (docs/operations.md).
    """
    from bridge.main import check, run_bridge

    settings = settings_or_exit("bridge run", config_path, check, log_as="bridge")
    sys.exit(run_bridge(settings))


@click.group("index")
def index_group() -> None:
    """Process 2: consume the change topics and keep search indices equal to the tables."""


@index_group.command("run")
@config_option
def index_run_command(config_path: Path | None) -> None:
    """Consume every configured table's topic in the group and keep its index up to date.

    Runs until SIGTERM/SIGINT: then finishes (or abandons) the batch in flight, commits what
    is settled and leaves the group. Several processes in one group share the partitions.
    Serves /metrics, /healthz and /readyz on metrics.port (default 9109). Exit codes: 0 clean
    stop, 1 fatal error, 2 bad configuration (docs/operations.md).
    """
    from consumers.indexer.main import check, run_indexer

    settings = settings_or_exit("index run", config_path, check, log_as="indexer")
    sys.exit(run_indexer(settings))
