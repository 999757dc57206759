"""The change event: one DynamoDB Streams record (or one scanned item) as it travels through Kafka.

Items are DynamoDB typed JSON exactly as boto3's low-level client gives them, so nothing is
lost between the table and any consumer (38-digit numbers stay strings, sets stay typed). One
exception: the bridge's read path leaves the B and BS values of images as the base64 text
DynamoDB sent (``bridge.streams.Binaries``), which the codec writes unchanged, as it writes
bytes: both give the same value text. Keys always hold bytes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

AttributeValue = dict[str, Any]
"""One typed value: ``{"S": str}``, ``{"N": str}``, ``{"B": bytes}``, ``{"BOOL": bool}``,
``{"NULL": True}``, ``{"M": Item}``, ``{"L": [AttributeValue]}``, ``{"SS": [str]}``,
``{"NS": [str]}`` or ``{"BS": [bytes]}``."""

Item = dict[str, AttributeValue]
"""Attribute name -> typed value: a whole item, an image, or a primary key."""


class EventName(enum.StrEnum):
    INSERT = "INSERT"
    MODIFY = "MODIFY"
    REMOVE = "REMOVE"


class Origin(enum.StrEnum):
    STREAM = "STREAM"
    """Read from a DynamoDB stream shard."""
    SNAPSHOT = "SNAPSHOT"
    """Read by a backfill Scan; ordered before any stream change from around the scan."""


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    table: str
    event_name: EventName
    event_id: str
    stream_arn: str
    """Empty for snapshot events."""
    shard_id: str
    """Empty for snapshot events."""
    sequence_number: str
    """Decimal string of 21-40 digits as DynamoDB gives it; empty for snapshot events."""
    approximate_creation_time_ms: int
    """Epoch milliseconds (DynamoDB rounds the stream's value down to the second)."""
    version: int
    """Per-lineage monotone version computed by the bridge; fits a signed 64-bit long."""
    keys: Item
    new_image: Item | None
    old_image: Item | None
    ttl_delete: bool = False
    """A REMOVE done by DynamoDB's TTL process (userIdentity principal dynamodb.amazonaws.com)."""
    origin: Origin = Origin.STREAM
