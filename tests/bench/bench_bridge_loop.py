"""LOOP-ONLY figure: no HTTP, no parse. Pre-parsed GetRecords pages -> the real worker loop
(conversion, versions, Avro, acks, checkpoints) -> real Kafka, against a raw confluent-kafka
producer sending the same pre-encoded bytes; plus the rate against moto.

    python -m tests.bench.bench_bridge_loop [--records 200000] [--runs 3] [--moto-records 5000]

The process's real rate includes fetching and parsing the pages: ``bench_wire`` measures that
(the bridge process against the Streams simulator, beside the raw limit of the same run).

Each trial runs in a fresh subprocess (so peak RSS is its own); prints one JSON document with
every trial and the medians. Needs the local stack (`dynabridge dev up`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from confluent_kafka import Producer  # noqa: TID251 - the raw baseline

from bridge.contract import Encoder, headers, kafka_key, topic_name
from bridge.lease_keeper import LeaseKeeper
from bridge.leases import TRIM_HORIZON, Lease
from bridge.metrics import BridgeMetrics
from bridge.producer import KafkaPublisher, ensure_topics, producer_config
from bridge.reader import IteratorRequest, Page
from bridge.records import ShardSource, change_events
from bridge.runtime.health import Heartbeat
from bridge.runtime.settings import BridgeSettings, KafkaSettings, TopicSettings
from bridge.worker import Worker
from tests.tables import create_pk_sk_table

PAGE = 1000
SHARDS = 4
POOL = 2_000
BOOTSTRAP = os.environ.get("DYNABRIDGE_DEV_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
MOTO = os.environ.get("DYNABRIDGE_DEV_MOTO_ENDPOINT", "http://127.0.0.1:5000")
PRODUCER_EXTRA: dict[str, str] = {}
"""``--producer KEY=VALUE`` overrides of the producer's throughput defaults, for both sides."""


def item(rng: random.Random, i: int) -> dict[str, Any]:
    """About 1 KB of mixed DynamoDB types."""
    return {
        "pk": {"S": f"customer-{rng.randrange(100_000):06d}"},
        "sk": {"N": str(i)},
        "name": {"S": "".join(rng.choices("abcdefghijklmnopqrstuvwxyz ", k=60))},
        "amount": {"N": f"{rng.randrange(10**12)}.{rng.randrange(10**6):06d}"},
        "active": {"BOOL": rng.random() < 0.5},
        "nothing": {"NULL": True},
        "blob": {"B": rng.randbytes(120)},
        "tags": {"SS": [f"tag-{j}" for j in rng.sample(range(50), 6)]},
        "scores": {"NS": [str(rng.randrange(1000)) for _ in range(5)]},
        "address": {
            "M": {
                "street": {"S": "".join(rng.choices("abcdefgh ", k=40))},
                "city": {"S": "Springfield"},
                "zip": {"N": str(rng.randrange(10**5))},
                "geo": {"L": [{"N": "48.8566"}, {"N": "2.3522"}]},
            }
        },
        "history": {
            "L": [
                {"M": {"at": {"N": str(1_700_000_000 + k)}, "what": {"S": "x" * 30}}}
                for k in range(6)
            ]
        },
        "notes": {"S": "".join(rng.choices("lorem ipsum dolor sit amet ", k=300))},
    }


def recorded_pages(records: int, seed: int = 7) -> dict[str, list[Page]]:
    """GetRecords pages as boto3 returns them (MODIFY with both images), per shard.

    Images come from a pool of distinct items (shared references keep the bench's own memory
    small); every record still has its own key, sequence number and event id.
    """
    rng = random.Random(seed)
    pool = [item(rng, i) for i in range(POOL)]
    when = dt.datetime(2026, 11, 26, 12, 0, 0, tzinfo=dt.UTC)
    pages: dict[str, list[Page]] = {f"shard-{s}": [] for s in range(SHARDS)}
    per_shard = records // SHARDS
    for s, shard in enumerate(pages):
        for start in range(0, per_shard, PAGE):
            batch = []
            for i in range(start, min(start + PAGE, per_shard)):
                keys = {"pk": {"S": f"customer-{rng.randrange(100_000):06d}"}, "sk": {"N": str(i)}}
                batch.append(
                    {
                        "eventID": uuid.UUID(int=rng.getrandbits(128)).hex,
                        "eventName": "MODIFY",
                        "dynamodb": {
                            "ApproximateCreationDateTime": when + dt.timedelta(milliseconds=i),
                            "Keys": keys,
                            "NewImage": pool[i % POOL],
                            "OldImage": pool[(i + 1) % POOL],
                            "SequenceNumber": f"{s + 1}{i:020d}",
                            "SizeBytes": 2048,
                            "StreamViewType": "NEW_AND_OLD_IMAGES",
                        },
                    }
                )
            pages[shard].append(Page(batch, shard))
    return pages


class RecordedStreams:
    def __init__(self, pages: dict[str, list[Page]]) -> None:
        self._pages = {shard: list(p) for shard, p in pages.items()}

    def shard_iterator(self, stream_arn: str, shard_id: str, request: IteratorRequest) -> str:
        return shard_id

    def records(self, iterator: str, limit: int) -> Page:
        pages = self._pages[iterator]
        return pages.pop(0) if pages else Page([], iterator)


class BenchCoordinator:
    """Owns every lease; stops the worker once ``target`` records are checkpointed."""

    def __init__(self, leases: list[Lease], target: int, stop: threading.Event) -> None:
        self._leases = {lease.lease_key: lease for lease in leases}
        self._target, self._stop = target, stop
        self.checkpointed: dict[str, int] = {}

    def start(self) -> list[object]:
        return list(self._leases)

    def tick(self) -> None:
        return None

    def readable(self) -> list[Lease]:
        return list(self._leases.values())

    def checkpoint(self, lease_key: str, sequence_number: str, last_version: int) -> bool:
        self._leases[lease_key] = replace(
            self._leases[lease_key], checkpoint=sequence_number, last_version=last_version
        )
        return True

    def shard_end(self, lease_key: str, last_version: int) -> bool:
        return True

    def record_gap(self, lease_key: str, gap: str) -> bool:
        return True

    def lost(self) -> set[str]:
        return set()

    def release_all(self) -> None:
        return None

    def due_at(self) -> float:
        return float("inf")  # the bench's leases never need renewing

    def leases(self) -> list[Lease]:
        return list(self._leases.values())

    def observe(
        self, lease_key: str, records: int, last_creation_ms: int | None, caught_up: bool
    ) -> None:
        return None

    def drain(self) -> None:
        return None

    def workers(self) -> set[str]:
        return set()


def cpu_s() -> float:
    """User + system CPU of this process, librdkafka's threads included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_pipeline(table: str, streams: Any, shards: Sequence[str], target: int, arn: str) -> float:
    """The real worker loop until ``target`` records are acknowledged; returns seconds."""
    kafka = KafkaSettings(bootstrap_servers=BOOTSTRAP, topic_prefix="bench.", extra=PRODUCER_EXTRA)
    ensure_topics(kafka, TopicSettings(partitions=6), [table])
    leases = [Lease(f"{arn}#{s}", table, arn, s, (), "bench", 1, TRIM_HORIZON, 0) for s in shards]
    stop = threading.Event()
    metrics = BridgeMetrics()
    publisher = KafkaPublisher(kafka, Encoder())
    settings = BridgeSettings(tables=[table], worker_id="bench", idle_poll_min_s=0.01)
    coordinator = BenchCoordinator(leases, target, stop)
    worker = Worker(
        coordinator,
        streams,
        publisher,
        metrics,
        Heartbeat(600),
        settings,
        stop,
        keeper=LeaseKeeper(coordinator),
    )
    published = metrics.records_published.labels(table)

    def watch() -> None:
        while published._value.get() < target:
            time.sleep(0.005)
        stop.set()

    watcher = threading.Thread(target=watch, daemon=True)
    started = time.perf_counter()
    watcher.start()
    worker.run()
    return time.perf_counter() - started


def trial_pipeline(records: int) -> dict[str, Any]:
    pages = recorded_pages(records)
    table = f"pipe-{uuid.uuid4().hex[:8]}"
    total = sum(len(p.records) for ps in pages.values() for p in ps)
    cpu_before = cpu_s()
    seconds = run_pipeline(table, RecordedStreams(pages), list(pages), total, f"arn:bench:{table}")
    cpu = cpu_s() - cpu_before
    return {"mode": "bridge", "records": total, "seconds": seconds, "cpu_s": cpu}


def trial_raw(records: int) -> dict[str, Any]:
    pages = recorded_pages(records)
    table = f"raw-{uuid.uuid4().hex[:8]}"
    kafka = KafkaSettings(bootstrap_servers=BOOTSTRAP, topic_prefix="bench.", extra=PRODUCER_EXTRA)
    ensure_topics(kafka, TopicSettings(partitions=6), [table])
    encoder, topic = Encoder(), topic_name("bench.", table)
    messages = []
    for shard, shard_pages in pages.items():
        version = 0
        for page in shard_pages:
            events, version = change_events(page.records, ShardSource(table, "arn", shard), version)
            messages += [
                (kafka_key(e.keys), encoder.encode(e), headers(e), e.approximate_creation_time_ms)
                for e in events
            ]
    producer = Producer(producer_config(kafka))
    delivered = 0

    def report(error: Any, message: Any) -> None:
        nonlocal delivered
        assert error is None, error
        delivered += 1

    cpu_before, started = cpu_s(), time.perf_counter()
    for key, value, hdrs, ts in messages:
        while True:
            try:
                producer.produce(topic, value, key, headers=hdrs, timestamp=ts, on_delivery=report)  # type: ignore[arg-type]
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(60)
    seconds, cpu = time.perf_counter() - started, cpu_s() - cpu_before
    assert delivered == len(messages)
    return {"mode": "raw", "records": len(messages), "seconds": seconds, "cpu_s": cpu}


def trial_moto(records: int) -> dict[str, Any]:
    import boto3  # noqa: TID251 - the moto reference run builds its own clients

    from bridge.aws import aws_clients
    from bridge.runtime.settings import AwsSettings
    from bridge.streams import DynamoStreams

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    dynamodb, streams = aws_clients(AwsSettings(endpoint_url=MOTO))
    table = f"benchmoto-{uuid.uuid4().hex[:8]}"
    create_pk_sk_table(dynamodb, table)
    try:
        rng = random.Random(3)
        for start in range(0, records, 25):
            batch = [
                {"PutRequest": {"Item": item(rng, i)}}
                for i in range(start, min(start + 25, records))
            ]
            dynamodb.batch_write_item(RequestItems={table: batch})  # type: ignore[dict-item]
        description = dynamodb.describe_table(TableName=table)["Table"]
        arn = description["LatestStreamArn"]
        shards = [
            s["ShardId"]
            for s in streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"]
        ]
        seconds = run_pipeline(table, DynamoStreams(streams), shards, records, arn)
    finally:
        dynamodb.delete_table(TableName=table)
        del boto3
    return {"mode": "moto", "records": records, "seconds": seconds}


def child(mode: str, records: int) -> None:
    trial = {"bridge": trial_pipeline, "raw": trial_raw, "moto": trial_moto}[mode](records)
    trial["records_per_s"] = round(trial["records"] / trial["seconds"])
    if "cpu_s" in trial:
        # CPU per record moves far less than records/s when the machine is shared.
        trial["cpu_us_per_record"] = round(trial.pop("cpu_s") / trial["records"] * 1e6, 1)
    trial["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(trial))


def spawn(mode: str, records: int) -> dict[str, Any]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.bench.bench_bridge_loop",
            "--child",
            mode,
            "--records",
            str(records),
            *(f"--producer={k}={v}" for k, v in PRODUCER_EXTRA.items()),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    print(json.dumps(result), file=sys.stderr)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--moto-records", type=int, default=5_000, help="0 skips the moto run")
    parser.add_argument(
        "--producer",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="librdkafka producer property for both sides, e.g. compression.type=none",
    )
    parser.add_argument("--child", choices=["bridge", "raw", "moto"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    PRODUCER_EXTRA.update(item.split("=", 1) for item in args.producer)
    if args.child:
        child(args.child, args.records)
        return
    trials = []
    load_before = os.getloadavg()
    for _ in range(args.runs):  # interleaved, so drift on a shared machine hits both alike
        trials += [spawn("bridge", args.records), spawn("raw", args.records)]
    if args.moto_records:
        trials.append(spawn("moto", args.moto_records))

    def median(mode: str, key: str) -> float:
        return float(statistics.median(t[key] for t in trials if t["mode"] == mode))

    summary = {
        "records_per_trial": args.records,
        "runs": args.runs,
        "producer_overrides": PRODUCER_EXTRA,
        "bridge_records_per_s": median("bridge", "records_per_s"),
        "raw_producer_records_per_s": median("raw", "records_per_s"),
        "ratio_bridge_to_raw": round(
            median("bridge", "records_per_s") / median("raw", "records_per_s"), 3
        ),
        "bridge_cpu_us_per_record": median("bridge", "cpu_us_per_record"),
        "raw_cpu_us_per_record": median("raw", "cpu_us_per_record"),
        "bridge_peak_rss_mb": median("bridge", "peak_rss_mb"),
        "raw_peak_rss_mb": median("raw", "peak_rss_mb"),
        "moto_records_per_s": median("moto", "records_per_s") if args.moto_records else None,
        "load_average_1m": {"before": load_before[0], "after": os.getloadavg()[0]},
        "trials": trials,
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
