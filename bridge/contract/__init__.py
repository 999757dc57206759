"""The topic contract: what the bridge publishes and every consumer reads (docs/topic-contract.md).

Stable and versioned: the Avro schema only gains fields with defaults, topic names, keys and
headers do not change meaning.
"""

from bridge.contract.attributes import dumps_item, loads_item, normalize_number, validate_item
from bridge.contract.codec import (
    CANONICAL_FORM,
    CONFLUENT_MAGIC,
    FINGERPRINT,
    KNOWN_FINGERPRINTS,
    SCHEMA,
    SCHEMA_NAME,
    SCHEMA_TEXT,
    SINGLE_OBJECT_MAGIC,
    Encoder,
    decode,
)
from bridge.contract.errors import (
    ContractError,
    SchemaLookupError,
    SchemaRegistryError,
    UnknownSchema,
)
from bridge.contract.event import AttributeValue, ChangeEvent, EventName, Item, Origin
from bridge.contract.keys import PARTITIONER, canonical_keys, kafka_key, keys_from_kafka_key
from bridge.contract.registry import SchemaRegistry
from bridge.contract.topics import (
    CONTENT_TYPE,
    DLQ_SUFFIX,
    HEADER_EVENT_NAME,
    HEADER_ORIGIN,
    HEADER_SCHEMA,
    HEADER_SEQUENCE_NUMBER,
    HEADER_TABLE,
    HEADER_TTL_DELETE,
    HEADER_VERSION,
    MAX_ENVELOPE_BYTES,
    MAX_IMAGE_EXPANSION,
    MAX_ITEM_BYTES,
    MAX_RECORD_BYTES,
    MAX_TOPIC_LENGTH,
    dlq_topic,
    headers,
    topic_name,
    value_subject,
)
from bridge.contract.versions import SNAPSHOT_LEAD_S, VERSIONS_PER_SECOND, snapshot_version

__all__ = [
    "CANONICAL_FORM",
    "CONFLUENT_MAGIC",
    "CONTENT_TYPE",
    "DLQ_SUFFIX",
    "FINGERPRINT",
    "HEADER_EVENT_NAME",
    "HEADER_ORIGIN",
    "HEADER_SCHEMA",
    "HEADER_SEQUENCE_NUMBER",
    "HEADER_TABLE",
    "HEADER_TTL_DELETE",
    "HEADER_VERSION",
    "KNOWN_FINGERPRINTS",
    "MAX_ENVELOPE_BYTES",
    "MAX_IMAGE_EXPANSION",
    "MAX_ITEM_BYTES",
    "MAX_RECORD_BYTES",
    "MAX_TOPIC_LENGTH",
    "PARTITIONER",
    "SCHEMA",
    "SCHEMA_NAME",
    "SCHEMA_TEXT",
    "SINGLE_OBJECT_MAGIC",
    "SNAPSHOT_LEAD_S",
    "VERSIONS_PER_SECOND",
    "AttributeValue",
    "ChangeEvent",
    "ContractError",
    "Encoder",
    "EventName",
    "Item",
    "Origin",
    "SchemaLookupError",
    "SchemaRegistry",
    "SchemaRegistryError",
    "UnknownSchema",
    "canonical_keys",
    "decode",
    "dlq_topic",
    "dumps_item",
    "headers",
    "kafka_key",
    "keys_from_kafka_key",
    "loads_item",
    "normalize_number",
    "snapshot_version",
    "topic_name",
    "validate_item",
    "value_subject",
]
