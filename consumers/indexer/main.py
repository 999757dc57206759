"""Process 2's composition: build the real clients (Kafka consumer and producer, search engine)
and run the loop.

``dynabridge index run`` (``dynabridge.processes``) loads the settings and calls
:func:`run_indexer`; tests call it with their own stop event. Exit codes: ``bridge.runtime.exits``.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Mapping

from bridge.runtime.health import Heartbeat
from bridge.runtime.process import run_process
from bridge.runtime.settings import ConfigError, Settings, require_tables
from consumers.indexer.metrics import IndexerMetrics

log = logging.getLogger("indexer")

GC_THRESHOLDS = (100_000, 50, 100)
"""The cyclic collector's thresholds in the indexer (Python's defaults: 700, 10, 10).

Each change becomes a few dozen dicts, lists and strings (its decoded image, ``_source`` and
typed fields), none cyclic, all alive until its bulk is answered: at the defaults a collection
ran every 700 of them and walked the batches held, about a tenth of the per-change CPU beside
``gc.freeze`` (docs/benchmarks.md). Cycles are still collected, a hundred times less often."""


def check(settings: Settings) -> None:
    """Refuse, before anything starts, a configuration the indexer cannot run with."""
    require_tables(settings.indexer_tables(), "indexer.tables")
    _check_indices(settings)


def _check_indices(settings: Settings) -> None:
    from consumers.indexer.documents import index_collisions

    clashes = index_collisions(settings.search.index_prefix, settings.indexer_tables())
    if clashes:
        described = "; ".join(f"{index} <- {', '.join(t)}" for index, t in clashes.items())
        raise ConfigError(f"indexer.tables: several tables map to one index ({described})")


def run_indexer(
    settings: Settings,
    stop: threading.Event | None = None,
    index_overrides: Mapping[str, str] | None = None,
) -> int:
    """Build the clients, run the worker until ``stop``, return the process exit code.

    ``index_overrides`` (table -> index) sends a table's changes to another index than its
    alias: ``dynabridge reindex`` fills a new generation this way, in a group of its own.
    """
    metrics = IndexerMetrics()
    heartbeat = Heartbeat(settings.indexer.stall_timeout_s)
    return run_process(
        "indexer",
        settings,
        metrics.registry,
        heartbeat,
        lambda stop: _run(settings, stop, metrics, heartbeat, index_overrides or {}),
        stop,
    )


def _run(
    settings: Settings,
    stop: threading.Event,
    metrics: IndexerMetrics,
    heartbeat: Heartbeat,
    index_overrides: Mapping[str, str],
) -> None:
    from functools import partial

    from bridge.contract import SchemaRegistry, decode, topic_name
    from bridge.runtime.backoff import Backoff
    from bridge.runtime.kafka_security import SecurityWatch
    from consumers.indexer.backend import build_backend
    from consumers.indexer.batching import Limits
    from consumers.indexer.dlq import DeadLetterProducer, ensure_dlq_topics
    from consumers.indexer.kafka import KafkaConsumer, consumer_config
    from consumers.indexer.scaling import IndexerTargets
    from consumers.indexer.tombstones import TombstonePurger
    from consumers.indexer.typed_fields import typed_rules
    from consumers.indexer.worker import LoopConfig, Worker

    indexer = settings.indexer
    tables_by_topic = {
        topic_name(settings.kafka.topic_prefix, t): t for t in settings.indexer_tables()
    }
    config = LoopConfig(
        limits=Limits(indexer.batch_max_docs, indexer.batch_max_bytes, indexer.linger_ms / 1000),
        backoff=Backoff(indexer.retry_initial_backoff_s, indexer.retry_max_backoff_s),
        index_prefix=settings.search.index_prefix,
        tables_by_topic=tables_by_topic,
        outcome_overrides=dict(indexer.outcome_overrides),
        shutdown_timeout_s=indexer.shutdown_timeout_s,
        typed_rules=typed_rules(settings.search),
        index_overrides=index_overrides,
        scaling=IndexerTargets(
            settings.scaling.indexer_drain_s, settings.scaling.indexer_records_per_s_per_consumer
        ),
        max_bulks_in_flight=indexer.max_bulks_in_flight,
    )
    url = settings.kafka.schema_registry_url
    registry = SchemaRegistry(url) if url else None
    backend = build_backend(settings.search, aws_region=settings.aws.region)
    backend.check_access()
    ensure_dlq_topics(settings.kafka, settings.topics, list(tables_by_topic))
    dead_letters = DeadLetterProducer(settings.kafka)
    purger = TombstonePurger(backend, settings.search.tombstone_retention_s)
    consumer = KafkaConsumer(
        consumer_config(settings), list(tables_by_topic), SecurityWatch(settings.kafka)
    )
    try:
        worker = Worker(
            config,
            consumer,
            backend,
            dead_letters,
            metrics,
            heartbeat,
            stop,
            # The envelope and keys are always checked; the new image is checked while
            # to_plain_json converts it, so a malformed one is dead-lettered, never lost.
            decode=partial(decode, registry=registry, validate=False, old_image=False),
        )
        log.info("indexing %s into %s", ", ".join(tables_by_topic), settings.search.backend.value)
        # What exists now (modules, clients, settings) lives as long as the process: frozen, it
        # is left out of the full collections that every batch's documents trigger.
        gc.set_threshold(*GC_THRESHOLDS)
        gc.freeze()
        purger.start()
        worker.run()
    finally:
        purger.stop()
        dead_letters.close()
        backend.close()
