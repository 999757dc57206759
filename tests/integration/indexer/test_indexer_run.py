"""The indexer loop on the real stack, in-process: final state, redelivery, DLQ, outage.

Each test owns a topic, a consumer group and an index (unique names) on the shared servers.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from confluent_kafka import Consumer  # noqa: TID251 - tests build real clients

from bridge.contract import EventName, dlq_topic
from tests.integration.indexer.indexer_harness import (
    BASE_VERSION,
    Pipeline,
    Running,
    change,
    committed,
    group_members,
    index_documents,
    produce,
    produce_raw,
    random_stream,
    reset_to_earliest,
    sources,
)
from tests.integration.indexer.proxy import TcpProxy
from tests.polling import wait_for


def test_stream_reaches_the_final_state_and_redelivery_changes_nothing(pipeline: Pipeline) -> None:
    stream = random_stream(pipeline.table, items=150, changes=1500)
    produce(pipeline.bootstrap, pipeline.topic, stream.events)
    run = Running(pipeline.settings())
    wait_for(pipeline.done, 90, "offsets committed to the end")
    assert run.finish() == 0
    first = index_documents(pipeline.url, pipeline.index)
    assert {key: source for key, (_, source) in first.items()} == stream.expected()

    # Redelivery: every change again, from offset 0, after the group emptied.
    wait_for(lambda: group_members(pipeline.bootstrap, pipeline.group)[1] == 0, 30, "empty group")
    reset_to_earliest(pipeline.bootstrap, pipeline.group, pipeline.topic)
    assert set(committed(pipeline.bootstrap, pipeline.group, pipeline.topic).values()) == {0}
    run = Running(pipeline.settings())
    wait_for(pipeline.done, 90, "offsets committed to the end again")
    assert run.finish() == 0
    assert index_documents(pipeline.url, pipeline.index) == first  # same ids, sources, versions


def _dead_letters(bootstrap: str, topic: str, expected: int) -> list[Any]:
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"dlq-reader-{time.time_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    letters: list[Any] = []
    deadline = time.monotonic() + 30
    while len(letters) < expected and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() is None:
            letters.append(message)
    consumer.close()
    return letters


def test_a_mapping_conflict_goes_to_the_dead_letter_topic_and_the_rest_is_indexed(
    pipeline: Pipeline,
) -> None:
    good = [
        change(pipeline.table, f"ok-{n}", BASE_VERSION + n, EventName.INSERT, n={"N": str(n)})
        for n in range(1, 20)
    ]
    bad = change(
        pipeline.table, "bad", BASE_VERSION + 100, EventName.INSERT, n={"S": "not a number"}
    )
    produce(pipeline.bootstrap, pipeline.topic, [*good[:10], bad, *good[10:]])
    produce_raw(pipeline.bootstrap, pipeline.topic, b"junk-key", b"\xffnot avro")
    settings = pipeline.settings().model_copy(
        update={
            "search": pipeline.settings().search.model_copy(
                update={"index_mappings": {"properties": {"n": {"type": "long"}}}}
            )
        }
    )
    run = Running(settings)
    wait_for(pipeline.done, 90, "offsets committed to the end")
    assert run.finish() == 0
    indexed = sources(pipeline.url, pipeline.index)
    assert set(indexed) == {f"ok-{n}" for n in range(1, 20)}

    letters = _dead_letters(pipeline.bootstrap, dlq_topic(pipeline.topic), expected=2)
    by_type = {}
    for message in letters:
        head = {name: value.decode() for name, value in message.headers() or []}
        by_type[head["dlq.error_type"]] = (message, head)
    assert set(by_type) == {"document_parsing_exception", "undecodable"} or set(by_type) == {
        "mapper_parsing_exception",
        "undecodable",
    }
    message, head = next(v for k, v in by_type.items() if k != "undecodable")
    assert head["dlq.status"] == "400"
    assert head["dlq.index"] == pipeline.index
    assert head["dlq.source_topic"] == pipeline.topic
    assert head["dlq.attempts"] == "1"
    assert int(head["dlq.source_offset"]) >= 0
    assert head["table"] == pipeline.table  # the record's own headers travel with it
    assert b"not a number" in message.value()
    raw, raw_head = by_type["undecodable"]
    assert (raw.key(), raw.value()) == (b"junk-key", b"\xffnot avro")
    assert raw_head["dlq.status"] == "0"


def test_search_outage_pauses_without_rebalance_and_commits_nothing_unindexed(
    pipeline: Pipeline,
) -> None:
    target = urlsplit(pipeline.url)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 80)
    first = random_stream(pipeline.table, items=100, changes=600, seed=1)
    produce(pipeline.bootstrap, pipeline.topic, first.events)
    run = Running(pipeline.settings(url=proxy.url))
    try:
        wait_for(pipeline.done, 90, "first half committed")
        before = committed(pipeline.bootstrap, pipeline.group, pipeline.topic)
        proxy.cut()
        later = random_stream(pipeline.table, items=100, changes=600, seed=2)
        shifted = [
            change(pipeline.table, e.keys["pk"]["S"], e.version + 600, e.event_name)
            for e in later.events
        ]
        produce(pipeline.bootstrap, pipeline.topic, shifted)
        outage_end = time.monotonic() + 30
        while time.monotonic() < outage_end:
            # Nothing reaches the index, so nothing may be committed; and the member stays.
            assert committed(pipeline.bootstrap, pipeline.group, pipeline.topic) == before
            state, members = group_members(pipeline.bootstrap, pipeline.group)
            assert (state, members) == ("ConsumerGroupState.STABLE", 1)
            time.sleep(2)
        proxy.restore()
        wait_for(pipeline.done, 90, "everything committed after the outage")
        assert run.finish() == 0
    finally:
        proxy.close()
        run.stop.set()
    expected = type(first)(pipeline.table, [*first.events, *shifted]).expected()
    assert sources(pipeline.url, pipeline.index) == expected
