"""The Kafka key: a canonical, deterministic encoding of an item's primary key.

Same item -> same key bytes -> same partition, however its numbers were written ("1.0" and "1"
are one key). Encoding is injective: different primary keys never share key bytes.
"""

from __future__ import annotations

import re

from bridge.contract.attributes import (
    MAX_SIGNIFICANT_DIGITS,
    dumps_item_utf8,
    loads_item,
    normalize_number,
)
from bridge.contract.errors import ContractError
from bridge.contract.event import Item

PARTITIONER = "murmur2_random"
"""librdkafka partitioner that puts a key where Java clients' default partitioner does."""

_KEY_TYPES = frozenset({"S", "N", "B"})
_CANONICAL_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]*[1-9])?")
"""Already what ``normalize_number`` returns, when no longer than 38 characters and not ``-0``:
so few digits are always within DynamoDB's precision and range. Skips Decimal on the hot path."""


def kafka_key(keys: Item) -> bytes:
    """UTF-8 of the canonical DynamoDB JSON of the key attributes, numbers normalized."""
    return dumps_item_utf8(canonical_keys(keys))


def keys_from_kafka_key(key: bytes) -> Item:
    """The primary key a Kafka key encodes (numbers in their canonical form)."""
    try:
        text = key.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ContractError(f"Kafka key is not UTF-8: {error}") from error
    return canonical_keys(loads_item(text))


def canonical_keys(keys: Item) -> Item:
    """``keys`` checked as a DynamoDB primary key (hash, plus range if any), numbers normalized."""
    if not isinstance(keys, dict) or not 1 <= len(keys) <= 2:
        raise ContractError(
            f"a primary key has one or two attributes (hash, range), not {keys!r:.120}"
        )
    canonical: Item = {}
    for name, value in keys.items():
        if not isinstance(name, str) or not name:
            raise ContractError(f"key attribute names are non-empty strings, not {name!r:.80}")
        if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) not in _KEY_TYPES:
            raise ContractError(
                f"key attribute {name} must be a scalar S, N or B value, not {value!r:.80}"
            )
        ((tag, payload),) = value.items()
        if tag == "N":
            if not _canonical_number(payload):
                payload = normalize_number(payload)
            canonical[name] = {"N": payload}
            continue
        if not isinstance(payload, str if tag == "S" else bytes) or not payload:
            raise ContractError(
                f"key attribute {name} must be a non-empty {tag} value, not {payload!r:.80}"
            )
        canonical[name] = {tag: payload}
    return canonical


def _canonical_number(payload: object) -> bool:
    return (
        type(payload) is str
        and len(payload) <= MAX_SIGNIFICANT_DIGITS
        and payload != "-0"
        and _CANONICAL_NUMBER.fullmatch(payload) is not None
    )
