"""``dynabridge bridge ...``: process 1, DynamoDB Streams -> Kafka.

``bridge run`` is the composition root of the bridge: the only place that builds real clients
(DynamoDB, Streams, Kafka) and wires them into the worker loop. Exit codes: 0 after a clean
stop (SIGTERM/SIGINT), 1 after a fatal error (one log line says which), 2 for bad configuration.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import click

from bridge.process import run_process, settings_or_exit
from bridge.settings import Settings, require_tables

log = logging.getLogger("bridge")


@click.group("bridge")
def bridge_group() -> None:
    """Process 1: read DynamoDB Streams shard by shard and publish each change to Kafka."""


@bridge_group.command("run")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="YAML config file; without it, configuration comes from DYNABRIDGE_* variables only.",
)
def run_command(config_path: Path | None) -> None:
    """Read every configured table's stream and publish each change to its Kafka topic.

    Runs until SIGTERM/SIGINT: then stops reading, flushes Kafka, checkpoints and releases
    its shard leases. Several processes on the same tables share the shards.
    """
    settings = settings_or_exit(
        "bridge run",
        "bridge",
        config_path,
        lambda s: require_tables(s.bridge.tables, "bridge.tables"),
    )
    sys.exit(run_bridge(settings))


def run_bridge(settings: Settings, stop: threading.Event | None = None) -> int:
    """Build the clients, run the worker until ``stop``, return the process exit code."""
    # Imported here so that `dynabridge --help` does not load boto3 and librdkafka.
    from bridge.contract import Encoder, SchemaRegistry
    from bridge.coordinator import LeaseCoordinator
    from bridge.discovery import StreamDiscovery
    from bridge.health import Heartbeat
    from bridge.lease_keeper import LeaseKeeper
    from bridge.lease_store import DynamoLeaseStore
    from bridge.metrics import BridgeMetrics
    from bridge.producer import KafkaPublisher, ensure_topics
    from bridge.streams import DynamoStreams, aws_clients
    from bridge.worker import Worker

    metrics = BridgeMetrics()
    heartbeat = Heartbeat(settings.bridge.stall_timeout_s)

    def work(stop: threading.Event) -> None:
        dynamodb, streams = aws_clients(settings.aws)
        coordinator = LeaseCoordinator(
            DynamoLeaseStore(dynamodb, settings.bridge.lease_table),
            StreamDiscovery(dynamodb, streams),
            worker_id=settings.bridge.worker_id,
            tables=settings.bridge.tables,
            settings=settings.bridge,
        )
        infos = coordinator.start()  # validates every table and its stream before anything else
        url = settings.kafka.schema_registry_url
        encoder = Encoder(SchemaRegistry(url) if url else None)
        ensure_topics(settings.kafka, settings.topics, [info.table for info in infos])
        log.info("worker %s reading %d table(s)", settings.bridge.worker_id, len(infos))
        publisher = KafkaPublisher(settings.kafka, encoder)
        worker = Worker(
            coordinator,
            DynamoStreams(streams),
            publisher,
            metrics,
            heartbeat,
            settings.bridge,
            stop,
            keeper=LeaseKeeper(coordinator),
        )
        worker.run()

    return run_process("bridge", settings, metrics.registry, heartbeat, work, stop)
