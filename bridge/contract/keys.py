"""The Kafka key: a canonical, deterministic encoding of an item's primary key.

Same item -> same key bytes -> same partition, however its numbers were written ("1.0" and "1"
are one key). Encoding is injective: different primary keys never share key bytes.
"""

from __future__ import annotations

from bridge.contract.attributes import dumps_item, loads_item, normalize_number
from bridge.contract.errors import ContractError
from bridge.contract.event import Item

PARTITIONER = "murmur2_random"
"""librdkafka partitioner that puts a key where Java clients' default partitioner does."""

_KEY_TYPES = frozenset({"S", "N", "B"})


def kafka_key(keys: Item) -> bytes:
    """UTF-8 of the canonical DynamoDB JSON of the key attributes, numbers normalized."""
    return dumps_item(canonical_keys(keys)).encode("utf-8")


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
            canonical[name] = {"N": normalize_number(payload)}
            continue
        if not isinstance(payload, str if tag == "S" else bytes) or not payload:
            raise ContractError(
                f"key attribute {name} must be a non-empty {tag} value, not {payload!r:.80}"
            )
        canonical[name] = {tag: payload}
    return canonical
