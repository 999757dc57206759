"""Process 1's composition: build the real clients (DynamoDB, Streams, Kafka) and run the loop.

``dynabridge bridge run`` (``dynabridge.processes``) loads the settings and calls
:func:`run_bridge`; tests call it with their own stop event. Exit codes: ``bridge.runtime.exits``.
"""

from __future__ import annotations

import gc
import logging
import threading

from bridge.runtime.process import run_process
from bridge.runtime.settings import Settings, require_tables

log = logging.getLogger("bridge")

GC_THRESHOLDS = (100_000, 50, 100)
"""The cyclic collector's thresholds in the bridge (Python's defaults: 700, 10, 10).

A GetRecords page is a tree of some hundred thousand dicts, lists and strings, never cyclic;
at the defaults a collection ran every 700 of them and walked every page still held: the
parse cost three times what it costs with the collector off (measured, docs/benchmarks.md).
Cycles are still collected, a hundred times less often."""


def tune_memory() -> None:
    """The process-wide memory settings the read path needs; before any thread starts."""
    gc.set_threshold(*GC_THRESHOLDS)


def check(settings: Settings) -> None:
    """Refuse, before anything starts, a configuration the bridge cannot run with."""
    require_tables(settings.bridge.tables, "bridge.tables")


def run_bridge(settings: Settings, stop: threading.Event | None = None) -> int:
    """Build the clients, run the worker until ``stop``, return the process exit code."""
    # Imported here so that `dynabridge --help` does not load boto3 and librdkafka.
    from bridge.aws import aws_clients
    from bridge.checkpoint_writer import CheckpointWriter
    from bridge.contract import Encoder, SchemaRegistry
    from bridge.coordinator import LeaseCoordinator
    from bridge.discovery import StreamDiscovery
    from bridge.fetcher import Fetcher
    from bridge.lease_keeper import LeaseKeeper
    from bridge.lease_snapshots import LeaseSnapshots
    from bridge.lease_store import DynamoLeaseStore
    from bridge.metrics import BridgeMetrics
    from bridge.producer import KafkaPublisher, ensure_topics
    from bridge.runtime.health import Heartbeat
    from bridge.scaling import BridgeTargets
    from bridge.streams import Binaries, DynamoStreams
    from bridge.worker import Worker

    tune_memory()
    metrics = BridgeMetrics()
    heartbeat = Heartbeat(settings.bridge.stall_timeout_s)

    def work(stop: threading.Event) -> None:
        # The fetch threads, plus discovery's DescribeStream calls, each hold a connection.
        bridge = settings.bridge
        dynamodb, streams = aws_clients(settings.aws, streams_connections=bridge.fetch_threads + 4)
        coordinator = LeaseCoordinator(
            DynamoLeaseStore(dynamodb, settings.bridge.lease_table),
            StreamDiscovery(dynamodb, streams),
            worker_id=settings.bridge.worker_id,
            tables=settings.bridge.tables,
            settings=settings.bridge,
            on_gap=lambda table: metrics.trimmed_gaps.labels(table).inc(),
        )
        infos = coordinator.start()  # validates every table and its stream before anything else
        url = settings.kafka.schema_registry_url
        encoder = Encoder(SchemaRegistry(url) if url else None)
        ensure_topics(settings.kafka, settings.topics, [info.table for info in infos])
        log.info("worker %s reading %d table(s)", settings.bridge.worker_id, len(infos))
        publisher = KafkaPublisher(settings.kafka, encoder)
        # Images keep their binaries as the base64 text the Avro value carries anyway.
        fast_streams = DynamoStreams(streams, binaries=Binaries.BASE64)
        fetcher = Fetcher(
            fast_streams,
            threads=bridge.fetch_threads,
            max_pages=bridge.fetch_max_pages,
            max_bytes=bridge.fetch_max_bytes,
        )
        worker = Worker(
            coordinator,
            fast_streams,
            publisher,
            metrics,
            heartbeat,
            bridge,
            stop,
            keeper=LeaseKeeper(coordinator),
            fetcher=fetcher,
            checkpoints=CheckpointWriter(coordinator),
            lease_snapshots=LeaseSnapshots(coordinator),
            scaling=BridgeTargets(
                settings.scaling.bridge_max_unread_age_s,
                settings.scaling.bridge_busy_shards_per_worker,
            ),
        )
        # What exists now (modules, clients, settings) lives as long as the process: frozen, it
        # is left out of the collections that the pages' objects trigger.
        gc.freeze()
        worker.run()

    return run_process("bridge", settings, metrics.registry, heartbeat, work, stop)
