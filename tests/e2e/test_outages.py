"""Outages of the servers around the processes: the test's own Kafka broker restarted, and the
search engine unreachable for 30 s. Neither process may exit or lose a change."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from dynabridge.devstack.config import StackConfig
from tests.e2e.checks import index_difference, index_documents
from tests.e2e.faults import DedicatedKafka, TcpProxy, after
from tests.e2e.harness import E2E
from tests.e2e.pipeline import Pipeline
from tests.e2e.workload import KeyKind, Ledger, Progress, run_workload

OUTAGE_S = 30.0


@pytest.fixture
def dedicated_kafka(stack_config: StackConfig, workdir: Path) -> Iterator[DedicatedKafka]:
    """A broker of this test's own: the shared one serves everybody else and is never restarted.
    Requested before ``e2e``, so it is stopped after the processes."""
    kafka = DedicatedKafka(stack_config, workdir / "kafka-run")
    started = kafka.start()
    print(f"dedicated Kafka at {kafka.bootstrap} ready after {started:.1f}s (log {kafka.log_path})")
    try:
        yield kafka
    finally:
        kafka.stop()


def test_kafka_broker_restart_in_the_middle_of_the_workload(
    dedicated_kafka: DedicatedKafka, e2e: E2E
) -> None:
    pipeline, ledgers = e2e.make([KeyKind.S, KeyKind.S_N], kafka=dedicated_kafka.bootstrap)
    pipeline.start_all()
    progress = Progress(3_000)
    at = random.Random(e2e.seed).uniform(0.25, 0.45)
    timeline: list[str] = []

    def restart() -> None:
        assert after(lambda: progress.fraction() >= at, 120)
        timeline.append(f"stopping the broker at {progress.fraction():.0%}")
        stopped_s = dedicated_kafka.stop()
        timeline.append(f"broker down ({stopped_s:.1f}s) at {progress.fraction():.0%}")
        started_s = dedicated_kafka.start()
        timeline.append(f"broker back after {started_s:.1f}s at {progress.fraction():.0%}")

    thread = threading.Thread(target=restart, daemon=True)
    thread.start()
    run_workload(e2e.writers(ledgers, 300), progress, pace_per_s=100)
    thread.join(180)
    print("\n".join(timeline))
    assert len(timeline) == 3, timeline
    assert not timeline[1].endswith("100%"), f"the broker went down after the workload: {timeline}"
    waited = e2e.wait(pipeline, ledgers, 180)
    print(f"index equal {waited:.1f}s after the workload")
    assert set(pipeline.stop_all().values()) == {0}
    e2e.check(pipeline, ledgers)


def test_search_engine_unreachable_for_30s_in_the_middle_of_the_workload(e2e: E2E) -> None:
    """Through a TCP proxy the test cuts (every connection closed, connects refused), in front
    of the shared Elasticsearch, which itself is never touched."""
    real = urlsplit(e2e.es_url)
    proxy = TcpProxy(real.hostname or "127.0.0.1", real.port or 9200)
    try:
        pipeline, ledgers = e2e.make(
            [KeyKind.S, KeyKind.S_N], search_url=proxy.url, engine_url=e2e.es_url
        )
        operator = pipeline.operator_config(search={"hosts": [e2e.es_url]})
        pipeline.start_all()
        progress = Progress(3_000)
        outage = _Outage(e2e, pipeline, ledgers, proxy, progress)
        thread = threading.Thread(target=outage.run, daemon=True)
        thread.start()
        run_workload(e2e.writers(ledgers, 300), progress, pace_per_s=60)
        thread.join(OUTAGE_S + 60)
        print("\n".join(outage.timeline))
        assert outage.behind_at_restore, "the index caught up during the outage: it was no outage"
        assert outage.restored_at < 1.0, "the outage was not in the middle of the workload"
        waited = e2e.wait(pipeline, ledgers, 120)
        print(f"index equal {waited:.1f}s after the workload")
        assert set(pipeline.stop_all().values()) == {0}
        e2e.check(pipeline, ledgers, verify_config=operator)
    finally:
        proxy.close()


class _Outage:
    def __init__(
        self,
        e2e: E2E,
        pipeline: Pipeline,
        ledgers: list[Ledger],
        proxy: TcpProxy,
        progress: Progress,
    ) -> None:
        self._e2e, self._pipeline, self._ledgers = e2e, pipeline, ledgers
        self._proxy, self._progress = proxy, progress
        self.timeline: list[str] = []
        self.behind_at_restore = False
        self.restored_at = 1.0

    def _indexed(self) -> int:
        names = self._pipeline.names
        return sum(len(index_documents(self._e2e.es_url, names.index(t))) for t in names.tables)

    def run(self) -> None:
        # The path works before it is cut: documents are arriving.
        assert after(lambda: self._progress.fraction() >= 0.15 and self._indexed() > 0, 120)
        self._proxy.cut()
        cut_at = time.monotonic()
        self.timeline.append(f"search engine cut at {self._progress.fraction():.0%}")
        while time.monotonic() - cut_at < OUTAGE_S:
            self._pipeline.assert_alive()
            time.sleep(1.0)
        names = self._pipeline.names
        self.behind_at_restore = any(
            index_difference(
                ledger, index_documents(self._e2e.es_url, names.index(ledger.spec.name)), set()
            )
            for ledger in self._ledgers
        )
        self._proxy.restore()
        self.restored_at = self._progress.fraction()
        self.timeline.append(
            f"restored after {time.monotonic() - cut_at:.1f}s at {self.restored_at:.0%}"
        )
