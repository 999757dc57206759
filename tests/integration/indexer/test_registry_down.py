"""The Confluent-framing path with the schema registry down, on the real broker and a real
``dynabridge index run``: the indexer pauses and retries (not ready, alive), never dead-letters
and never commits past the records it could not decode.

No server implementing the Confluent Schema Registry API could be run here (see
docs/local-stack.md): the registry side is only a closed port, which is exactly the outage.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import yaml
from confluent_kafka import ConsumerGroupTopicPartitions, Producer, TopicPartition  # noqa: TID251
from confluent_kafka.admin import AdminClient  # noqa: TID251 - tests build real clients
from confluent_kafka.admin._listoffsets import OffsetSpec  # noqa: TID251
from confluent_kafka.cimpl import NewTopic  # noqa: TID251

from bridge.contract import PARTITIONER, Encoder, EventName, dlq_topic, kafka_key, topic_name
from tests.integration.indexer.indexer_harness import change
from tests.integration.secure.harness import free_port
from tests.polling import wait_for

DYNABRIDGE = str(Path(sys.executable).parent / "dynabridge")
SINGLE_OBJECT_HEADER = 10
"""c3 01 + the 8-byte schema fingerprint; the Avro body follows, the same in both framings."""


def _confluent_framed(value: bytes, schema_id: int) -> bytes:
    return b"\x00" + schema_id.to_bytes(4, "big") + value[SINGLE_OBJECT_HEADER:]


def _readyz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


def test_an_unreachable_registry_pauses_the_indexer_and_nothing_is_dead_lettered_or_committed(
    kafka_bootstrap: str, es_url: str, unique_name: Callable[[str], str], tmp_path: Path
) -> None:
    table, prefix, group = unique_name("reg"), unique_name("reg") + ".", unique_name("reg-group")
    topic = topic_name(prefix, table)
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, 2, 1)])[topic].result(timeout=30)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "partitioner": PARTITIONER})
    for n in range(20):
        event = change(table, f"k{n}", 1_000_000 + n, EventName.INSERT)
        producer.produce(
            topic, _confluent_framed(Encoder().encode(event), 7), kafka_key(event.keys)
        )
    assert producer.flush(30) == 0
    registry_port, metrics_port = free_port(), free_port()  # nothing listens on registry_port
    config = tmp_path / "indexer.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "kafka": {
                    "bootstrap_servers": kafka_bootstrap,
                    "topic_prefix": prefix,
                    "schema_registry_url": f"http://127.0.0.1:{registry_port}",
                },
                "indexer": {"tables": [table], "group_id": group, "retry_max_backoff_s": 1.0},
                "search": {"hosts": [es_url], "index_prefix": prefix.replace(".", "-")},
                "metrics": {"port": metrics_port},
                "logging": {"format": "text"},
            }
        )
    )
    log = tmp_path / "indexer.log"
    with log.open("wb") as out:
        indexer = subprocess.Popen(
            [DYNABRIDGE, "index", "run", "--config", str(config)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:

        def retried_twice() -> bool:
            assert indexer.poll() is None, log.read_text()
            return "schema registry unavailable (attempt 3" in log.read_text()

        wait_for(retried_twice, 120, "the indexer to retry the registry", every_s=0.5)
        assert _readyz(metrics_port) == 503
        dlq = dlq_topic(topic)
        marks = admin.list_offsets(
            {TopicPartition(dlq, p): _latest() for p in range(2)}, request_timeout=15
        )
        assert [f.result(timeout=15).offset for f in marks.values()] == [0, 0]
    finally:
        indexer.send_signal(signal.SIGTERM)
        code = indexer.wait(60)
    assert code == 0, log.read_text()
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in range(2)])
    answer = admin.list_consumer_group_offsets([request])[group].result(timeout=15)
    assert [tp.offset for tp in answer.topic_partitions] == [-1001, -1001]  # never committed
    for future in admin.delete_topics([topic, dlq_topic(topic)]).values():
        future.result(timeout=30)


def _latest() -> OffsetSpec:
    spec: OffsetSpec = OffsetSpec.latest()  # type: ignore[no-untyped-call]
    return spec
