"""Every metric the bridge exposes, declared once, typed, in a registry owned by one process run.

Counters move per page or per checkpoint, never per record, to stay off the hot path.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from bridge.scaling import Fleet

TRIM_HORIZON_S = 24 * 3600
"""DynamoDB Streams keeps records for 24 hours, then may trim them at any moment."""

_SHARD = ["table", "shard"]
_STAGE_BUCKETS_S = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


class BridgeMetrics:
    """The bridge's metrics; a fresh registry per instance (no global state)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry if registry is not None else CollectorRegistry()
        p = "dynabridge_bridge_"
        self.records_read = Counter(
            p + "records_read", "Stream records read", ["table"], registry=r
        )
        self.records_published = Counter(
            p + "records_published", "Change events acknowledged by Kafka", ["table"], registry=r
        )
        self.iterator_age_s = Gauge(
            p + "iterator_age_seconds",
            "now - ApproximateCreationDateTime of the last record read; 0 when caught up",
            _SHARD,
            registry=r,
        )
        self.time_to_trim_s = Gauge(
            p + "time_to_trim_seconds",
            "Lower bound of the seconds until the 24 h retention may trim the oldest unread record",
            _SHARD,
            registry=r,
        )
        self.get_records_s = Histogram(
            p + "get_records_seconds",
            "GetRecords latency (including iterator acquisition)",
            ["table"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
        self.throttles = Counter(p + "throttles", "Throttled Streams calls", ["table"], registry=r)
        self.produce_errors = Counter(
            p + "produce_errors", "Records Kafka refused for good (fatal)", ["table"], registry=r
        )
        self.leases_owned = Gauge(p + "leases_owned", "Shard leases this worker holds", registry=r)
        self.trimmed_gaps = Counter(
            p + "trimmed_gaps",
            "Ranges of stream records trimmed before they were read (data loss)",
            ["table"],
            registry=r,
        )
        self.checkpoints = Counter(p + "checkpoints", "Checkpoints written", ["table"], registry=r)
        self.shards_finished = Counter(
            p + "shards_finished", "Shards read to SHARD_END", ["table"], registry=r
        )
        self.in_flight = Gauge(
            p + "in_flight_records", "Records handed to Kafka, not yet acknowledged", registry=r
        )
        self._read_path(p, r)
        self._declare_scaling(r, p)

    def _read_path(self, p: str, r: CollectorRegistry) -> None:
        """The cost of each stage a record goes through, per page (one observation each)."""
        self.parse_s = Histogram(
            p + "parse_seconds",
            "Parsing one GetRecords response body (orjson), per page",
            ["table"],
            buckets=_STAGE_BUCKETS_S,
            registry=r,
        )
        self.convert_s = Histogram(
            p + "convert_seconds",
            "Turning one page's records into versioned change events, per page",
            ["table"],
            buckets=_STAGE_BUCKETS_S,
            registry=r,
        )
        self.encode_s = Histogram(
            p + "encode_seconds",
            "Encoding one page's events (Avro, key, headers) and queueing them in the producer",
            ["table"],
            buckets=_STAGE_BUCKETS_S,
            registry=r,
        )
        self.produce_ack_s = Histogram(
            p + "produce_ack_seconds",
            "From queueing a page's last record in the producer to Kafka acknowledging it",
            ["table"],
            buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
            registry=r,
        )
        self.fetch_pages = Gauge(
            p + "fetch_pages",
            "Pages held by the fetch stage: requested or fetched, not yet published",
            registry=r,
        )
        self.fetch_bytes = Gauge(
            p + "fetch_bytes",
            "Bytes of the pages held by the fetch stage (response bodies; estimates in flight)",
            registry=r,
        )

    def shard_position(self, table: str, shard_id: str, age_s: float) -> None:
        """Record how far behind a shard's reading is (0 = caught up)."""
        self.iterator_age_s.labels(table, shard_id).set(age_s)
        self.time_to_trim_s.labels(table, shard_id).set(TRIM_HORIZON_S - age_s)

    def forget_shard(self, table: str, shard_id: str) -> None:
        """Drop a shard's series once this worker no longer reads it."""
        for gauge in (self.iterator_age_s, self.time_to_trim_s, self.unread_age_s):
            with contextlib.suppress(KeyError):
                gauge.remove(table, shard_id)

    # -- scaling signals (docs/operations.md, Scaling) -----------------------------------------
    # fleet_* and desired_workers come from the lease table: every worker exports the same
    # values (aggregate with max()); the others are this worker's own.

    def _declare_scaling(self, r: CollectorRegistry, p: str) -> None:
        self.unread_age_s = Gauge(
            p + "unread_age_seconds",
            "Age of the oldest unread record of a shard this worker holds (an upper bound)",
            _SHARD,
            registry=r,
        )
        self.busy_leases_owned = Gauge(
            p + "busy_leases_owned", "Busy shard leases this worker holds", registry=r
        )
        self.fleet_open_shards = Gauge(
            p + "fleet_open_shards", "Shards not finished (SHARD_END), per table", ["table"],
            registry=r,
        )  # fmt: skip
        self.fleet_busy_shards = Gauge(
            p + "fleet_busy_shards", "Shards their owner measures busy, per table", ["table"],
            registry=r,
        )  # fmt: skip
        self.fleet_read_per_s = Gauge(
            p + "fleet_read_records_per_second",
            "Records read per second by the whole fleet, per table (smoothed over a minute)",
            ["table"],
            registry=r,
        )
        self.fleet_oldest_unread_age_s = Gauge(
            p + "fleet_oldest_unread_age_seconds",
            "Age of the oldest unread record of any shard of the table (0: nothing waiting)",
            ["table"],
            registry=r,
        )
        self.fleet_workers = Gauge(
            p + "fleet_workers", "Live bridge workers (owners of unexpired leases)", registry=r
        )
        self.desired_workers = Gauge(
            p + "desired_workers",
            "Bridge workers the fleet needs now (docs/operations.md, Scaling)",
            registry=r,
        )
        self._fleet_tables: set[str] = set()

    def fleet(self, view: Fleet, worker_id: str) -> None:
        """Export the fleet's load as the lease table shows it, and this worker's share."""
        tables = {load.table for load in view.tables}
        for gone in self._fleet_tables - tables:
            for gauge in (
                self.fleet_open_shards,
                self.fleet_busy_shards,
                self.fleet_read_per_s,
                self.fleet_oldest_unread_age_s,
            ):
                with contextlib.suppress(KeyError):
                    gauge.remove(gone)
        self._fleet_tables = tables
        for load in view.tables:
            self.fleet_open_shards.labels(load.table).set(load.open_shards)
            self.fleet_busy_shards.labels(load.table).set(load.busy_shards)
            self.fleet_read_per_s.labels(load.table).set(load.read_per_s)
            self.fleet_oldest_unread_age_s.labels(load.table).set(load.oldest_unread_age_s or 0.0)
        self.fleet_workers.set(view.workers)
        self.desired_workers.set(view.desired.count)
        self.busy_leases_owned.set(view.busy_per_worker.get(worker_id, 0))

    def unread_ages(self, ages: Iterable[tuple[str, str, float]]) -> None:
        """Set (table, shard, age) for the shards this worker holds."""
        for table, shard_id, age_s in ages:
            self.unread_age_s.labels(table, shard_id).set(age_s)
