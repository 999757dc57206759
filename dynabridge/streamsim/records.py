"""Stream records as AWS's GetRecords returns them, serialized once when dealt into a shard,
and DynamoDB's item size rules (for ``SizeBytes``, the 1 MB page and the 400 KB item limit).

Record shape (botocore's ``Record`` / ``StreamRecord`` shapes; the wire spells members as the
model names them, so the TTL identity is ``{"PrincipalId": ..., "Type": ...}``)::

    {"eventID", "eventName": INSERT|MODIFY|REMOVE, "eventVersion": "1.1",
     "eventSource": "aws:dynamodb", "awsRegion",
     "dynamodb": {"ApproximateCreationDateTime": <epoch s, rounded down>, "Keys",
                  "NewImage"?, "OldImage"?, "SequenceNumber", "SizeBytes", "StreamViewType"},
     "userIdentity"?: {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}}
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from dynabridge.streamsim.shard import Encoded, Encoder

Item = dict[str, Any]
"""An item in DynamoDB's typed JSON, as on the wire (binary as base64 text)."""

TTL_IDENTITY = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
MAX_ITEM_BYTES = 400 * 1024

_NEW = frozenset({"NEW_IMAGE", "NEW_AND_OLD_IMAGES"})
_OLD = frozenset({"OLD_IMAGE", "NEW_AND_OLD_IMAGES"})


@dataclass(frozen=True, slots=True)
class Change:
    """One change of one item, before the stream gives it a sequence number."""

    event_name: str
    keys: Item
    new_image: Item | orjson.Fragment | None
    old_image: Item | orjson.Fragment | None
    """Images as typed JSON, or already serialized (then ``size_bytes`` is required)."""
    created_s: float
    event_id: str
    ttl_delete: bool = False
    size_bytes: int | None = None
    """Known by the producer of the change (the generator); computed here otherwise."""


def encoder(change: Change, *, region: str, view_type: str) -> Encoder:
    """The change as a record of a ``view_type`` stream, serialized once its number is known."""
    body: dict[str, Any] = {
        "ApproximateCreationDateTime": math.floor(change.created_s),
        "Keys": change.keys,
    }
    if change.new_image is not None and view_type in _NEW:
        body["NewImage"] = change.new_image
    if change.old_image is not None and view_type in _OLD:
        body["OldImage"] = change.old_image
    size = change.size_bytes
    if size is None:
        images = [image for image in _images(body) if isinstance(image, dict)]
        size = item_size(change.keys) + sum(item_size(image) for image in images)
    body["SizeBytes"] = max(1, size)
    body["StreamViewType"] = view_type
    record: dict[str, Any] = {
        "eventID": change.event_id,
        "eventName": change.event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": body,
    }
    if change.ttl_delete:
        record["userIdentity"] = TTL_IDENTITY
    keys = orjson.dumps(change.keys)

    def encode(sequence_number: str) -> Encoded:
        body["SequenceNumber"] = sequence_number
        return Encoded(
            orjson.dumps(record), body["SizeBytes"], change.event_name, change.event_id, keys
        )

    return encode


def _images(body: Mapping[str, Any]) -> list[Any]:
    return [body[name] for name in ("NewImage", "OldImage") if name in body]


def keys_of(item: Mapping[str, Any], key_names: tuple[str, ...]) -> Item:
    """The key attributes of ``item`` (hash key first)."""
    return {name: item[name] for name in key_names}


# -- DynamoDB's item size rules ---------------------------------------------------------------


def item_size(item: Mapping[str, Any]) -> int:
    """Bytes an item counts for in DynamoDB: each attribute's name plus its value."""
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def value_size(value: Mapping[str, Any]) -> int:
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(raw) if raw.isascii() else len(raw.encode())
    if kind == "N":
        return number_size(raw)
    if kind == "B":
        return binary_size(raw)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(text.encode()) for text in raw)
    if kind == "NS":
        return sum(number_size(text) for text in raw)
    if kind == "BS":
        return sum(binary_size(data) for data in raw)
    if kind == "L":
        return 3 + sum(1 + value_size(element) for element in raw)
    if kind == "M":
        return 3 + sum(1 + len(name.encode()) + value_size(v) for name, v in raw.items())
    raise ValueError(f"not a DynamoDB attribute value type: {kind}")


@functools.lru_cache(maxsize=1 << 16)
def number_size(text: str) -> int:
    """About one byte per two significant digits, plus one (DynamoDB's documented rule)."""
    digits = text.lstrip("-").split("E")[0].split("e")[0].replace(".", "").strip("0")
    return min(21, 1 + (len(digits) + 1) // 2)


def binary_size(raw: str | bytes) -> int:
    if isinstance(raw, bytes):
        return len(raw)
    return len(raw) * 3 // 4 - raw[-2:].count("=")
