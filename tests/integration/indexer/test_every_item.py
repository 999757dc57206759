"""Every legal item lands in the index, current, on both engines; what the engine still refuses
is dead-lettered, leaves no older version looking current, and is redriven after the fix.

The real indexer (``run_indexer``) against the shared Kafka, Elasticsearch 9 and OpenSearch 2.19,
with items shaped like real tables' (``tests/items.py``) and the tests' own oracle.
"""

from __future__ import annotations

import dataclasses
import json
import random
from typing import Any

from click.testing import CliRunner
from confluent_kafka import Consumer, Producer  # noqa: TID251 - tests read the real topics
from confluent_kafka.admin import AdminClient  # noqa: TID251
from confluent_kafka.cimpl import NewTopic  # noqa: TID251

from bridge.contract import (
    MAX_RECORD_BYTES,
    PARTITIONER,
    ChangeEvent,
    Encoder,
    EventName,
    dlq_topic,
    headers,
    kafka_key,
)
from bridge.runtime.exits import ExitCode
from dynabridge.cli import main
from tests.integration.indexer.indexer_harness import (
    BASE_VERSION,
    Pipeline,
    Running,
    change,
    http,
    sources,
)
from tests.items import shaped_item
from tests.oracle import expected_source
from tests.polling import wait_for


def _events(table: str, items: int, turns: int, seed: int) -> list[ChangeEvent]:
    """Each item inserted, then changed ``turns - 1`` times (its drifting attribute drifts)."""
    rng = random.Random(seed)
    events, version = [], BASE_VERSION
    for turn in range(turns):
        for number in range(items):
            version += 1
            item = shaped_item(rng, number, turn)
            name = EventName.INSERT if turn == 0 else EventName.MODIFY
            events.append(_event(table, item, version, name))
    return events


def _event(table: str, item: dict[str, Any], version: int, name: EventName) -> ChangeEvent:
    return dataclasses.replace(change(table, item["pk"]["S"], version, name), new_image=item)


def _produce(bootstrap: str, topic: str, events: list[ChangeEvent]) -> None:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "partitioner": PARTITIONER,
            "message.max.bytes": MAX_RECORD_BYTES,
            "compression.type": "lz4",
        }
    )
    encoder = Encoder()
    for event in events:
        producer.produce(
            topic,
            key=kafka_key(event.keys),
            value=encoder.encode(event),
            headers=list(headers(event)),
        )
        producer.poll(0)
    assert producer.flush(60) == 0


def _big_topic(bootstrap: str, topic: str) -> None:
    """The pipeline's topic again, taking records as large as the bridge publishes."""
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.delete_topics([topic])[topic].result(timeout=30)
    config = {"max.message.bytes": str(MAX_RECORD_BYTES)}

    def recreated() -> bool:
        future = admin.create_topics([NewTopic(topic, 3, 1, config=config)])[topic]
        try:
            future.result(timeout=30)
        except Exception:  # noqa: BLE001 - the deletion may still be in progress
            return False
        return True

    wait_for(recreated, 60, f"topic {topic} recreated")


def _letters(bootstrap: str, topic: str) -> list[Any]:
    """Every record of a dead-letter topic (it exists once the indexer started)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"dlq-check-{random.random()}",
            "auto.offset.reset": "earliest",
            "enable.partition.eof": True,
        }
    )
    admin = AdminClient({"bootstrap.servers": bootstrap})
    partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.subscribe([topic])
    letters: list[Any] = []
    ended: set[int] = set()
    deadline_polls = 200
    while len(ended) < len(partitions) and deadline_polls:
        deadline_polls -= 1
        message = consumer.poll(0.2)
        if message is None:
            continue
        if message.error() is not None:
            ended.add(message.partition() or 0)
            continue
        letters.append(message)
    consumer.close()
    assert len(ended) == len(partitions), "the dead-letter topic was not read to its end"
    return letters


def test_items_of_every_shape_are_indexed_current_and_nothing_is_dead_lettered(
    pipeline: Pipeline,
) -> None:
    _big_topic(pipeline.bootstrap, pipeline.topic)
    events = _events(pipeline.table, items=60, turns=5, seed=11)
    _produce(pipeline.bootstrap, pipeline.topic, events)
    run = Running(pipeline.settings(batch_max_docs=40))
    wait_for(pipeline.done, 180, "every change committed")
    assert run.finish() == 0
    final = {e.keys["pk"]["S"]: e.new_image for e in events if e.new_image is not None}
    assert sources(pipeline.url, pipeline.index) == {
        key: expected_source(image) for key, image in final.items()
    }
    assert _letters(pipeline.bootstrap, dlq_topic(pipeline.topic)) == []
    # Typed fields answer searches by type, whatever else the attribute held elsewhere.
    _, prices = http(
        "POST",
        f"{pipeline.url}/{pipeline.index}/_count",
        {"query": {"range": {"ddb.price.N": {"gte": 9.5, "lte": 10}}}},
    )
    assert prices["count"] == sum(
        1 for image in final.values() if image["price"]["N"] in ("10", "9.99")
    )
    _, cities = http(
        "POST",
        f"{pipeline.url}/{pipeline.index}/_count",
        {"query": {"term": {"ddb.profile.M.address.city": "Paris"}}},
    )
    assert cities["count"] == len(final)


def test_a_refused_change_is_dead_lettered_leaves_nothing_stale_and_is_redriven_after_the_fix(
    pipeline: Pipeline, dynamodb: Any, tmp_path: Any
) -> None:
    strict = {"properties": {"qty": {"type": "long"}}}  # a user's own mapping of a natural name
    settings = pipeline.settings()
    settings = settings.model_copy(
        update={"search": settings.search.model_copy(update={"index_mappings": strict})}
    )
    first = change(pipeline.table, "x", BASE_VERSION + 1, EventName.INSERT, qty={"N": "1"})
    refused = change(pipeline.table, "x", BASE_VERSION + 2, EventName.MODIFY, qty={"S": "lots"})
    other = change(pipeline.table, "y", BASE_VERSION + 3, EventName.INSERT, qty={"N": "2"})
    _produce(pipeline.bootstrap, pipeline.topic, [first])
    run = Running(settings)
    wait_for(pipeline.done, 60, "the first change committed")
    assert "x" in sources(pipeline.url, pipeline.index), "the premise: an older version is there"
    _produce(pipeline.bootstrap, pipeline.topic, [refused, other])
    wait_for(pipeline.done, 60, "the refused change settled")
    assert run.finish() == 0
    indexed = sources(pipeline.url, pipeline.index)
    assert "x" not in indexed, "the index must not keep the older version as if it were current"
    assert "y" in indexed
    [letter] = _letters(pipeline.bootstrap, dlq_topic(pipeline.topic))
    assert letter.key() == kafka_key(refused.keys)

    # The table as it is now, for verify: x holds the refused change's image.
    dynamodb.create_table(
        TableName=pipeline.table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        for event in (refused, other):
            assert event.new_image is not None
            dynamodb.put_item(TableName=pipeline.table, Item=event.new_image)
        config = tmp_path / "config.json"
        data = settings.model_dump(mode="json", exclude={"metrics"})
        data["aws"] = {"endpoint_url": dynamodb.meta.endpoint_url}
        config.write_text(json.dumps(data))
        env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        runner = CliRunner(env=env)
        verified = runner.invoke(
            main,
            ["verify", "--config", str(config), "--table", pipeline.table, "--quiet", "--json"],
        )
        assert verified.exit_code == ExitCode.DIFFERENT, verified.output
        report = json.loads(verified.output)
        assert report["differences"]["dead_lettered"] == 1
        assert report["differences"]["missing"] == 0
        [example] = report["examples"]
        assert example["id"] == "x"
        assert "qty" in example["reason"]

        still = runner.invoke(
            main, ["dlq", "redrive", "--config", str(config), "--table", pipeline.table]
        )
        assert still.exit_code == ExitCode.DIFFERENT, "the cause is not fixed yet: refused again"
        # The fix: qty may hold what is not a number (a dynamic mapping setting).
        status, _ = http(
            "PUT",
            f"{pipeline.url}/{pipeline.index}/_mapping",
            {"properties": {"qty": {"type": "long", "ignore_malformed": True}}},
        )
        assert status == 200
        redriven = runner.invoke(
            main, ["dlq", "redrive", "--config", str(config), "--table", pipeline.table]
        )
        assert redriven.exit_code == ExitCode.OK, redriven.output
        assert "indexed 1" in redriven.output
        verified = runner.invoke(
            main, ["verify", "--config", str(config), "--table", pipeline.table, "--quiet"]
        )
        assert verified.exit_code == ExitCode.OK, verified.output
    finally:
        dynamodb.delete_table(TableName=pipeline.table)


def test_a_dead_letter_over_a_megabyte_is_written_even_to_an_existing_small_dlq_topic(
    pipeline: Pipeline,
) -> None:
    _big_topic(pipeline.bootstrap, pipeline.topic)
    admin = AdminClient({"bootstrap.servers": pipeline.bootstrap})
    small = {"max.message.bytes": "1000000"}  # what earlier versions created
    admin.create_topics([NewTopic(dlq_topic(pipeline.topic), 3, 1, config=small)])[
        dlq_topic(pipeline.topic)
    ].result(timeout=30)
    settings = pipeline.settings()
    strict = {"properties": {"blob": {"type": "long"}}}
    settings = settings.model_copy(
        update={"search": settings.search.model_copy(update={"index_mappings": strict})}
    )
    big = change(
        pipeline.table, "big", BASE_VERSION + 1, EventName.INSERT, blob={"S": "b" * 1_200_000}
    )
    after = change(pipeline.table, "after", BASE_VERSION + 2, EventName.INSERT)
    _produce(pipeline.bootstrap, pipeline.topic, [big, after])
    run = Running(settings)
    wait_for(pipeline.done, 90, "both changes settled")
    assert run.finish() == 0, "the indexer must not stop on a big dead letter"
    [letter] = _letters(pipeline.bootstrap, dlq_topic(pipeline.topic))
    assert len(letter.value()) > 1_200_000
    assert "after" in sources(pipeline.url, pipeline.index)
