"""The decode hot path gives fastavro's answer: the hand-written reader and the trusted images."""

from __future__ import annotations

import io
from dataclasses import replace

import fastavro
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bridge.contract import (
    FINGERPRINT,
    SCHEMA,
    SINGLE_OBJECT_MAGIC,
    ChangeEvent,
    ContractError,
    Encoder,
    EventName,
    Item,
    decode,
    dumps_item,
    loads_item,
)
from bridge.contract import codec as codec_module
from bridge.contract.attributes import loads_item_unvalidated

from .contract_strategies import change_events, items

HEADER = len(SINGLE_OBJECT_MAGIC) + len(FINGERPRINT)


def _reference(value: bytes) -> codec_module.Fields | str:
    """fastavro's fields of a single-object value, or ``"error"`` where it refuses it."""
    try:
        return codec_module._fastavro_fields(value, HEADER, codec_module._READ_SCHEMA, None)
    except ContractError:
        return "error"


@given(change_events())
def test_the_hand_written_reader_reads_every_event_as_fastavro_does(event: ChangeEvent) -> None:
    value = Encoder().encode(event)
    fields = codec_module._fast_fields(value, HEADER)
    if abs(event.version) < 2**62 and abs(event.approximate_creation_time_ms) < 2**62:
        assert fields is not None  # the hot path itself, not the fallback, was tested
    assert fields is None or fields == _reference(value)


@st.composite
def damaged_values(draw: st.DrawFn) -> bytes:
    """A valid value cut short, with bytes flipped or appended, or plain garbage."""
    value = Encoder().encode(draw(change_events()))
    damage = draw(st.sampled_from(["truncate", "flip", "append", "garbage"]))
    if damage == "truncate":
        return value[: draw(st.integers(HEADER, len(value) - 1))]
    if damage == "flip":
        body = bytearray(value)
        for _ in range(draw(st.integers(1, 4))):
            body[draw(st.integers(HEADER, len(body) - 1))] = draw(st.integers(0, 255))
        return bytes(body)
    if damage == "append":
        return value + draw(st.binary(min_size=1, max_size=8))
    return value[:HEADER] + draw(st.binary(max_size=200))


@given(damaged_values())
@example(SINGLE_OBJECT_MAGIC + FINGERPRINT + b"\x02a\x06")  # enum index 3 of 3 symbols
@example(SINGLE_OBJECT_MAGIC + FINGERPRINT + b"\xff" * 12)  # a varint that never ends
@example(SINGLE_OBJECT_MAGIC + FINGERPRINT + b"\x03")  # a negative string length
@example(SINGLE_OBJECT_MAGIC + FINGERPRINT + b"\x04\xff\xfe")  # not UTF-8
def test_on_damaged_values_the_reader_agrees_with_fastavro_or_defers(value: bytes) -> None:
    fields = codec_module._fast_fields(value, HEADER)
    assert fields is None or fields == _reference(value)
    trusted, checked = _outcome(value, validate=False), _outcome(value, validate=True)
    if _reference(value) == "error":
        assert trusted == checked == "error"
    if checked != "error":
        assert trusted == checked  # the trusted path refuses nothing the checked path takes


def _outcome(value: bytes, *, validate: bool) -> ChangeEvent | str:
    """The decoded event, or ``"error"`` for a ContractError (anything else fails the test)."""
    try:
        return decode(value, validate=validate)
    except ContractError:
        return "error"


@given(change_events())
def test_every_truncation_is_a_contract_error(event: ChangeEvent) -> None:
    value = Encoder().encode(event)
    for end in range(len(value)):
        for validate in (True, False):
            with pytest.raises(ContractError):
                decode(value[:end], validate=validate)


def test_odd_but_valid_avro_is_left_to_fastavro() -> None:
    """A 10-byte varint: the hand reader defers to fastavro, and the answer stays right."""
    event = replace(_event(), version=2**63 - 1)
    value = Encoder().encode(event)
    assert codec_module._fast_fields(value, HEADER) is None
    assert decode(value, validate=False) == event


@given(change_events())
def test_the_trusted_path_decodes_the_bridges_values_to_the_same_event(event: ChangeEvent) -> None:
    value = Encoder().encode(event)
    assert decode(value, validate=False) == decode(value) == event


@given(items)
def test_unvalidated_loading_of_a_valid_item_equals_loading_it(item: Item) -> None:
    text = dumps_item(item)
    assert loads_item_unvalidated(text) == loads_item(text)


@pytest.mark.parametrize(
    "text",
    [
        '{"b":{"B":"AAE="}}',
        '{"b":{"BS":["AAE=","Ag=="]}}',
        '{"b":{"\\u0042":"AAE="}}',  # an escaped tag must not hide binary
        '{"m":{"M":{"x":{"L":[{"\\u0042S":["AAE="]}]}}}}',
    ],
)
def test_binary_is_always_turned_into_bytes(text: str) -> None:
    assert loads_item_unvalidated(text) == loads_item(text)


@pytest.mark.parametrize(
    ("text", "reason"),
    [("[]", "mapping"), ('"x"', "mapping"), ("{", "not JSON"), ('{"b":{"B":"!!"}}', "base64")],
)
def test_what_is_no_item_at_all_is_still_refused(text: str, reason: str) -> None:
    with pytest.raises(ContractError, match=reason):
        loads_item_unvalidated(text)


def test_the_trusted_path_leaves_image_values_unchecked_but_checks_keys() -> None:
    """Checking image values is the caller's job on this path (the indexer's to_plain_json)."""
    malformed = _raw_value(keys='{"pk":{"S":"a"}}', new_image='{"n":{"N":"x"}}')
    with pytest.raises(ContractError, match="new_image"):
        decode(malformed)
    assert decode(malformed, validate=False).new_image == {"n": {"N": "x"}}
    bad_keys = _raw_value(keys='{"pk":{"N":"x"}}', new_image="{}")
    with pytest.raises(ContractError, match="keys"):
        decode(bad_keys, validate=False)


def _event() -> ChangeEvent:
    return ChangeEvent("t", EventName.INSERT, "e", "arn", "s", "1" * 21, 0, 1, {}, None, None)


def _raw_value(keys: str, new_image: str | None) -> bytes:
    """A value fastavro writes with image texts of our choosing, valid or not."""
    record = {
        "table": "t",
        "event_name": "INSERT",
        "event_id": "e",
        "stream_arn": "arn",
        "shard_id": "s",
        "sequence_number": "1" * 21,
        "approximate_creation_time": 0,
        "version": 1,
        "keys": keys,
        "new_image": new_image,
        "old_image": None,
        "ttl_delete": False,
        "origin": "STREAM",
    }
    buffer = io.BytesIO()
    fastavro.schemaless_writer(buffer, SCHEMA, record)
    return SINGLE_OBJECT_MAGIC + FINGERPRINT + buffer.getvalue()
