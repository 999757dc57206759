"""KafkaPublisher over a scripted producer: what produce() gets, backpressure, delivery reports."""

from __future__ import annotations

from typing import Any

import pytest

from bridge.acks import DeliveryError
from bridge.contract import ChangeEvent, Encoder, EventName, decode, headers, kafka_key
from bridge.producer import GUARANTEES, KafkaPublisher, producer_config
from bridge.runtime.settings import KafkaSettings

EVENT = ChangeEvent(
    table="orders",
    event_name=EventName.MODIFY,
    event_id="e1",
    stream_arn="arn:stream",
    shard_id="shard-1",
    sequence_number="1" * 21,
    approximate_creation_time_ms=1_700_000_000_123,
    version=1_700_000_000_000_001,
    keys={"pk": {"S": "a"}, "sk": {"N": "1.0"}},
    new_image={"pk": {"S": "a"}, "sk": {"N": "1"}},
    old_image=None,
)


class ScriptedProducer:
    """Refuses the first ``full`` produce() calls with BufferError, as a full queue does."""

    def __init__(self, config: dict[str, Any], full: int = 0) -> None:
        self.config = config
        self.full = full
        self.produced: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.polls: list[float] = []

    def produce(self, *args: Any, **kwargs: Any) -> None:
        if self.full:
            self.full -= 1
            raise BufferError("Local: Queue full")
        self.produced.append((args, kwargs))

    def poll(self, timeout: float) -> int:
        self.polls.append(timeout)
        return 0


class Failure:
    def name(self) -> str:
        return "MSG_TIMED_OUT"

    def str(self) -> str:
        return "Local: Message timed out"


def publisher(
    full: int = 0, settings: KafkaSettings | None = None
) -> tuple[KafkaPublisher, ScriptedProducer]:
    made: list[ScriptedProducer] = []

    def factory(config: dict[str, Any]) -> Any:
        made.append(ScriptedProducer(config, full))
        return made[0]

    settings = settings or KafkaSettings(bootstrap_servers="127.0.0.1:1", topic_prefix="ddb.")
    return KafkaPublisher(settings, Encoder(), producer_factory=factory), made[0]


def test_a_record_carries_topic_key_value_headers_and_the_change_time() -> None:
    pub, producer = publisher()
    reports: list[str | None] = []
    pub.publish(EVENT, reports.append)
    ((args, kwargs),) = producer.produced
    topic, value, key = args
    assert (topic, key) == ("ddb.orders", kafka_key(EVENT.keys))
    assert decode(value) == EVENT
    assert kwargs["headers"] == headers(EVENT)
    assert kwargs["timestamp"] == EVENT.approximate_creation_time_ms
    kwargs["on_delivery"](None, object())
    kwargs["on_delivery"](Failure(), object())
    assert reports == [None, "MSG_TIMED_OUT: Local: Message timed out"]


def test_the_guarantees_cannot_be_overridden() -> None:
    settings = KafkaSettings(
        bootstrap_servers="127.0.0.1:1", extra={"acks": "1", "enable.idempotence": "false"}
    )
    _, producer = publisher(settings=settings)
    for name, value in GUARANTEES.items():
        assert producer.config[name] == value


def test_a_full_queue_is_served_until_the_record_fits() -> None:
    pub, producer = publisher(full=3)
    pub.publish(EVENT, lambda _: None)
    assert len(producer.produced) == 1
    assert producer.polls == [0.05, 0.05, 0.05]


def test_a_fatal_client_error_stops_a_blocked_publish() -> None:
    pub, producer = publisher(full=10)

    class Fatal(Failure):
        def fatal(self) -> bool:
            return True

    pub._client_error(Fatal())  # type: ignore[arg-type]
    with pytest.raises(DeliveryError, match="failed for good"):
        pub.publish(EVENT, lambda _: None)
    assert producer.produced == []


def test_the_local_queue_is_bounded_yet_holds_the_largest_records() -> None:
    config = producer_config(KafkaSettings())
    queue_bytes = config["queue.buffering.max.kbytes"] * 1024
    assert queue_bytes <= max(64 << 20, 2 * config["message.max.bytes"])
    assert queue_bytes >= 2 * config["message.max.bytes"]
