"""Read a dynabridge topic with confluent-kafka and fastavro only (copy change_event.avsc along).

Usage: python consume.py BOOTSTRAP_SERVERS GROUP_ID TOPIC [PATH_TO_change_event.avsc]
"""

import io
import json
import sys
from typing import Any

import fastavro
from confluent_kafka import Consumer  # noqa: TID251
from fastavro.schema import fingerprint, to_parsing_canonical_form


def load_schema(path: str) -> tuple[Any, bytes]:
    with open(path, encoding="utf-8") as file:
        schema = json.load(file)
    pcf = to_parsing_canonical_form(schema)  # the Avro single-object header names this CRC-64
    return fastavro.parse_schema(schema), bytes.fromhex(fingerprint(pcf, "CRC-64-AVRO"))


def decode(value: bytes, schema: Any, schema_fingerprint: bytes) -> dict[str, Any]:
    """One change event as a dict; keys and images parsed into DynamoDB typed JSON dicts."""
    if value[:2] != b"\xc3\x01" or value[2:10] != schema_fingerprint:
        raise ValueError("not a change event of this schema (Confluent framing needs a registry)")
    event = fastavro.schemaless_reader(io.BytesIO(value[10:]), schema)
    assert isinstance(event, dict)
    for field in ("keys", "new_image", "old_image"):
        if event[field] is not None:
            event[field] = json.loads(event[field])  # {"name": {"S": "..."}, "n": {"N": "1.5"}}
    return event


def main() -> None:
    bootstrap, group, topic = sys.argv[1:4]
    schema, schema_fingerprint = load_schema(sys.argv[4] if sys.argv[4:] else "change_event.avsc")
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    try:
        while True:
            message = consumer.poll(1.0)
            if message is None:
                continue
            if message.error():
                raise SystemExit(str(message.error()))
            event = decode(message.value() or b"", schema, schema_fingerprint)
            print(event["event_name"], event["version"], event["keys"], event["new_image"])
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
