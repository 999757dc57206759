"""`dynabridge bridge run` against the simulator: the real process, its boto3 clients and its
discovery read a stream that rotates and splits into real Kafka. The oracle is the simulator's
list of every record it emitted; this test injects no fault (the fault suites of the bridge
build on the same fixtures)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from confluent_kafka import Consumer  # noqa: TID251 - the test reads the real topic
from confluent_kafka.admin import AdminClient  # noqa: TID251 - the test deletes its topic

from bridge.contract import HEADER_SEQUENCE_NUMBER
from tests.polling import wait_for
from tests.streamsim import SimTables, StreamSimServer


@pytest.fixture
def bridge_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bridge-on-sim")


def start_bridge(config: dict[str, object], workdir: Path) -> subprocess.Popen[bytes]:
    path = workdir / "dynabridge.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DYNABRIDGE_")}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", PYTHONUNBUFFERED="1")
    executable = Path(sys.executable).parent / "dynabridge"
    with (workdir / "bridge.log").open("ab") as log:
        return subprocess.Popen(
            [str(executable), "bridge", "run", "--config", str(path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )


@pytest.fixture
def topic_reader(kafka_bootstrap: str) -> Iterator[list[str]]:
    """Topics the test names are deleted after it."""
    topics: list[str] = []
    yield topics
    if topics:
        admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
        for future in admin.delete_topics(topics).values():
            with contextlib.suppress(Exception):
                future.result(30)


def test_the_bridge_reads_a_rotating_splitting_stream_into_kafka(
    sim_tables: SimTables,
    streamsim: StreamSimServer,
    kafka_bootstrap: str,
    bridge_dir: Path,
    topic_reader: list[str],
) -> None:
    table = sim_tables.moto_table("bridged", shards=3, rotate_every_records=25, split_rate=0.3)
    lease_table = f"leases-{uuid.uuid4().hex[:8]}"
    prefix = f"sim{uuid.uuid4().hex[:6]}."
    topic = prefix + table.name
    topic_reader.append(topic)
    config = {
        "aws": {"region": "us-east-1", "endpoint_url": streamsim.endpoint},
        "kafka": {"bootstrap_servers": kafka_bootstrap, "topic_prefix": prefix},
        "topics": {"partitions": 3, "replication_factor": 1},
        "bridge": {
            "tables": [table.name],
            "lease_table": lease_table,
            "lease_duration_s": 3.0,
            "lease_renew_interval_s": 0.75,
            "lease_take_interval_s": 1.0,
            "shard_sync_interval_s": 2.0,
            "idle_poll_min_s": 0.05,
            "idle_poll_max_s": 0.2,
            "shutdown_timeout_s": 10.0,
        },
        "metrics": {"port": 0},
        "logging": {"level": "INFO", "format": "text"},
    }
    bridge = start_bridge(config, bridge_dir)
    moto = sim_tables.moto_dynamodb
    try:
        for revision in range(5):
            for key in range(40):
                moto.put_item(
                    TableName=table.name,
                    Item={"pk": {"S": f"k{key}"}, "sk": {"N": "1"}, "rev": {"N": str(revision)}},
                )
        wait_for(lambda: len(sim_tables.sim.records(table.name)) == 200, 60, "200 records")
        emitted = sim_tables.sim.records(table.name)
        assert len({r.shard_id for r in emitted}) > 8  # the stream rotated and split

        consumer = Consumer(
            {
                "bootstrap.servers": kafka_bootstrap,
                "group.id": f"check-{uuid.uuid4().hex[:8]}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
            }
        )
        consumer.subscribe([topic])
        published: dict[str, list[int]] = defaultdict(list)
        seen: set[int] = set()

        def all_published() -> bool:
            assert bridge.poll() is None, (bridge_dir / "bridge.log").read_text()[-3000:]
            for message in consumer.consume(500, timeout=0.5):
                if message.error():
                    continue
                header = dict(message.headers() or [])[HEADER_SEQUENCE_NUMBER]
                assert isinstance(header, bytes)
                sequence = int(header)
                if sequence not in seen:
                    seen.add(sequence)
                    published[bytes(message.key() or b"").decode(errors="replace")].append(sequence)
            return len(seen) >= 200

        wait_for(all_published, 120, "every emitted record in Kafka", every_s=0.1)
        consumer.close()
        assert seen == {int(r.sequence_number) for r in emitted}
        for sequences in published.values():  # per key, first publications in stream order
            assert sequences == sorted(sequences)
    finally:
        bridge.send_signal(signal.SIGTERM)
        code = bridge.wait(60)
        with contextlib.suppress(moto.exceptions.ResourceNotFoundException):
            moto.delete_table(TableName=lease_table)
    assert code == 0
