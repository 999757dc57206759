"""Every metric the bridge exposes, declared once, typed, in a registry owned by one process run.

Counters move per page or per checkpoint, never per record, to stay off the hot path.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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
        for gauge in (self.iterator_age_s, self.time_to_trim_s):
            with contextlib.suppress(KeyError):
                gauge.remove(table, shard_id)
