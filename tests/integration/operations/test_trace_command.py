"""`dynabridge trace` follows one item from moto's stream through Kafka to the index and names
the stage a change is stuck at; the key's partition agrees with librdkafka's murmur2."""

from __future__ import annotations

import json
from typing import Any

from confluent_kafka import Producer  # noqa: TID251 - tests build real clients

from bridge.contract import PARTITIONER
from bridge.runtime.exits import ExitCode
from dynabridge.operations.murmur2 import partition

from .ops_pipeline import Pipeline


def _verdict(pipeline: Pipeline, key: str) -> tuple[int, dict[str, Any]]:
    result = pipeline.run("trace", "--table", pipeline.table, "--key", key, "--json")
    assert result.exit_code in (ExitCode.OK, ExitCode.DIFFERENT), result.output
    report = json.loads(result.stdout)
    return result.exit_code, report


def test_trace_follows_an_item_and_names_the_stuck_stage(pipeline: Pipeline) -> None:
    pipeline.create_topic(3)
    pipeline.put({"pk": {"S": "other"}, "sk": {"N": "1"}, "v": {"N": "0"}})
    pipeline.put({"pk": {"S": "alice"}, "sk": {"N": "7"}, "v": {"N": "1"}})
    first = pipeline.stream_events()
    pipeline.publish(first)
    pipeline.index_events(first)
    lease = pipeline.lease(first[-1].sequence_number)
    pipeline.commit(dict.fromkeys(range(3), 1) | {p: o + 1 for p, o in pipeline.produced})

    code, report = _verdict(pipeline, '{"pk": "alice", "sk": 7}')
    assert code == 0, report
    assert report["verdict"]["stage"] == "in_sync"
    facts = report["facts"]
    assert facts["stream"]["sequence_number"] == first[-1].sequence_number
    assert facts["kafka"]["offset"] == pipeline.produced[-1][1]
    assert facts["partition"] == pipeline.produced[-1][0]
    assert facts["index_version"] == facts["kafka"]["version"] == first[-1].version

    # A change the bridge has not published: the checkpoint is behind it.
    pipeline.put({"pk": {"S": "alice"}, "sk": {"N": "7"}, "v": {"N": "2"}})
    code, report = _verdict(pipeline, '{"pk": {"S": "alice"}, "sk": {"N": "7.0"}}')
    assert code == ExitCode.DIFFERENT
    assert report["verdict"]["stage"] == "not_published"
    assert lease.checkpoint in report["verdict"]["text"]

    # Published, but the indexer group has not committed past it: lag.
    second = pipeline.stream_events()[len(first) :]
    pipeline.publish(second)
    pipeline.renew(pipeline.lease_checkpoint(lease, second[-1].sequence_number))
    code, report = _verdict(pipeline, '{"pk": "alice", "sk": 7}')
    assert code == ExitCode.DIFFERENT
    assert report["verdict"]["stage"] == "indexer_lag"
    offset = pipeline.produced[-1][1]
    assert f"in Kafka at offset {offset}" in report["verdict"]["text"]

    # Committed past it without the document changing: not indexed (look in the DLQ).
    where = pipeline.produced[-1][0]
    pipeline.commit({where: offset + 1})
    code, report = _verdict(pipeline, '{"pk": "alice", "sk": 7}')
    assert report["verdict"]["stage"] == "not_indexed"
    assert ".dlq" in report["verdict"]["text"]


def test_trace_rejects_a_key_that_is_not_the_tables(pipeline: Pipeline) -> None:
    result = pipeline.run("trace", "--table", pipeline.table, "--key", '{"pk": "a"}')
    assert result.exit_code == 2
    assert "missing sk" in result.stderr
    assert "pk (S), sk (N)" in result.stderr


def test_murmur2_matches_librdkafka_placement(pipeline: Pipeline) -> None:
    partitions = 7
    pipeline.create_topic(partitions)
    producer = Producer({"bootstrap.servers": pipeline.kafka, "partitioner": PARTITIONER})
    placed: dict[bytes, int] = {}

    def report(error: object, message: object) -> None:
        assert error is None
        placed[message.key()] = message.partition()  # type: ignore[attr-defined]

    keys = [f'{{"pk":{{"S":"user-{n}"}}}}'.encode() for n in range(200)] + [b"\x00", b"abc"]
    for key in keys:
        producer.produce(pipeline.topic, b"x", key, on_delivery=report)
    assert producer.flush(30) == 0
    assert placed == {key: partition(key, partitions) for key in keys}
    assert len(set(placed.values())) == partitions
