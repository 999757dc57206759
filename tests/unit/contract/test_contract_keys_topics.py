"""Kafka keys are canonical and injective; topic names and headers follow the contract."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from confluent_kafka import KafkaException, Producer  # noqa: TID251  (config check, no broker)
from hypothesis import given

from bridge.contract import (
    PARTITIONER,
    ChangeEvent,
    ContractError,
    EventName,
    Origin,
    dlq_topic,
    headers,
    kafka_key,
    keys_from_kafka_key,
    topic_name,
)

from .contract_strategies import change_events, primary_keys


def _same_key(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    for name in a:
        ((tag_a, value_a),) = a[name].items()
        ((tag_b, value_b),) = b[name].items()
        if tag_a != tag_b:
            return False
        if tag_a == "N" and Decimal(value_a) != Decimal(value_b):
            return False
        if tag_a != "N" and value_a != value_b:
            return False
    return True


def test_equal_keys_written_differently_give_equal_kafka_keys() -> None:
    forms = [
        {"pk": {"S": "order#1"}, "sk": {"N": "10"}},
        {"sk": {"N": "1E+1"}, "pk": {"S": "order#1"}},
        {"pk": {"S": "order#1"}, "sk": {"N": "10.000"}},
        {"pk": {"S": "order#1"}, "sk": {"N": "+0010"}},
    ]
    encoded = {kafka_key(form) for form in forms}
    assert encoded == {b'{"pk":{"S":"order#1"},"sk":{"N":"10"}}'}


@given(primary_keys, primary_keys)
def test_kafka_keys_are_equal_exactly_when_the_keys_are(a: dict[str, Any], b: Any) -> None:
    assert (kafka_key(a) == kafka_key(b)) == _same_key(a, b)


@given(primary_keys)
def test_kafka_key_round_trips_to_the_canonical_key(keys: dict[str, Any]) -> None:
    decoded = keys_from_kafka_key(kafka_key(keys))
    assert _same_key(decoded, keys)
    assert kafka_key(decoded) == kafka_key(keys)


def test_type_is_part_of_the_key() -> None:
    assert kafka_key({"pk": {"S": "1"}}) != kafka_key({"pk": {"N": "1"}})
    assert kafka_key({"pk": {"S": "AQ=="}}) != kafka_key({"pk": {"B": b"\x01"}})


@pytest.mark.parametrize(
    ("keys", "complaint"),
    [
        ({}, "one or two attributes"),
        ({"a": {"S": "1"}, "b": {"S": "2"}, "c": {"S": "3"}}, "one or two attributes"),
        ({"pk": {"SS": ["a"]}}, "scalar S, N or B"),
        ({"pk": {"M": {}}}, "scalar S, N or B"),
        ({"pk": {"S": ""}}, "non-empty S"),
        ({"pk": {"B": b""}}, "non-empty B"),
        ({"pk": {"N": "1e999"}}, "range"),
        ({"pk": {"N": "one"}}, "not a number"),
    ],
)
def test_keys_that_cannot_be_primary_keys_are_refused(keys: Any, complaint: str) -> None:
    with pytest.raises(ContractError, match=complaint):
        kafka_key(keys)


@pytest.mark.parametrize(
    ("key", "complaint"),
    [(b"\xff", "not UTF-8"), (b"{", "not JSON"), (b'{"a":{"SS":["x"]}}', "scalar S, N or B")],
)
def test_bad_kafka_keys_are_refused(key: bytes, complaint: str) -> None:
    with pytest.raises(ContractError, match=complaint):
        keys_from_kafka_key(key)


def test_partitioner_is_one_librdkafka_accepts() -> None:
    assert PARTITIONER == "murmur2_random"
    Producer({"partitioner": PARTITIONER}).flush(0)
    with pytest.raises(KafkaException):
        Producer({"partitioner": "no-such-partitioner"})


def test_topic_names() -> None:
    assert topic_name("ddb.", "orders") == "ddb.orders"
    assert dlq_topic(topic_name("ddb.", "orders")) == "ddb.orders.dlq"
    longest = "t" * (249 - len("ddb.") - len(".dlq"))
    assert len(dlq_topic(topic_name("ddb.", longest))) == 249


@pytest.mark.parametrize(
    ("prefix", "table", "complaint"),
    [
        ("ddb.", "t" * 242, "dead-letter suffix"),
        ("ddb/", "orders", "not a legal Kafka topic name"),
        ("ddb.", "ord ers", "not a legal Kafka topic name"),
        ("", "ordérs", "not a legal Kafka topic name"),
        ("", "..", "reserved"),
        ("ddb.", "", "empty"),
    ],
)
def test_illegal_topic_names_are_refused(prefix: str, table: str, complaint: str) -> None:
    with pytest.raises(ContractError, match=complaint):
        topic_name(prefix, table)


def test_headers_carry_what_routing_needs() -> None:
    event = ChangeEvent(
        table="orders",
        event_name=EventName.REMOVE,
        event_id="e1",
        stream_arn="arn",
        shard_id="shard-1",
        sequence_number="1" * 25,
        approximate_creation_time_ms=1_700_000_000_000,
        version=1_700_000_000_000_042,
        keys={"pk": {"S": "a"}},
        new_image=None,
        old_image={"pk": {"S": "a"}},
        ttl_delete=True,
        origin=Origin.STREAM,
    )
    assert headers(event) == [
        ("table", b"orders"),
        ("event_name", b"REMOVE"),
        ("version", b"1700000000000042"),
        ("sequence_number", b"1" * 25),
        ("origin", b"STREAM"),
        ("ttl_delete", b"true"),
        ("content-type", b"application/vnd.dynabridge.change-event+avro"),
    ]


@given(change_events())
def test_headers_are_deterministic_and_decodable(event: ChangeEvent) -> None:
    first = headers(event)
    assert first == headers(event)
    named = dict(first)
    assert int(named["version"]) == event.version
    assert named["table"].decode() == event.table
    assert EventName(named["event_name"].decode()) is event.event_name
