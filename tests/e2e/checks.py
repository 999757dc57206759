"""What the e2e tests assert, read from the real servers: the topics' full history, the index's
documents and ``_version``s, ``dynabridge verify``'s verdict, and the ledger they must match.

"Nothing lost" is checked independently of the indexer's own code paths: every stream record
(moto numbers them contiguously per table) is in the topic; per key, the topic is in stream order
with increasing versions; the last change per key is the ledger's final state; the index holds
exactly that change's version and image, and nothing for deleted items.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from confluent_kafka import Consumer, TopicPartition  # noqa: TID251 - tests read the real topics
from confluent_kafka._types import HeadersType  # noqa: TID251
from confluent_kafka.admin import AdminClient  # noqa: TID251

from bridge.contract import (
    AttributeValue,
    ChangeEvent,
    EventName,
    Item,
    decode,
    dlq_topic,
    kafka_key,
    topic_name,
)
from bridge.runtime.settings import load_settings
from consumers.indexer.documents import index_name
from dynabridge.operations.dead_letters import dead_lettered_ids, read_letters
from dynabridge.operations.dynamo import DynamoTables
from dynabridge.operations.index_reader import build_reader
from dynabridge.operations.kafka_admin import KafkaAdmin
from dynabridge.operations.verify import verify
from tests.e2e.pipeline import Names
from tests.e2e.workload import Ledger
from tests.oracle import expected_id, expected_source

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient

Json = dict[str, Any]


# --------------------------------------------------------------------------- Kafka


@dataclass(frozen=True, slots=True)
class Record:
    partition: int
    offset: int
    key: bytes
    value: bytes
    headers: dict[str, bytes]


def read_topic(bootstrap: str, topic: str, timeout_s: float = 60.0) -> list[Record]:
    """Every record of ``topic`` from the beginning to the current end, no group joined."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"e2e-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), 10)[1] for p in partitions
        }
        consumer.assign([TopicPartition(topic, p, 0) for p, end in ends.items() if end > 0])
        reached = {p: 0 for p, end in ends.items() if end > 0}
        records: list[Record] = []
        deadline = time.monotonic() + timeout_s
        while any(reached[p] < ends[p] for p in reached):
            assert time.monotonic() < deadline, f"reading {topic} took over {timeout_s:.0f}s"
            for message in consumer.consume(1000, timeout=1.0):
                error = message.error()
                assert error is None, f"reading {topic}: {error}"
                partition, offset = message.partition(), message.offset()
                assert partition is not None
                assert offset is not None
                reached[partition] = offset + 1
                if offset < ends[partition]:
                    records.append(
                        Record(
                            partition,
                            offset,
                            _bytes(message.key()),
                            _bytes(message.value()),
                            _headers(message.headers()),
                        )
                    )
        return records
    finally:
        consumer.close()


def _bytes(value: str | bytes | None) -> bytes:
    return value.encode() if isinstance(value, str) else value or b""


def _headers(headers: HeadersType | None) -> dict[str, bytes]:
    pairs = headers.items() if isinstance(headers, dict) else headers or []
    return {name: _bytes(value) for name, value in pairs}


def fully_committed(bootstrap: str, group: str, topics: Iterable[str]) -> bool:
    """The group's committed offset is at the end of every partition of ``topics``."""
    from confluent_kafka import ConsumerGroupTopicPartitions  # noqa: TID251

    admin = AdminClient({"bootstrap.servers": bootstrap})
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        wanted = []
        for topic in topics:
            meta = admin.list_topics(topic, timeout=10).topics[topic]
            wanted += [TopicPartition(topic, p) for p in meta.partitions]
        request = [ConsumerGroupTopicPartitions(group, wanted)]
        result = admin.list_consumer_group_offsets(request)[group].result(timeout=10)
        done = {(tp.topic, tp.partition): tp.offset for tp in result.topic_partitions}
        for tp in wanted:
            end = consumer.get_watermark_offsets(tp, 10)[1]
            if end > 0 and done.get((tp.topic, tp.partition), -1) < end:
                return False
        return True
    finally:
        consumer.close()


def offsets(bootstrap: str, group: str, topic: str) -> str:
    """``committed/end`` per partition: where a stalled pipeline stopped (bridge or indexer)."""
    from confluent_kafka import ConsumerGroupTopicPartitions  # noqa: TID251

    admin = AdminClient({"bootstrap.servers": bootstrap})
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        parts = [
            TopicPartition(topic, p)
            for p in admin.list_topics(topic, timeout=10).topics[topic].partitions
        ]
        request = [ConsumerGroupTopicPartitions(group, parts)]
        result = admin.list_consumer_group_offsets(request)[group].result(timeout=10)
        done = {tp.partition: tp.offset for tp in result.topic_partitions}
        ends = {tp.partition: consumer.get_watermark_offsets(tp, 10)[1] for tp in parts}
        return " ".join(f"[{p}] {done.get(p)}/{end}" for p, end in sorted(ends.items()))
    finally:
        consumer.close()


def group_state(bootstrap: str, group: str) -> tuple[str, int]:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    description = admin.describe_consumer_groups([group])[group].result(timeout=10)
    return str(description.state), len(description.members)


# --------------------------------------------------------------------------- search engine


def http(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - local stack
    request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@dataclass(frozen=True, slots=True)
class Document:
    version: int
    source: Json


def index_documents(url: str, index: str) -> dict[str, Document]:
    """Every document of ``index`` with its ``_version`` (refreshed first; a scroll)."""
    status, body = http("POST", f"{url}/{index}/_refresh")
    if status == 404:
        return {}
    assert status == 200, body
    query = {"size": 1000, "version": True, "sort": ["_doc"], "query": {"match_all": {}}}
    status, body = http("POST", f"{url}/{index}/_search?scroll=1m", query)
    assert status == 200, body
    found: dict[str, Document] = {}
    scroll_id = body.get("_scroll_id")
    try:
        while hits := body["hits"]["hits"]:
            for hit in hits:
                found[hit["_id"]] = Document(int(hit["_version"]), hit["_source"])
            status, body = http(
                "POST", f"{url}/_search/scroll", {"scroll": "1m", "scroll_id": scroll_id}
            )
            assert status == 200, body
            scroll_id = body.get("_scroll_id", scroll_id)
    finally:
        if scroll_id:
            http("DELETE", f"{url}/_search/scroll", {"scroll_id": scroll_id})
    return found


# --------------------------------------------------------------------------- comparisons


def canonical(item: Item) -> dict[str, Any]:
    """A typed DynamoDB item with set order and number spelling made irrelevant."""
    return {name: _canonical(value) for name, value in item.items()}


def _canonical(value: AttributeValue) -> Any:
    ((kind, payload),) = value.items()
    if kind == "N":
        return ("N", Decimal(payload).normalize())
    if kind == "NS":
        return ("NS", tuple(sorted(Decimal(m).normalize() for m in payload)))
    if kind in ("SS", "BS"):
        return (kind, tuple(sorted(payload)))
    if kind == "M":
        return ("M", canonical(payload))
    if kind == "L":
        return ("L", [_canonical(v) for v in payload])
    return (kind, payload)


@dataclass
class History:
    """A table's topic, decoded: the last change per key and every problem found."""

    last: dict[bytes, ChangeEvent]
    problems: list[str]
    records: int
    distinct: int

    @property
    def republished(self) -> int:
        """Records published more than once (re-read after a crash)."""
        return self.records - self.distinct


def topic_history(ledger: Ledger, records: list[Record]) -> History:
    """Check the topic against the ledger: nothing lost, stream order per key, versions up."""
    problems: list[str] = []
    by_key: dict[bytes, list[tuple[Record, ChangeEvent]]] = defaultdict(list)
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_key[record.key].append((record, decode(record.value)))
    sequences: set[int] = set()
    last: dict[bytes, ChangeEvent] = {}
    for key, changes in by_key.items():
        if len({r.partition for r, _ in changes}) > 1:
            problems.append(f"{key!r}: records in several partitions")
        problems += _key_order(key, changes)
        sequences.update(int(event.sequence_number) for _, event in changes)
        last[key] = max((event for _, event in changes), key=lambda e: e.version)
    if len(sequences) != ledger.changes:
        problems.append(
            f"{len(sequences)} distinct stream records in the topic, {ledger.changes} written"
        )
    elif sequences and max(sequences) - min(sequences) + 1 != ledger.changes:
        problems.append("the topic's sequence numbers are not contiguous: a change is missing")
    missing = set(ledger.final) - set(last)
    if missing:
        problems.append(
            f"{len(missing)} changed keys never reached the topic, e.g. {sorted(missing)[:3]}"
        )
    for key, expected in ledger.final.items():
        event = last.get(key)
        if event is None:
            continue
        if expected is None and event.event_name is not EventName.REMOVE:
            problems.append(f"{key!r}: deleted, but the topic's last change is {event.event_name}")
        elif expected is not None and (
            event.new_image is None or canonical(event.new_image) != canonical(expected)
        ):
            problems.append(f"{key!r}: the topic's last image is not the final item")
    return History(last, problems, len(records), len(sequences))


def _key_order(key: bytes, changes: list[tuple[Record, ChangeEvent]]) -> list[str]:
    """A key's records in offset order: first occurrences in stream order with increasing
    versions; a repeat (re-published after a crash, from the last checkpoint) is byte-identical
    to the first occurrence, so it can be applied again harmlessly."""
    problems = []
    first: dict[str, bytes] = {}
    previous: ChangeEvent | None = None
    for record, event in changes:
        seen = first.get(event.sequence_number)
        if seen is not None:
            if seen != record.value:
                problems.append(f"{key!r}: {event.sequence_number} re-published with other bytes")
            continue
        first[event.sequence_number] = record.value
        if previous is not None:
            if int(event.sequence_number) < int(previous.sequence_number):
                problems.append(f"{key!r}: stream order broken at {event.sequence_number}")
            if event.version <= previous.version:
                problems.append(f"{key!r}: version {event.version} after {previous.version}")
        previous = event
    return problems


def index_problems(
    ledger: Ledger,
    history: History,
    docs: dict[str, Document],
    excluded: set[bytes] = frozenset(),  # type: ignore[assignment]
) -> list[str]:
    """The index holds each key's last change: its version and image; deleted keys are absent."""
    problems: list[str] = []
    ids: set[str] = set()
    for key, expected in ledger.final.items():
        doc = expected_id(ledger.keys[key])
        ids.add(doc)
        if key in excluded:
            if doc in docs:
                problems.append(f"{doc}: a dead-lettered item is in the index")
            continue
        found = docs.get(doc)
        if expected is None:
            if found is not None:
                problems.append(f"{doc}: deleted in the table, present in the index")
            continue
        if found is None:
            problems.append(f"{doc}: missing from the index")
            continue
        event = history.last.get(key)
        if event is not None and found.version != event.version:
            problems.append(f"{doc}: _version {found.version}, last change has {event.version}")
        if found.source != expected_source(expected):
            problems.append(f"{doc}: document differs from the item")
    extra = set(docs) - ids
    if extra:
        problems.append(f"{len(extra)} documents for keys never written, e.g. {sorted(extra)[:3]}")
    return problems


def index_difference(ledger: Ledger, docs: dict[str, Document], excluded: set[bytes]) -> str:
    """Cheap poll condition: ids and sources against the ledger (versions not read); "" when
    equal, else a summary naming a few ids."""
    wanted = {
        expected_id(ledger.keys[k]): item
        for k, item in ledger.final.items()
        if item is not None and k not in excluded
    }
    missing = sorted(set(wanted) - set(docs))
    extra = sorted(set(docs) - set(wanted))
    different = sorted(
        i for i, item in wanted.items() if i in docs and docs[i].source != expected_source(item)
    )
    if not (missing or extra or different):
        return ""
    return (
        f"{ledger.spec.name}: missing {len(missing)} {missing[:3]}, extra {len(extra)} "
        f"{extra[:3]}, different {len(different)} {different[:3]}"
    )


def table_problems(dynamodb: DynamoDBClient, ledger: Ledger) -> list[str]:
    """The ledger is the table (a consistent Scan): the workload recorded what it did."""
    scanned: dict[bytes, Any] = {}
    paginator = dynamodb.get_paginator("scan")
    for page in paginator.paginate(TableName=ledger.spec.name, ConsistentRead=True):
        for raw in page["Items"]:
            item: Item = dict(raw)  # type: ignore[arg-type]  # boto3's TypedDict is this Item
            keys = {"pk": item["pk"], **({"sk": item["sk"]} if "sk" in item else {})}
            scanned[kafka_key(keys)] = canonical(item)
    expected = {k: canonical(v) for k, v in ledger.present().items()}
    if scanned == expected:
        return []
    wrong = {k for k in set(scanned) | set(expected) if scanned.get(k) != expected.get(k)}
    return [f"table {ledger.spec.name} differs from the ledger on {len(wrong)} keys"]


# --------------------------------------------------------------------------- verify


def run_verify(
    config: Path, table: str, dynamodb: DynamoDBClient, streams: DynamoDBStreamsClient
) -> Json:
    """``dynabridge verify`` through its Python API (what the command runs, minus a 3 s
    interpreter start per table); the JSON report the command prints with ``--json``."""
    settings = load_settings(config)
    reader = build_reader(settings.search, settings.aws.region)
    kafka = KafkaAdmin(settings.kafka)
    try:
        letters = read_letters(kafka, dlq_topic(topic_name(settings.kafka.topic_prefix, table)))
        report = verify(
            DynamoTables(dynamodb, streams),
            reader,
            table=table,
            index=index_name(settings.search.index_prefix, table),
            sample=50,
            dead_letters=dead_lettered_ids(letters),
        )
    finally:
        reader.close()
        kafka.close()
    return report.as_json()


def wait_until_indexed(
    url: str,
    names: Names,
    ledgers: list[Ledger],
    timeout_s: float,
    alive: Callable[[], None],
    kafka: str,
    excluded: set[bytes] = frozenset(),  # type: ignore[assignment]
) -> float:
    """Poll until every index equals its ledger; seconds waited. ``alive()`` fails fast when a
    process died on its own; at the deadline the group's offsets say which process stalled."""
    started = time.monotonic()
    pending = list(ledgers)
    while True:
        alive()
        differences = {
            ledger.spec.name: index_difference(
                ledger, index_documents(url, names.index(ledger.spec.name)), excluded
            )
            for ledger in pending
        }
        pending = [ledger for ledger in pending if differences[ledger.spec.name]]
        if not pending:
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise AssertionError(
                f"after {timeout_s:.0f}s the index still differs from the table: "
                + "; ".join(d for d in differences.values() if d)
                + "; committed/end offsets: "
                + "; ".join(
                    f"{t} {offsets(kafka, names.group, names.topic(t))}"
                    for t in (ledger.spec.name for ledger in pending)
                )
            )
        time.sleep(1.0)


def final_check(
    *,
    dynamodb: DynamoDBClient,
    streams: DynamoDBStreamsClient,
    kafka: str,
    url: str,
    names: Names,
    ledgers: list[Ledger],
    verify_config: Path,
) -> dict[str, Json]:
    """verify equal for each table AND the independent ledger/topic/index check; the verify
    reports, for the test's own assertions."""
    reports: dict[str, Json] = {}
    problems: list[str] = []
    timings: dict[str, float] = defaultdict(float)
    republished: dict[str, int] = {}

    def timed(step: str, started: float) -> None:
        timings[step] += time.monotonic() - started

    for ledger in ledgers:
        table = ledger.spec.name
        t = time.monotonic()
        problems += table_problems(dynamodb, ledger)
        timed("scan", t)
        t = time.monotonic()
        report = run_verify(verify_config, table, dynamodb, streams)
        timed("verify", t)
        reports[table] = report
        if not report["equal"]:
            problems.append(f"verify {table}: {report}")
        t = time.monotonic()
        history = topic_history(ledger, read_topic(kafka, names.topic(table)))
        timed("topic", t)
        republished[table] = history.republished
        problems += [f"topic {names.topic(table)}: {p}" for p in history.problems]
        t = time.monotonic()
        docs = index_documents(url, names.index(table))
        problems += [
            f"index {names.index(table)}: {p}" for p in index_problems(ledger, history, docs)
        ]
        timed("index", t)
    print("final check:", ", ".join(f"{step} {seconds:.1f}s" for step, seconds in timings.items()))
    print("records published twice (crash re-reads):", republished)
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])
    return reports
