"""``dynabridge index run`` as real processes: SIGKILL mid-batch, restart, and a shared group.

The assertion is always the index equals the final state of the change stream: nothing lost.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.contract import dlq_topic, topic_name
from consumers.indexer.documents import index_name
from tests.indices import drop_table_indices
from tests.integration.indexer.indexer_harness import (
    committed,
    create_topic,
    delete_topics,
    fully_committed,
    group_members,
    produce,
    random_stream,
    sources,
)
from tests.polling import wait_for

PARTITIONS = 4
DYNABRIDGE = str(Path(sys.executable).parent / "dynabridge")


class Indexer:
    def __init__(self, config: Path, log: Path) -> None:
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [DYNABRIDGE, "index", "run", "--config", str(config)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def terminate(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(60)

    def close(self) -> None:
        if self.process.poll() is None:
            self.kill()
        self.log.close()


@pytest.fixture
def setup(
    kafka_bootstrap: str,
    es_url: str,
    tmp_path: Path,
    unique_name: Callable[[str], str],
) -> Iterator[dict[str, Any]]:
    table = unique_name("orders")
    topic = topic_name("it.", table)
    create_topic(kafka_bootstrap, topic, PARTITIONS)
    group = unique_name("indexer")
    config = {
        "kafka": {"bootstrap_servers": kafka_bootstrap, "topic_prefix": "it."},
        "topics": {"partitions": 1},
        "indexer": {
            "group_id": group,
            "tables": [table],
            "session_timeout_ms": 6000,
            "batch_max_docs": 100,
            "linger_ms": 20,
            "shutdown_timeout_s": 5,
        },
        "search": {
            "backend": "elasticsearch",
            "hosts": [es_url],
            "index_prefix": "it-",
            "index_settings": {"number_of_replicas": 0},
        },
        "metrics": {"port": 0},
        "logging": {"level": "INFO", "format": "text"},
    }
    path = tmp_path / "indexer.yaml"
    path.write_text(yaml.safe_dump(config))
    made: list[Indexer] = []

    def start() -> Indexer:
        indexer = Indexer(path, tmp_path / "indexer.log")
        made.append(indexer)
        return indexer

    index = index_name("it-", table)
    yield {
        "bootstrap": kafka_bootstrap,
        "url": es_url,
        "table": table,
        "topic": topic,
        "group": group,
        "index": index,
        "start": start,
        "log": tmp_path / "indexer.log",
    }
    for indexer in made:
        indexer.close()
    delete_topics(kafka_bootstrap, [topic, dlq_topic(topic)])
    drop_table_indices(es_url, index)


def _done(s: dict[str, Any]) -> bool:
    return fully_committed(s["bootstrap"], s["group"], s["topic"])


def _progress(s: dict[str, Any]) -> int:
    return sum(committed(s["bootstrap"], s["group"], s["topic"]).values())


def test_sigkill_mid_batch_then_restart_reaches_the_final_state(setup: dict[str, Any]) -> None:
    # Enough changes that the first commit (1 s after the start) comes well before the last: a
    # quiet machine indexes ~20,000 of them in that second.
    stream = random_stream(setup["table"], items=500, changes=60000, seed=3)
    produce(setup["bootstrap"], setup["topic"], stream.events)
    first = setup["start"]()
    wait_for(lambda: _progress(setup) > 0, 60, "a first commit", every_s=0.05)
    first.kill()
    killed_at = _progress(setup)
    assert killed_at < len(stream.events), "the kill came too late to be mid-run"
    second = setup["start"]()
    wait_for(lambda: _done(setup), 120, "everything committed after the restart")
    assert second.terminate() == 0
    assert sources(setup["url"], setup["index"]) == stream.expected()


def test_two_processes_share_the_group_and_a_rebalance_loses_nothing(
    setup: dict[str, Any],
) -> None:
    stream = random_stream(setup["table"], items=400, changes=12000, seed=4)
    chunks = [stream.events[i : i + 500] for i in range(0, len(stream.events), 500)]
    produced = threading.Event()

    def paced() -> None:  # changes keep arriving before, during and after the rebalance
        for chunk in chunks:
            produce(setup["bootstrap"], setup["topic"], chunk)
            time.sleep(0.5)
        produced.set()

    producer = threading.Thread(target=paced, daemon=True)
    one = setup["start"]()
    producer.start()
    wait_for(lambda: _progress(setup) > 0, 60, "the first member's first commit")
    two = setup["start"]()
    wait_for(lambda: group_members(setup["bootstrap"], setup["group"])[1] == 2, 60, "two members")
    wait_for(lambda: _progress(setup) > 3000, 60, "progress with two members")
    one.kill()  # its partitions move to the survivor after session.timeout.ms
    assert not produced.is_set(), "the kill came after the last change: no rebalance mid-stream"
    producer.join(120)
    wait_for(lambda: _done(setup), 120, "everything committed by the survivor")
    assert group_members(setup["bootstrap"], setup["group"])[1] == 1
    assert two.terminate() == 0
    assert sources(setup["url"], setup["index"]) == stream.expected()
