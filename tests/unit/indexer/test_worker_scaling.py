"""The loop exports lag in records and seconds, its rate and its share of the consumer demand."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bridge.contract import decode
from bridge.runtime.backoff import Backoff
from bridge.runtime.health import Heartbeat
from consumers.indexer.batching import Limits
from consumers.indexer.metrics import IndexerMetrics
from consumers.indexer.records import Partition, Record
from consumers.indexer.scaling import IndexerTargets
from consumers.indexer.worker import LoopConfig, Worker
from tests.unit.indexer.fakes import (
    P0,
    TOPIC,
    FakeClock,
    FakeConsumer,
    FakeDeadLetters,
    FakeSearch,
    event,
    inline,
    record,
)

WALL_S = 1_700_000_010.0


class EndsConsumer(FakeConsumer):
    """High watermarks as the test sets them."""

    def __init__(self, clock: FakeClock) -> None:
        super().__init__(clock, (P0,))
        self.ends: dict[Partition, int] = {}

    def high_watermark(self, partition: Partition) -> int | None:
        return self.ends.get(partition)


def test_lag_seconds_rate_and_demand_are_exported() -> None:
    clock = FakeClock()
    consumer = EndsConsumer(clock)
    metrics = IndexerMetrics()
    config = LoopConfig(
        limits=Limits(max_docs=100, max_bytes=1 << 20, linger_s=0.05),
        backoff=Backoff(initial_s=0.5, max_s=4.0),
        index_prefix="",
        tables_by_topic={TOPIC: "orders"},
        outcome_overrides={},
        shutdown_timeout_s=5.0,
        commit_interval_s=1.0,
        scaling=IndexerTargets(drain_s=60.0, records_per_s_per_consumer=100.0),
    )
    worker = Worker(
        config,
        consumer,
        FakeSearch(clock),
        FakeDeadLetters(),
        metrics,
        Heartbeat(60.0, clock=clock),
        consumer.stop,
        clock=clock,
        wall_clock=lambda: WALL_S,
        submit=inline,
        decode=decode,
    )
    written_ms = int((WALL_S - 40) * 1000)
    records: list[Record] = [
        replace(record(P0, n, event(f"d{n}", n + 1)), timestamp_ms=written_ms) for n in range(10)
    ]
    consumer.add(*records[:5])

    def more(consumer: FakeConsumer) -> None:
        if clock.now < 1002.0:
            consumer.before_consume.append(more)  # until the first rate sample was taken
        else:
            consumer.add(*records[5:])

    consumer.before_consume.append(more)
    consumer.ends[P0] = 3_010  # 3,000 more records wait in the partition, not fetched yet
    consumer.stop_when = lambda: clock.now > 1005.0
    worker.run()

    def value(name: str, **labels: str) -> float | None:
        return metrics.registry.get_sample_value(name, labels)

    labels = {"topic": P0.topic, "partition": "0"}
    assert value("dynabridge_indexer_consumer_lag_records", **labels) == 3_000
    # The oldest unsettled record was never fetched: the newest settled one dates the lag.
    assert value("dynabridge_indexer_consumer_lag_seconds", **labels) == pytest.approx(40.0)
    assert (value("dynabridge_indexer_documents_per_second") or 0) > 0
    # 3,000 records to drain in 60 s (50/s) at the 100/s floor per consumer: half a consumer.
    assert value("dynabridge_indexer_demand_consumers") == pytest.approx(0.5)
