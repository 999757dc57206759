"""Change event <-> Kafka value bytes: Avro, framed as a single object or for a schema registry.

    single-object (default)   C3 01 | CRC-64-AVRO fingerprint, 8 bytes little-endian | Avro binary
    Confluent (registry)      00 | schema id, 4 bytes big-endian | Avro binary

Encoding is deterministic: the same event gives the same bytes, so a record re-published after
a crash is a byte-identical duplicate. ``decode`` tells the framing by its magic bytes.
"""

from __future__ import annotations

import functools
import importlib.resources
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form
from fastavro.types import Schema

from bridge.contract.attributes import (
    dumps_item,
    dumps_item_utf8,
    loads_item,
    loads_item_unvalidated,
)
from bridge.contract.errors import ContractError, UnknownSchema
from bridge.contract.event import ChangeEvent, EventName, Item, Origin
from bridge.contract.registry import SchemaRegistry

SCHEMA_FILE = "change_event.avsc"
SCHEMA_TEXT: str = importlib.resources.files(__package__).joinpath(SCHEMA_FILE).read_text("utf-8")
"""The shipped ``.avsc`` as written (with docs): what gets registered with a schema registry."""
_SCHEMA_JSON: dict[str, Any] = json.loads(SCHEMA_TEXT)
SCHEMA_NAME: str = f"{_SCHEMA_JSON['namespace']}.{_SCHEMA_JSON['name']}"
SCHEMA: Schema = fastavro.parse_schema(_SCHEMA_JSON)
"""The parsed schema, held once: fastavro never re-parses it per call."""
CANONICAL_FORM: str = to_parsing_canonical_form(_SCHEMA_JSON)
FINGERPRINT: bytes = bytes.fromhex(fingerprint(CANONICAL_FORM, "CRC-64-AVRO"))
"""CRC-64-AVRO of the parsing canonical form, little-endian, as the single-object spec says."""

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"
_SINGLE_OBJECT_HEADER_BYTES = len(SINGLE_OBJECT_MAGIC) + len(FINGERPRINT)
_CONFLUENT_HEADER_BYTES = len(CONFLUENT_MAGIC) + 4
_LONG_MIN, _LONG_MAX = -(2**63), 2**63 - 1


def _without_logical_types(schema: Any) -> Any:
    """The same binary layout with plain longs: reading yields epoch ms, not datetimes."""
    if isinstance(schema, dict):
        return {k: _without_logical_types(v) for k, v in schema.items() if k != "logicalType"}
    if isinstance(schema, list):
        return [_without_logical_types(v) for v in schema]
    return schema


_READ_SCHEMA: Schema = fastavro.parse_schema(_without_logical_types(_SCHEMA_JSON))

KNOWN_FINGERPRINTS: dict[bytes, Schema] = {FINGERPRINT: _READ_SCHEMA}
"""Writer schemas this build reads, by fingerprint. When the schema gains a field, the old
schema's entry stays here so records already in the topics remain readable."""

_AVRO_READ_ERRORS = (EOFError, ValueError, IndexError, KeyError, TypeError, OverflowError)


class Encoder:
    """Change event -> Kafka value bytes; single-object framing unless given a registry.

    With a registry the schema is registered here, once, under ``subject`` (default: the
    record's full name, Confluent's RecordNameStrategy), so a registry problem stops the
    process at start rather than at the first record.
    """

    __slots__ = ("_header", "_shard_strings", "schema_id")

    def __init__(self, registry: SchemaRegistry | None = None, subject: str | None = None) -> None:
        self.schema_id: int | None = None
        self._shard_strings: dict[str, bytes] = {}
        if registry is None:
            self._header = SINGLE_OBJECT_MAGIC + FINGERPRINT
        else:
            self.schema_id = registry.register(subject or SCHEMA_NAME, SCHEMA_TEXT)
            self._header = CONFLUENT_MAGIC + self.schema_id.to_bytes(4, "big")

    def encode(self, event: ChangeEvent) -> bytes:
        for name, value in (
            ("version", event.version),
            ("approximate_creation_time_ms", event.approximate_creation_time_ms),
        ):
            if not _LONG_MIN <= value <= _LONG_MAX:
                raise ContractError(f"{name} {value} does not fit a signed 64-bit long")
        if _writable(event):
            try:
                return self._header + _avro_binary(event, self._shard_string)
            except UnicodeEncodeError:
                pass  # a lone surrogate: let fastavro refuse it with its own words
        return self._header + _fastavro_binary(event)

    def _shard_string(self, text: str) -> bytes:
        """Table, stream ARN and shard id repeat on every record of a shard: encoded once."""
        encoded = self._shard_strings.get(text)
        if encoded is None:
            if len(self._shard_strings) >= _MAX_SHARD_STRINGS:
                self._shard_strings.clear()
            encoded = self._shard_strings[text] = _string(text)
        return encoded


def _fastavro_binary(event: ChangeEvent) -> bytes:
    """The reference encoding: fastavro writing the shipped schema."""
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
    try:
        fastavro.schemaless_writer(buffer, SCHEMA, record)
    except (TypeError, ValueError, AttributeError) as error:
        raise ContractError(f"event does not fit the schema: {error}") from error
    return buffer.getvalue()


# The hot path writes the Avro binary itself: fastavro's schemaless_writer costs ~20 us a call,
# nearly all fixed overhead, for this flat record. fastavro stays the reference: a property test
# holds the two byte-identical, and any event of unexpected types goes through fastavro.
_LAYOUT = (
    ("table", "string"),
    ("event_name", ("enum", tuple(EventName))),
    ("event_id", "string"),
    ("stream_arn", "string"),
    ("shard_id", "string"),
    ("sequence_number", "string"),
    ("approximate_creation_time", "long"),
    ("version", "long"),
    ("keys", "string"),
    ("new_image", ("null", "string")),
    ("old_image", ("null", "string")),
    ("ttl_delete", "boolean"),
    ("origin", ("enum", tuple(Origin))),
)


def _field_type(schema: Any) -> Any:
    if isinstance(schema, list):
        return tuple(schema)
    if isinstance(schema, dict):
        return (
            (schema["type"], tuple(schema["symbols"]))
            if schema["type"] == "enum"
            else schema["type"]
        )
    return schema


if tuple((f["name"], _field_type(f["type"])) for f in _SCHEMA_JSON["fields"]) != _LAYOUT:
    raise ImportError(f"{SCHEMA_FILE} changed: update the hand-written Avro writer in {__name__}")

_VARINT_1 = tuple(bytes((n,)) for n in range(0x80))
_EVENT_NAME_INDEX = {name: _VARINT_1[i << 1] for i, name in enumerate(EventName)}
_ORIGIN_INDEX = {origin: _VARINT_1[i << 1] for i, origin in enumerate(Origin)}
_BOOLEAN = {False: b"\x00", True: b"\x01"}
_NULL_BRANCH, _STRING_BRANCH = b"\x00", b"\x02"
_MAX_SHARD_STRINGS = 4096


def _long(value: int) -> bytes:
    """Avro long: zigzag, then little-endian base-128 varint."""
    n = (value << 1) ^ (value >> 63)
    if n < 0x80:
        return _VARINT_1[n]
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _string(text: str) -> bytes:
    data = text.encode("utf-8")
    return _long(len(data)) + data


def _writable(event: ChangeEvent) -> bool:
    """Every field has exactly the type the hand-written writer expects."""
    return (
        type(event.table) is str
        and type(event.event_name) is EventName
        and type(event.event_id) is str
        and type(event.stream_arn) is str
        and type(event.shard_id) is str
        and type(event.sequence_number) is str
        and type(event.approximate_creation_time_ms) is int
        and type(event.version) is int
        and type(event.ttl_delete) is bool
        and type(event.origin) is Origin
    )


def _avro_binary(event: ChangeEvent, shard_string: Callable[[str], bytes] = _string) -> bytes:
    """The Avro binary of ``event`` (no framing), byte for byte what fastavro writes."""
    keys = dumps_item_utf8(event.keys)
    new_image, old_image = event.new_image, event.old_image
    parts = [
        shard_string(event.table),
        _EVENT_NAME_INDEX[event.event_name],
        _string(event.event_id),
        shard_string(event.stream_arn),
        shard_string(event.shard_id),
        _string(event.sequence_number),
        _long(event.approximate_creation_time_ms),
        _long(event.version),
        _long(len(keys)),
        keys,
    ]
    for image in (new_image, old_image):
        if image is None:
            parts.append(_NULL_BRANCH)
        else:
            text = dumps_item_utf8(image)
            parts += (_STRING_BRANCH, _long(len(text)), text)
    parts += (_BOOLEAN[event.ttl_delete], _ORIGIN_INDEX[event.origin])
    return b"".join(parts)


def decode(
    value: bytes,
    registry: SchemaRegistry | None = None,
    *,
    validate: bool = True,
    old_image: bool = True,
) -> ChangeEvent:
    """The change event in a Kafka value of either framing; :class:`ContractError` if not one.

    :class:`SchemaLookupError` when the writer schema cannot be had (unknown fingerprint or id,
    registry unreachable): not the value's fault, so never a reason to dead-letter it.

    The Avro envelope and the keys are always checked in full. ``validate=False`` is the trusted
    path for a consumer that checks the image values it uses as it converts them (the indexer's
    ``to_plain_json``): images are parsed and B/BS turned into bytes, nothing more.
    ``old_image=False`` is for a consumer that never reads the old image (the indexer): it is
    not parsed, and the event carries None instead.
    """
    if value[:2] == SINGLE_OBJECT_MAGIC:
        if len(value) < _SINGLE_OBJECT_HEADER_BYTES:
            raise ContractError(f"value truncated: {len(value)} bytes, shorter than its header")
        writer = KNOWN_FINGERPRINTS.get(value[2:_SINGLE_OBJECT_HEADER_BYTES])
        if writer is None:
            raise UnknownSchema(
                f"unknown schema fingerprint {value[2:_SINGLE_OBJECT_HEADER_BYTES].hex()}; this "
                f"build reads {sorted(fp.hex() for fp in KNOWN_FINGERPRINTS)} (upgrade the reader)"
            )
        return _read(value, _SINGLE_OBJECT_HEADER_BYTES, writer, None, validate, old_image)
    if value[:1] == CONFLUENT_MAGIC:
        if len(value) < _CONFLUENT_HEADER_BYTES:
            raise ContractError(f"value truncated: {len(value)} bytes, shorter than its header")
        schema_id = int.from_bytes(value[1:_CONFLUENT_HEADER_BYTES], "big")
        if registry is None:
            raise UnknownSchema(
                f"value is Confluent-framed (schema id {schema_id}); decoding it needs a "
                "schema registry: set kafka.schema_registry_url"
            )
        writer, reader = _registry_schemas(registry.schema_by_id(schema_id))
        return _read(value, _CONFLUENT_HEADER_BYTES, writer, reader, validate, old_image)
    if not value:
        raise ContractError("value is empty; expected an Avro change event")
    raise ContractError(
        f"unknown framing: value starts with {value[:2].hex()}; expected c301 (Avro "
        "single-object) or 00 (Confluent Schema Registry)"
    )


@functools.lru_cache(maxsize=64)
def _registry_schemas(schema_text: str) -> tuple[Schema, Schema | None]:
    """(writer, reader) for a registry's schema: ours read directly, others resolved to ours."""
    try:
        schema_json = json.loads(schema_text)
        known = KNOWN_FINGERPRINTS.get(
            bytes.fromhex(fingerprint(to_parsing_canonical_form(schema_json), "CRC-64-AVRO"))
        )
        if known is not None:
            return known, None
        return fastavro.parse_schema(schema_json), _READ_SCHEMA
    except (ValueError, TypeError, KeyError, fastavro.schema.SchemaParseException) as error:
        raise ContractError(f"the registry's schema is not usable Avro: {error}") from error


Fields = tuple[
    str, EventName, str, str, str, str, int, int, str, str | None, str | None, bool, Origin
]
"""The record's fields in the schema's order, enums as enums: what both readers return."""


def _read(
    value: bytes,
    offset: int,
    writer: Schema,
    reader: Schema | None,
    validate: bool,
    with_old_image: bool = True,
) -> ChangeEvent:
    fields = _fast_fields(value, offset) if writer is _READ_SCHEMA and reader is None else None
    if fields is None:
        fields = _fastavro_fields(value, offset, writer, reader)
    (table, event_name, event_id, stream_arn, shard_id, sequence_number, created, version,
     keys, new_image, old_image, ttl_delete, origin) = fields  # fmt: skip
    load = loads_item if validate else loads_item_unvalidated
    return ChangeEvent(
        table=table,
        event_name=event_name,
        event_id=event_id,
        stream_arn=stream_arn,
        shard_id=shard_id,
        sequence_number=sequence_number,
        approximate_creation_time_ms=created,
        version=version,
        keys=_item("keys", keys, loads_item),
        new_image=None if new_image is None else _item("new_image", new_image, load),
        old_image=(
            None if old_image is None or not with_old_image else _item("old_image", old_image, load)
        ),
        ttl_delete=ttl_delete,
        origin=origin,
    )


def _fastavro_fields(value: bytes, offset: int, writer: Schema, reader: Schema | None) -> Fields:
    """The reference reader: fastavro, for any writer schema and for every value that is odd."""
    buffer = io.BytesIO(value)
    buffer.seek(offset)
    try:
        record = fastavro.schemaless_reader(buffer, writer, reader)
    except _AVRO_READ_ERRORS as error:
        raise ContractError(f"value is corrupt or truncated: {error!r}") from error
    if buffer.tell() != len(value):
        raise ContractError(
            f"value has {len(value) - buffer.tell()} bytes after its Avro record (corrupt)"
        )
    assert isinstance(record, dict)
    created = record["approximate_creation_time"]
    if isinstance(created, datetime):  # a resolved registry schema applies timestamp-millis
        created = (created - _EPOCH) // _MILLISECOND
    return (
        record["table"],
        EventName(record["event_name"]),
        record["event_id"],
        record["stream_arn"],
        record["shard_id"],
        record["sequence_number"],
        created,
        record["version"],
        record["keys"],
        record["new_image"],
        record["old_image"],
        record["ttl_delete"],
        Origin(record["origin"]),
    )


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def _item(field: str, text: str, load: Callable[[str], Item]) -> Item:
    try:
        return load(text)
    except ContractError as error:
        raise ContractError(f"{field}: {error}") from error


# The hot path reads the Avro binary of the shipped schema itself, the mirror of the writer
# above: fastavro's schemaless_reader costs ~7 us a call, mostly fixed overhead. Anything
# unexpected (truncation, a 10-byte varint, a boolean byte other than 0 or 1, bad UTF-8, bytes
# left over) returns None, and fastavro reads the value again and gives the reference answer or
# error; a property test holds the two equal on valid and on garbage values.
_READ_STRING, _READ_LONG, _READ_OPTIONAL, _READ_BOOLEAN = "string", "long", "union", "boolean"
_KINDS: tuple[str | tuple[EventName, ...] | tuple[Origin, ...], ...] = (
    _READ_STRING, tuple(EventName), _READ_STRING, _READ_STRING, _READ_STRING, _READ_STRING,
    _READ_LONG, _READ_LONG, _READ_STRING, _READ_OPTIONAL, _READ_OPTIONAL, _READ_BOOLEAN,
    tuple(Origin),
)  # fmt: skip
"""_LAYOUT as the reader walks it: an enum is its tuple of symbols."""
_MAX_VARINT_SHIFT = 56
"""Varints of at most 9 bytes (63 bits) are read here; longer ones are left to fastavro."""


def _fast_fields(value: bytes, pos: int) -> Fields | None:
    """The fields of the record at ``pos`` of ``value``, or None where fastavro must judge.

    One loop, every varint inlined: a call per field would cost as much as fastavro.
    """
    fields: list[object] = []
    append = fields.append
    size = len(value)
    try:
        for kind in _KINDS:
            byte = value[pos]
            pos += 1
            if kind is _READ_OPTIONAL:
                if byte == 0:
                    append(None)
                    continue
                if byte != 2:  # the zigzag varint of union branch 1, "string"
                    return None
                kind = _READ_STRING
                byte = value[pos]
                pos += 1
            elif kind is _READ_BOOLEAN:
                if byte > 1:
                    return None
                append(byte == 1)
                continue
            n, shift = byte & 0x7F, 7
            while byte & 0x80:
                if shift > _MAX_VARINT_SHIFT:
                    return None
                byte = value[pos]
                pos += 1
                n |= (byte & 0x7F) << shift
                shift += 7
            n = (n >> 1) ^ -(n & 1)  # zigzag
            if kind is _READ_STRING:
                end = pos + n
                if n < 0 or end > size:
                    return None
                append(value[pos:end].decode("utf-8"))
                pos = end
            elif kind is _READ_LONG:
                append(n)
            else:
                if not 0 <= n < len(kind):
                    return None
                append(kind[n])
    except (IndexError, UnicodeDecodeError):
        return None
    if pos != size:
        return None
    return tuple(fields)  # type: ignore[return-value]  # the types _KINDS lists, in its order
