"""The hot path's shortcuts give exactly the reference's bytes: fastavro, normalize_number, json."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import fastavro
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bridge.contract import (
    CONTENT_TYPE,
    FINGERPRINT,
    SCHEMA,
    SINGLE_OBJECT_MAGIC,
    ChangeEvent,
    ContractError,
    Encoder,
    EventName,
    Origin,
    decode,
    dumps_item,
    headers,
    kafka_key,
    normalize_number,
)
from bridge.contract import attributes as attributes_module
from bridge.contract import codec as codec_module
from bridge.contract import keys as keys_module

from .contract_strategies import change_events, items, numbers


def _fastavro_value(event: ChangeEvent) -> bytes:
    """What the encoder wrote before it had a writer of its own: the reference."""
    record = {
        "table": event.table,
        "event_name": event.event_name.value,
        "event_id": event.event_id,
        "stream_arn": event.stream_arn,
        "shard_id": event.shard_id,
        "sequence_number": event.sequence_number,
        "approximate_creation_time": event.approximate_creation_time_ms,
        "version": event.version,
        "keys": dumps_item(event.keys),
        "new_image": None if event.new_image is None else dumps_item(event.new_image),
        "old_image": None if event.old_image is None else dumps_item(event.old_image),
        "ttl_delete": event.ttl_delete,
        "origin": event.origin.value,
    }
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, SCHEMA, record)
    return SINGLE_OBJECT_MAGIC + FINGERPRINT + buffer.getvalue()


@given(change_events())
def test_hand_written_avro_equals_fastavro(event: ChangeEvent) -> None:
    assert codec_module._writable(event)
    assert Encoder().encode(event) == _fastavro_value(event)


@given(change_events(), st.text(max_size=200), st.text(max_size=300))
def test_hand_written_avro_equals_fastavro_for_long_and_unicode_strings(
    event: ChangeEvent, event_id: str, stream_arn: str
) -> None:
    """Multi-byte length prefixes and non-ASCII text, surrogates excepted."""
    event = replace(event, event_id=event_id * 3, stream_arn=stream_arn)
    try:
        expected: bytes | type[Exception] = _fastavro_value(event)
    except UnicodeEncodeError:
        expected = ContractError
    if expected is ContractError:
        with pytest.raises(ContractError):
            Encoder().encode(event)
    else:
        assert Encoder().encode(event) == expected


_LONG_SCHEMA = fastavro.parse_schema(
    {"type": "record", "name": "L", "fields": [{"name": "v", "type": "long"}]}
)


@given(st.integers(-(2**63), 2**63 - 1))
@example(0)
@example(-1)
@example(63)
@example(64)
@example(-64)
@example(-65)
@example(2**63 - 1)
@example(-(2**63))
def test_avro_long_equals_fastavro(value: int) -> None:
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, _LONG_SCHEMA, {"v": value})
    assert codec_module._long(value) == buffer.getvalue()


def test_the_shard_string_cache_is_bounded_and_keeps_bytes_right() -> None:
    encoder = Encoder()
    base = ChangeEvent("t", EventName.INSERT, "e", "arn", "s", "1" * 21, 0, 1, {}, None, None)
    for i in range(codec_module._MAX_SHARD_STRINGS + 10):
        event = replace(base, shard_id=f"shard-{i}")
        assert encoder.encode(event) == _fastavro_value(event)
    assert len(encoder._shard_strings) <= codec_module._MAX_SHARD_STRINGS


@pytest.mark.parametrize(
    "change",
    [
        {"table": b"orders"},
        {"version": True},
        {"approximate_creation_time_ms": 1.5},
        {"ttl_delete": 1},
        {"origin": "SNAPSHOT"},
    ],
)
def test_events_of_unexpected_types_go_through_fastavro(change: dict[str, Any]) -> None:
    event = replace(
        ChangeEvent("t", EventName.INSERT, "e", "arn", "s", "1" * 21, 0, 1, {}, None, None),
        **change,
    )
    assert not codec_module._writable(event)
    assert _outcome(lambda: Encoder().encode(event)) == _outcome(lambda: _fastavro_value(event))


def _outcome(write: Callable[[], bytes]) -> bytes | str:
    """The bytes written, or the name of the error underneath (a ContractError's cause)."""
    try:
        return write()
    except ContractError as error:
        return type(error.__cause__).__name__
    except (TypeError, ValueError, AttributeError) as error:
        return type(error).__name__


def test_a_lone_surrogate_is_a_contract_error_not_a_crash() -> None:
    event = ChangeEvent("t", EventName.INSERT, "\ud800", "arn", "s", "1" * 21, 0, 1, {}, None, None)
    with pytest.raises(ContractError, match="surrogates"):
        Encoder().encode(event)


@given(change_events())
def test_fast_values_decode_to_the_event(event: ChangeEvent) -> None:
    decoded = decode(Encoder().encode(event))
    assert decoded.version == event.version
    assert decoded.event_name is event.event_name
    assert decoded.origin is event.origin


@given(items)
def test_utf8_json_is_the_text_encoded(item: dict[str, Any]) -> None:
    assert attributes_module.dumps_item_utf8(item) == dumps_item(item).encode("utf-8")


@given(items)
def test_utf8_json_without_orjson_is_the_same(item: dict[str, Any]) -> None:
    expected = attributes_module.dumps_item_utf8(item)
    orjson = attributes_module._orjson
    try:
        attributes_module._orjson = None
        assert attributes_module.dumps_item_utf8(item) == expected
    finally:
        attributes_module._orjson = orjson


@given(numbers())
def test_numbers_taken_as_canonical_are_canonical(number: str) -> None:
    if keys_module._canonical_number(number):
        assert normalize_number(number) == number
    assert keys_module._canonical_number(normalize_number(number)) == (
        len(normalize_number(number)) <= 38
    )


@pytest.mark.parametrize(
    "number", ["-0", "0.0", "1.0", "01", "+1", ".5", "1.", "1e3", "1E+3", " 1", "1_0", "0" * 39]
)
def test_non_canonical_numbers_are_normalized(number: str) -> None:
    assert not keys_module._canonical_number(number)


def test_kafka_key_normalizes_what_is_not_canonical() -> None:
    assert kafka_key({"pk": {"N": "1.50"}}) == b'{"pk":{"N":"1.5"}}'
    assert kafka_key({"pk": {"N": "-0"}}) == b'{"pk":{"N":"0"}}'
    assert kafka_key({"pk": {"N": "-12.5"}}) == b'{"pk":{"N":"-12.5"}}'


@given(change_events())
def test_headers_equal_the_plain_construction(event: ChangeEvent) -> None:
    assert headers(event) == [
        ("table", event.table.encode("utf-8")),
        ("event_name", event.event_name.value.encode("ascii")),
        ("version", str(event.version).encode("ascii")),
        ("sequence_number", event.sequence_number.encode("ascii")),
        ("origin", event.origin.value.encode("ascii")),
        ("ttl_delete", b"true" if event.ttl_delete else b"false"),
        ("content-type", CONTENT_TYPE),
    ]


def test_headers_of_plain_string_enums_fail_as_before() -> None:
    event = ChangeEvent("t", "INSERT", "e", "a", "s", "1", 0, 1, {}, None, None)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        headers(event)
    assert headers(replace(event, event_name=EventName.INSERT, origin=Origin.SNAPSHOT))[4] == (
        "origin",
        b"SNAPSHOT",
    )
