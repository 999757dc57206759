"""Every metric the indexer exports, declared once, typed, in a registry owned by one process run.

Names follow Prometheus conventions (``_total`` counters, ``_seconds`` units); labels are tables,
partitions and attribute names (at most ``fallbacks.MAX_ATTRIBUTES_PER_TABLE`` per table), never
document ids, so cardinality stays bounded.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from consumers.indexer.lag import PartitionLag
from consumers.indexer.records import Partition
from consumers.indexer.scaling import Demand


class DocResult(enum.StrEnum):
    INDEXED = "indexed"
    DELETED = "deleted"
    STALE = "stale"
    """An older or duplicate change the engine refused by version (409): nothing to do."""
    DEAD_LETTERED = "dead_lettered"


class IndexerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.documents = Counter(
            "dynabridge_indexer_documents",
            "Changes settled, by table and result",
            ["table", "result"],
            registry=r,
        )
        self.coalesced = Counter(
            "dynabridge_indexer_coalesced",
            "Changes superseded inside a batch by a newer change to the same document",
            registry=r,
        )
        self.retries = Counter(
            "dynabridge_indexer_retries",
            "Bulk items sent again after a retryable failure",
            ["table"],
            registry=r,
        )
        self.bulk_seconds = Histogram(
            "dynabridge_indexer_bulk_seconds",
            "Latency of one bulk request",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.bulk_docs = Histogram(
            "dynabridge_indexer_bulk_documents",
            "Actions per bulk request",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 2500, 5000),
            registry=r,
        )
        self.consumer_lag = Gauge(
            "dynabridge_indexer_consumer_lag_records",
            "Records between the committable position and the partition's high watermark",
            ["topic", "partition"],
            registry=r,
        )
        self.end_to_end_lag_seconds = Gauge(
            "dynabridge_indexer_end_to_end_lag_seconds",
            "Now minus the event time of the last change indexed, per table",
            ["table"],
            registry=r,
        )
        self.paused = Gauge(
            "dynabridge_indexer_paused",
            "1 while consumption is paused (search engine unavailable or items retrying)",
            registry=r,
        )
        self.paused_seconds = Counter(
            "dynabridge_indexer_paused_seconds",
            "Time spent with consumption paused",
            registry=r,
        )
        self.fallbacks = Counter(
            "dynabridge_indexer_fallback_documents",
            "Documents indexed with an attribute not in one field of its natural type "
            "(mixed_types, deep_map, wide_map, long_value, renamed; docs/indexer.md)",
            ["table", "attribute", "reason"],
            registry=r,
        )
        self.commits = Counter(
            "dynabridge_indexer_commits",
            "Offset commits, by result",
            ["result"],
            registry=r,
        )

        self._declare_scaling(r)

    def settled(self, table: str, result: DocResult, count: int = 1) -> None:
        self.documents.labels(table, result.value).inc(count)

    def forget(self, partition: Partition) -> None:
        """Drop a revoked partition's lag so another member's value is not shadowed."""
        for gauge in (self.consumer_lag, self.consumer_lag_s):
            with contextlib.suppress(KeyError):
                gauge.remove(partition.topic, str(partition.partition))

    # -- scaling signals (docs/operations.md, Scaling) -----------------------------------------

    def _declare_scaling(self, r: CollectorRegistry) -> None:
        self.consumer_lag_s = Gauge(
            "dynabridge_indexer_consumer_lag_seconds",
            "Age of the oldest record of the partition not yet settled, from record timestamps",
            ["topic", "partition"],
            registry=r,
        )
        self.documents_per_s = Gauge(
            "dynabridge_indexer_documents_per_second",
            "Changes this member settled per second (smoothed over 30 s)",
            registry=r,
        )
        self.demand_consumers = Gauge(
            "dynabridge_indexer_demand_consumers",
            "Consumers this member's partitions need (unrounded); the group's desired count is "
            "ceil(sum over members), at most the partitions",
            registry=r,
        )

    def lags(self, lags: Mapping[Partition, PartitionLag]) -> None:
        for partition, lag in lags.items():
            labels = (partition.topic, str(partition.partition))
            self.consumer_lag.labels(*labels).set(lag.lag_records)
            if lag.lag_s is not None:
                self.consumer_lag_s.labels(*labels).set(lag.lag_s)
        self.documents_per_s.set(sum(lag.consumed_per_s for lag in lags.values()))

    def demand(self, need: Demand) -> None:
        self.demand_consumers.set(need.consumers)
