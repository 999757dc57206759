"""Topic names and record headers: what a consumer can route or filter on without decoding.

A table's topic is ``<prefix><table>``; its dead letters go to ``<topic>.dlq``. Both names must
be legal Kafka topic names, so a table whose DLQ name would not fit is refused up front.
"""

from __future__ import annotations

import re

from bridge.contract.errors import ContractError
from bridge.contract.event import ChangeEvent, EventName, Origin

MAX_TOPIC_LENGTH = 249
MAX_ITEM_BYTES = 400 * 1024
"""DynamoDB's item size limit, names and values counted by its size rules."""
MAX_IMAGE_EXPANSION = 68
"""The most bytes of typed JSON one byte of item size can become. A number of one or two
significant digits costs 2 bytes of item size (1 per two significant digits, plus 1) while
DynamoDB returns it in plain positional notation: -1E-130 is "-0.", 129 zeros and "1", 133
characters, 136 as a member of a number set with its quotes and comma. Nothing else comes close:
the same number as a list element costs 3 bytes (47x), an empty string in a list or map 1 or 2
(9x), a NULL or BOOL in a list 2 (7.5x), a control character escapes to 6 bytes."""
MAX_ENVELOPE_BYTES = 64 * 1024
"""Everything of a record but its two images: the Kafka key and the ``keys`` field (a primary
key of at most 2 KB + 1 KB, 6x when escaped), ARN, ids, sequence number and headers."""
MAX_RECORD_BYTES = 2 * MAX_IMAGE_EXPANSION * MAX_ITEM_BYTES + MAX_ENVELOPE_BYTES
"""The largest record (key, value and headers) a change topic must accept, uncompressed: a
MODIFY of a 400 KB item of the worst shape, with both images (53.2 MiB). The bridge's producer
(``message.max.bytes``, checked before compression) and topics (``max.message.bytes``), and the
indexer's consumer, dead-letter producer and dead-letter topics are all sized from it.
Compression keeps such records small on the wire: their size comes from repetition."""
DLQ_SUFFIX = ".dlq"
_LEGAL_TOPIC = re.compile(r"[a-zA-Z0-9._-]+")

HEADER_TABLE = "table"
HEADER_EVENT_NAME = "event_name"
HEADER_VERSION = "version"
"""Decimal ASCII of the event's version, e.g. ``b"1700000000000001"``."""
HEADER_SEQUENCE_NUMBER = "sequence_number"
HEADER_ORIGIN = "origin"
HEADER_TTL_DELETE = "ttl_delete"
"""``b"true"`` or ``b"false"``."""
HEADER_SCHEMA = "content-type"
"""What the value is; the framing is told by its first byte, the schema by the frame."""
CONTENT_TYPE = b"application/vnd.dynabridge.change-event+avro"


def topic_name(prefix: str, table: str) -> str:
    """``prefix + table``, refused unless it and its dead-letter topic are legal Kafka names."""
    topic = prefix + table
    if not table:
        raise ContractError("table name is empty")
    if topic in {".", ".."}:
        raise ContractError(f"topic name {topic!r} is reserved by Kafka")
    if _LEGAL_TOPIC.fullmatch(topic) is None:
        raise ContractError(
            f"topic name {topic!r} (prefix {prefix!r} + table {table!r}) is not a legal Kafka "
            "topic name: only ASCII letters, digits, '.', '_' and '-'"
        )
    if len(topic) + len(DLQ_SUFFIX) > MAX_TOPIC_LENGTH:
        raise ContractError(
            f"topic name {topic!r} is {len(topic)} characters; with its dead-letter suffix "
            f"{DLQ_SUFFIX!r} it must fit Kafka's {MAX_TOPIC_LENGTH} (shorten the prefix)"
        )
    return topic


def dlq_topic(topic: str) -> str:
    """The dead-letter topic of ``topic``."""
    return topic + DLQ_SUFFIX


def value_subject(topic: str) -> str:
    """The schema registry subject of ``topic``'s values under Confluent's TopicNameStrategy."""
    return topic + "-value"


_EVENT_NAME_HEADERS = {name: (HEADER_EVENT_NAME, name.value.encode("ascii")) for name in EventName}
_ORIGIN_HEADERS = {origin: (HEADER_ORIGIN, origin.value.encode("ascii")) for origin in Origin}
_TTL_DELETE_HEADERS = {True: (HEADER_TTL_DELETE, b"true"), False: (HEADER_TTL_DELETE, b"false")}
_SCHEMA_HEADER = (HEADER_SCHEMA, CONTENT_TYPE)


def headers(event: ChangeEvent) -> list[tuple[str, bytes]]:
    """The record headers of ``event``, always the same names in the same order."""
    # The constant pairs are built once: this runs for every record the bridge publishes.
    event_name, origin = event.event_name, event.origin
    return [
        (HEADER_TABLE, event.table.encode("utf-8")),
        _EVENT_NAME_HEADERS[event_name]
        if type(event_name) is EventName
        else (HEADER_EVENT_NAME, event_name.value.encode("ascii")),
        (HEADER_VERSION, str(event.version).encode("ascii")),
        (HEADER_SEQUENCE_NUMBER, event.sequence_number.encode("ascii")),
        _ORIGIN_HEADERS[origin]
        if type(origin) is Origin
        else (HEADER_ORIGIN, origin.value.encode("ascii")),
        _TTL_DELETE_HEADERS[bool(event.ttl_delete)],
        _SCHEMA_HEADER,
    ]
