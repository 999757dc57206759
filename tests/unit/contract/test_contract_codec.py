"""Avro values: lossless, deterministic, readable by plain fastavro, framed as the specs say."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import fastavro
import pytest
from hypothesis import given
from hypothesis import strategies as st

import bridge.contract
from bridge.contract import (
    FINGERPRINT,
    SCHEMA_TEXT,
    ChangeEvent,
    ContractError,
    Encoder,
    EventName,
    Item,
    Origin,
    SchemaRegistry,
    SchemaRegistryError,
    UnknownSchema,
    decode,
    dumps_item,
    loads_item,
    snapshot_version,
)

from .contract_strategies import change_events

AVSC = Path(bridge.contract.__file__).parent / "change_event.avsc"

EVENT = ChangeEvent(
    table="orders",
    event_name=EventName.MODIFY,
    event_id="4b2c1e0f9a8d",
    stream_arn="arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000",
    shard_id="shardId-00000001700000000000-0a1b2c3d",
    sequence_number="100000000000000000000000001",
    approximate_creation_time_ms=1_700_000_000_000,
    version=1_700_000_000_000_003,
    keys={"pk": {"S": "order#1"}, "sk": {"N": "7"}},
    new_image={
        "pk": {"S": "order#1"},
        "sk": {"N": "7"},
        "total": {"N": "12345678901234567890123456789012345678"},
        "blob": {"B": b"\x00\xff"},
        "tags": {"SS": ["a", "b"]},
        "nested": {"M": {"l": {"L": [{"NULL": True}, {"BOOL": False}, {"BS": [b"\x01"]}]}}},
    },
    old_image={"pk": {"S": "order#1"}, "sk": {"N": "7"}, "total": {"N": "1"}},
)


def _record(datum: object) -> dict[str, Any]:
    assert isinstance(datum, dict)
    return datum


def _crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO exactly as the Avro specification's reference code computes it."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1) & 0xFFFFFFFFFFFFFFFF)
        table.append(fp)
    fp = empty
    for byte in data:
        fp = (fp >> 8) ^ table[(fp ^ byte) & 0xFF]
    return fp


def test_crc64_reference_matches_the_specs_empty_value() -> None:
    assert _crc64_avro(b"") == 0xC15D213AA4D7A795
    assert _crc64_avro(b'"int"') == 0x7275D51A3F395C8F  # Avro's published test vector


def test_single_object_header_follows_the_avro_spec() -> None:
    schema = json.loads(AVSC.read_text())
    canonical = fastavro.schema.to_parsing_canonical_form(schema).encode()
    expected = _crc64_avro(canonical).to_bytes(8, "little")
    assert expected == FINGERPRINT
    value = Encoder().encode(EVENT)
    assert value[:2] == b"\xc3\x01"
    assert value[2:10] == expected


@given(change_events())
def test_every_event_survives_encode_and_decode(event: ChangeEvent) -> None:
    assert decode(Encoder().encode(event)) == event


def _copy(item: Item | None) -> Item | None:
    """An equal item built anew, its keys in sorted order."""
    return None if item is None else loads_item(dumps_item(item))


@given(change_events())
def test_encoding_is_deterministic(event: ChangeEvent) -> None:
    rebuilt = replace(
        event,
        keys=loads_item(dumps_item(event.keys)),
        new_image=_copy(event.new_image),
        old_image=_copy(event.old_image),
    )
    assert Encoder().encode(event) == Encoder().encode(rebuilt) == Encoder().encode(event)


@pytest.mark.parametrize("char", ["a", "€", "😀"])
def test_400_kb_and_deeply_nested_items_survive_encode_and_decode(char: str) -> None:
    deep: dict[str, Any] = {"S": "bottom"}
    for level in range(32):
        deep = {"M": {"m": deep}} if level % 2 else {"L": [deep, {"B": b""}, {"S": ""}]}
    image = {
        "pk": {"S": "k"},
        "payload": {"S": char * ((400 * 1024 - 1024) // len(char.encode()))},
        "deep": deep,
    }
    event = replace(EVENT, keys={"pk": {"S": "k"}}, new_image=image, old_image=image)
    value = Encoder().encode(event)
    assert len(value) > 2 * 399 * 1024
    assert decode(value) == event


def test_same_item_in_another_dict_order_encodes_to_the_same_bytes() -> None:
    assert EVENT.new_image is not None
    reordered = dict(reversed(list(EVENT.new_image.items())))
    assert Encoder().encode(EVENT) == Encoder().encode(replace(EVENT, new_image=reordered))


def test_a_plain_fastavro_reader_with_the_shipped_avsc_reads_the_value() -> None:
    schema = fastavro.parse_schema(json.loads(AVSC.read_text()))
    value = Encoder().encode(EVENT)
    record = _record(fastavro.schemaless_reader(io.BytesIO(value[10:]), schema))
    assert record["table"] == "orders"
    assert record["event_name"] == "MODIFY"
    assert record["version"] == EVENT.version
    assert record["sequence_number"] == EVENT.sequence_number
    assert record["approximate_creation_time"].timestamp() == 1_700_000_000
    assert record["origin"] == "STREAM"
    assert json.loads(record["new_image"])["blob"] == {"B": "AP8="}
    assert json.loads(record["new_image"])["total"] == {
        "N": "12345678901234567890123456789012345678"
    }
    assert json.loads(record["keys"]) == {"pk": {"S": "order#1"}, "sk": {"N": "7"}}


def test_every_schema_field_is_documented_and_matches_the_event() -> None:
    schema = json.loads(AVSC.read_text())
    assert schema["namespace"] == "io.dynabridge"
    assert schema["name"] == "ChangeEvent"
    fields = [field["name"] for field in schema["fields"]]
    renamed = {"approximate_creation_time": "approximate_creation_time_ms"}
    assert [renamed.get(name, name) for name in fields] == list(ChangeEvent.__dataclass_fields__)
    assert all(field.get("doc") for field in schema["fields"])
    origin = next(field for field in schema["fields"] if field["name"] == "origin")
    assert origin["default"] == "STREAM"


def test_snapshot_events_round_trip_and_sort_before_the_scan() -> None:
    version = snapshot_version(1_700_000_000)
    assert version == 1_699_999_700_000_000
    event = replace(
        EVENT,
        event_name=EventName.INSERT,
        stream_arn="",
        shard_id="",
        sequence_number="",
        old_image=None,
        version=version,
        origin=Origin.SNAPSHOT,
    )
    assert decode(Encoder().encode(event)) == event


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        (b"", "empty"),
        (b"\x01\x02\x03", "unknown framing: value starts with 0102"),
        (b"{", "unknown framing"),
        (b"\xc3\x01\x00", "truncated"),
        (b"\x00\x00\x00", "truncated"),
    ],
)
def test_unknown_framing_is_refused(value: bytes, complaint: str) -> None:
    with pytest.raises(ContractError, match=complaint):
        decode(value)


@pytest.mark.parametrize(
    ("value", "complaint"),
    [
        (b"\xc3\x01" + b"\x00" * 8 + b"\x00", "unknown schema fingerprint 0000000000000000"),
        (b"\x00\x00\x00\x00\x07" + b"\x00" * 20, "kafka.schema_registry_url"),
    ],
)
def test_a_schema_this_reader_cannot_have_is_not_the_records_fault(
    value: bytes, complaint: str
) -> None:
    with pytest.raises(UnknownSchema, match=complaint) as raised:
        decode(value)
    assert not isinstance(raised.value, ContractError), "it must never be dead-lettered"


def test_every_truncation_is_refused() -> None:
    value = Encoder().encode(EVENT)
    for length in range(len(value)):
        with pytest.raises(ContractError):
            decode(value[:length])


def test_trailing_bytes_are_refused() -> None:
    with pytest.raises(ContractError, match="after its Avro record"):
        decode(Encoder().encode(EVENT) + b"\x00")


@given(st.integers(10, 400), st.integers(0, 255))
def test_corrupt_bytes_raise_only_contract_errors(position: int, byte: int) -> None:
    value = bytearray(Encoder().encode(EVENT))
    value[position % len(value)] = byte
    try:
        decoded = decode(bytes(value))
    except ContractError:
        return
    assert isinstance(decoded, ChangeEvent)


def test_corrupt_image_text_is_refused_naming_the_field() -> None:
    value = Encoder().encode(replace(EVENT, old_image={"a": {"S": "x"}}))
    corrupt = value.replace(b'{"a":{"S":"x"}}', b'{"a":{"Q":"x"}}')
    with pytest.raises(ContractError, match="old_image: malformed attribute a"):
        decode(corrupt)


@pytest.mark.parametrize("field", ["version", "approximate_creation_time_ms"])
def test_longs_out_of_range_are_refused(field: str) -> None:
    too_big: dict[str, Any] = {field: 2**63}
    with pytest.raises(ContractError, match="signed 64-bit"):
        Encoder().encode(replace(EVENT, **too_big))


# A Confluent Schema Registry stub: enough of the REST API to register and look up schemas.


class _Registry(BaseHTTPRequestHandler):
    schemas: list[str]
    requests: list[str]

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_POST(self) -> None:
        self.requests.append(f"POST {self.path} {self.headers.get('Authorization')}")
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if not self.path.startswith("/subjects/") or not self.path.endswith("/versions"):
            self._answer(404, {"error_code": 404, "message": "not found"})
            return
        if body["schema"] not in self.schemas:
            self.schemas.append(body["schema"])
        self._answer(200, {"id": 100 + self.schemas.index(body["schema"])})

    def do_GET(self) -> None:
        self.requests.append(f"GET {self.path}")
        schema_id = int(self.path.rsplit("/", 1)[1]) - 100
        if not self.path.startswith("/schemas/ids/") or not 0 <= schema_id < len(self.schemas):
            self._answer(404, {"error_code": 40403, "message": "Schema not found"})
            return
        self._answer(200, {"schema": self.schemas[schema_id]})

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def registry_stub() -> Iterator[tuple[str, type[_Registry]]]:
    handler = type("Handler", (_Registry,), {"schemas": [], "requests": []})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", handler
    server.shutdown()
    server.server_close()


def test_confluent_framing_with_a_registry(registry_stub: tuple[str, type[_Registry]]) -> None:
    url, handler = registry_stub
    encoder = Encoder(SchemaRegistry(url), subject="ddb.orders-value")
    value = encoder.encode(EVENT)
    assert value[:5] == b"\x00" + (100).to_bytes(4, "big")
    assert handler.schemas == [SCHEMA_TEXT]
    assert value[5:] == Encoder().encode(EVENT)[10:]
    reader = SchemaRegistry(url)
    assert decode(value, reader) == EVENT
    assert decode(value, reader) == EVENT
    assert handler.requests == [
        "POST /subjects/ddb.orders-value/versions None",
        "GET /schemas/ids/100",
    ]


def test_registry_credentials_in_the_url_become_a_header(
    registry_stub: tuple[str, type[_Registry]],
) -> None:
    url, handler = registry_stub
    registry = SchemaRegistry(url.replace("http://", "http://user:s%40cret@"))
    assert "cret" not in repr(registry)
    assert "cret" not in registry.url
    Encoder(registry)
    assert handler.requests == [
        "POST /subjects/io.dynabridge.ChangeEvent/versions Basic dXNlcjpzQGNyZXQ="
    ]


def test_a_newer_writer_schema_from_the_registry_is_resolved(
    registry_stub: tuple[str, type[_Registry]],
) -> None:
    url, _ = registry_stub
    newer = json.loads(SCHEMA_TEXT)
    newer["fields"].append({"name": "tenant", "type": "string", "default": "", "doc": "new"})
    registry = SchemaRegistry(url)
    schema_id = registry.register("ddb.orders-value", json.dumps(newer))
    record = _record(
        fastavro.schemaless_reader(
            io.BytesIO(Encoder().encode(EVENT)[10:]), fastavro.parse_schema(json.loads(SCHEMA_TEXT))
        )
    )
    body = io.BytesIO()
    fastavro.schemaless_writer(body, fastavro.parse_schema(newer), {**record, "tenant": "acme"})
    value = b"\x00" + schema_id.to_bytes(4, "big") + body.getvalue()
    assert decode(value, SchemaRegistry(url)) == EVENT


def test_unknown_schema_ids_and_unreachable_registries_are_clear_errors(
    registry_stub: tuple[str, type[_Registry]],
) -> None:
    url, _ = registry_stub
    with pytest.raises(UnknownSchema, match="HTTP 404 40403 Schema not found"):
        decode(b"\x00\x00\x00\x00\x07" + b"\x00" * 10, SchemaRegistry(url))
    with pytest.raises(SchemaRegistryError, match="failed") as unreachable:
        decode(b"\x00\x00\x00\x00\x07" + b"\x00" * 10, SchemaRegistry("http://127.0.0.1:9"))
    assert unreachable.value.status is None
    assert not unreachable.value.refused
    assert not isinstance(unreachable.value, ContractError), "it must never be dead-lettered"
    with pytest.raises(SchemaRegistryError, match="failed"):
        Encoder(SchemaRegistry("http://127.0.0.1:9", timeout_s=2))
    with pytest.raises(SchemaRegistryError, match="http"):
        SchemaRegistry("file:///etc/passwd")
