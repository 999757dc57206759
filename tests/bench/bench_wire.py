"""Wire throughput, one shard: ``dynabridge bridge run`` against the Streams simulator serving
pages of ~2 KB records, versus the raw limit in the same run.

    python -m tests.bench.bench_wire [--records 40000] [--runs 3] [--profile]

The bridge: the real process over real HTTP (boto3, SigV4, the fast parse, the fetch stage,
versions, Avro, the idempotent producer, acknowledgements, checkpoints in moto) into the real
Kafka. The raw limit: one plain HTTP connection fetching the same pages of the same shard,
orjson, and a raw confluent-kafka producer (same configuration: idempotent, ``acks=all``)
sending values of the bridge's size. Each side is a fresh process; runs alternate. Rate: first
GetRecords to last acknowledgement. CPU per record from /proc (the bridge) or getrusage (raw);
``--profile`` cuts the bridge's CPU into stages with py-spy. Writes JSON and a PNG to
bench-results/. Needs the local stack (Kafka, moto).
"""

from __future__ import annotations

import argparse
import http.client
import json
import resource
import subprocess
import sys
import time
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Producer  # noqa: TID251 - the raw limit

from bridge.contract import Encoder, topic_name
from bridge.producer import ensure_topics, producer_config
from bridge.records import ShardSource, change_events
from bridge.runtime.settings import KafkaSettings, TopicSettings
from bridge.streams import get_records_response
from dynabridge.streamsim.client import SimClient
from tests.bench.readpath import (
    BOOTSTRAP,
    RESULTS,
    Sampler,
    bridge_process,
    load_average,
    median,
    profiled,
    simulator,
    split_cpu,
    stage_costs_us,
    wait_until,
    write_results,
)
from tests.streamsim import StreamSimServer

ITEM_BYTES = (900, 1100)
"""Items of ~1 KB (DynamoDB's size rules): a MODIFY with both images is ~2 KB of JSON."""
PROFILE_HZ = 250
STREAMS_TARGET = "DynamoDBStreams_20120810."


# -- the table ----------------------------------------------------------------------------------


def prepared_table(sim: StreamSimServer, records: int) -> str:
    """A one-shard synthetic table holding ``records`` realistic changes, all MODIFYs after the
    first write of each item (the generator's mixed types, nesting and sizes)."""
    table = f"wire-{uuid.uuid4().hex[:8]}"
    client = sim.client
    client.create_synthetic_table(
        table,
        shards=1,
        oracle=False,
        max_records=records + 1000,
        generator={
            "rate_per_s": 50_000.0,
            "total": records,
            "items": 2_000,
            "remove_share": 0.0,
            "item_bytes_min": ITEM_BYTES[0],
            "item_bytes_max": ITEM_BYTES[1],
            "seed": 7,
        },
    )
    wait_until(
        lambda: client.generator(table)["written"] >= records, 600, "the backlog to be written"
    )
    client.stop_generator(table)
    return table


# -- the bridge ---------------------------------------------------------------------------------


def trial_bridge(
    sim: StreamSimServer, table: str, records: int, profile: Path | None
) -> dict[str, Any]:
    client = sim.client
    client.reset_stats()
    with bridge_process(sim, table) as (process, _):
        sampler = Sampler(process)
        process.wait_ready(sampler.sample)
        spy = profiled(process.pid, profile, PROFILE_HZ) if profile else None
        if spy is not None:
            spy.__enter__()
        threads_before = process.thread_cpu_s()
        try:
            done = wait_until(
                lambda: process.published() >= records,
                900,
                f"the bridge to publish {records} records",
                every_s=0.1,  # each look is a /metrics scrape: CPU of the process measured
                on_tick=sampler.sample,
            )
        finally:
            if spy is not None:
                spy.__exit__(None, None, None)
        python_cpu_s, native_cpu_s = split_cpu(threads_before, process.thread_cpu_s())
        sampler.sample()
        stats = client.stats(table)
        polls = [poll for shard in stats.shards.values() for poll in shard.polls]
        first = min(poll.started_s for poll in polls)
        seconds = done - first
        cpu_s = sampler.cpu_at(done + 1) - sampler.cpu_at(first)
        trial: dict[str, Any] = {
            "mode": "bridge",
            "records": records,
            "seconds": round(seconds, 3),
            "records_per_s": round(records / seconds),
            "cpu_us_per_record": round(cpu_s / records * 1e6, 1),
            "peak_rss_mb": round(process.peak_rss_mb(), 1),
            "get_records_calls": len(polls),
            "records_per_call": round(sum(p.records for p in polls) / max(1, len(polls)), 1),
        }
        if profile is not None:
            trial["stage_us_per_record"] = stage_costs_us(
                profile, records, python_cpu_s, native_cpu_s
            )
        return trial


# -- the raw limit (a child process of its own) ---------------------------------------------


class RawStreams:
    """GetShardIterator / GetRecords over one keep-alive HTTP connection, unsigned (the
    simulator does not check signatures), bodies parsed with orjson."""

    def __init__(self, endpoint: str) -> None:
        parsed = urllib.parse.urlsplit(endpoint)
        host = parsed.hostname or "127.0.0.1"
        self._connection = http.client.HTTPConnection(host, parsed.port, timeout=60)

    def call(self, operation: str, request: dict[str, Any]) -> bytes:
        headers = {
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": STREAMS_TARGET + operation,
        }
        self._connection.request("POST", "/", orjson.dumps(request), headers)
        response = self._connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"{operation}: {response.status} {body[:200]!r}")
        return body


def value_bytes(streams: RawStreams, arn: str, shard: str) -> int:
    """The mean size of the bridge's Avro values for this shard's first page."""
    iterator = orjson.loads(
        streams.call(
            "GetShardIterator",
            {"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"},
        )
    )["ShardIterator"]
    page = get_records_response(
        streams.call("GetRecords", {"ShardIterator": iterator, "Limit": 1000})
    )
    events, _ = change_events(page["Records"], ShardSource("t", arn, shard), 0)
    encoder = Encoder()
    return round(sum(len(encoder.encode(e)) for e in events) / len(events))


def raw_child(endpoint: str, table: str, records: int) -> dict[str, Any]:
    sim = SimClient(endpoint)
    arn = sim.table(table)["latest_stream_arn"]
    shard = sim.shards(table)[0].shard_id
    prefix = f"rawbench{uuid.uuid4().hex[:6]}."
    kafka = KafkaSettings(bootstrap_servers=BOOTSTRAP, topic_prefix=prefix)
    ensure_topics(kafka, TopicSettings(partitions=6), [table])
    topic = topic_name(kafka.topic_prefix, table)
    value = b"v" * value_bytes(RawStreams(endpoint), arn, shard)
    producer = Producer(producer_config(kafka))
    delivered = 0

    def report(error: Any, _message: Any) -> None:
        nonlocal delivered
        if error is not None:
            raise RuntimeError(str(error))
        delivered += 1

    streams = RawStreams(endpoint)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    started = time.time()
    iterator = orjson.loads(
        streams.call(
            "GetShardIterator",
            {"StreamArn": arn, "ShardId": shard, "ShardIteratorType": "TRIM_HORIZON"},
        )
    )["ShardIterator"]
    read = 0
    while read < records:
        page = orjson.loads(streams.call("GetRecords", {"ShardIterator": iterator, "Limit": 1000}))
        for record in page["Records"]:
            key = orjson.dumps(record["dynamodb"]["Keys"], option=orjson.OPT_SORT_KEYS)
            while True:
                try:
                    producer.produce(topic, value, key, on_delivery=report)
                    break
                except BufferError:
                    producer.poll(0.05)
        read += len(page["Records"])
        producer.poll(0)
        iterator = page["NextShardIterator"]
    producer.flush(120)
    seconds = time.time() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - cpu_before
    assert delivered == read, (delivered, read)
    _delete_topic(kafka, topic)
    return {
        "mode": "raw",
        "records": read,
        "seconds": round(seconds, 3),
        "records_per_s": round(read / seconds),
        "cpu_us_per_record": round(cpu / read * 1e6, 1),
        "value_bytes": len(value),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _delete_topic(kafka: KafkaSettings, topic: str) -> None:
    from confluent_kafka.admin import AdminClient  # noqa: TID251 - clean-up

    admin = AdminClient({"bootstrap.servers": kafka.bootstrap_servers})
    for future in admin.delete_topics([topic], operation_timeout=30).values():
        future.result(30)


def trial_raw(sim: StreamSimServer, table: str, records: int) -> dict[str, Any]:
    argv = [sys.executable, "-m", "tests.bench.bench_wire", "--child-raw", sim.endpoint, table,
            "--records", str(records)]  # fmt: skip
    out = subprocess.run(argv, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


# -- the run ------------------------------------------------------------------------------------


def plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = summary.get("bridge_stage_us_per_record") or {}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    rates = [summary["bridge_records_per_s"], summary["raw_records_per_s"]]
    left.bar(["bridge", "raw limit"], rates, color=["tab:blue", "tab:gray"])
    left.set_ylabel("records/s (median)")
    left.set_title(f"1 shard, ~2 KB records: ratio {summary['ratio']:.2f}")
    if stages:
        names = list(stages)
        right.barh(names, [stages[n] for n in names], color="tab:blue")
        right.set_xlabel("CPU µs per record (py-spy)")
        right.invert_yaxis()
        right.set_title("bridge CPU by stage")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=40_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--profile", action="store_true", help="py-spy the first bridge run")
    parser.add_argument(
        "--child-raw", nargs=2, metavar=("ENDPOINT", "TABLE"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child_raw:
        print(json.dumps(raw_child(args.child_raw[0], args.child_raw[1], args.records)))
        return
    load_before = load_average()
    trials: list[dict[str, Any]] = []
    with simulator() as sim:
        table = prepared_table(sim, args.records)
        try:
            for run in range(args.runs):
                profile = RESULTS / f"wire-profile-{run}.txt" if args.profile and run == 0 else None
                for side in ("bridge", "raw") if run % 2 == 0 else ("raw", "bridge"):
                    if side == "bridge":
                        trial = trial_bridge(sim, table, args.records, profile)
                    else:
                        trial = trial_raw(sim, table, args.records)
                    trial["load_average_1m"] = round(load_average()[0], 2)
                    print(json.dumps(trial), file=sys.stderr)
                    trials.append(trial)
        finally:
            sim.client.drop(table, missing_ok=True)

    def med(mode: str, key: str) -> float:
        return median([t[key] for t in trials if t["mode"] == mode])

    bridge_rate, raw_rate = med("bridge", "records_per_s"), med("raw", "records_per_s")
    summary = {
        "benchmark": "wire throughput, 1 shard",
        "records_per_trial": args.records,
        "runs": args.runs,
        "bridge_records_per_s": bridge_rate,
        "raw_records_per_s": raw_rate,
        "ratio": round(bridge_rate / raw_rate, 3),
        "bridge_cpu_us_per_record": med("bridge", "cpu_us_per_record"),
        "raw_cpu_us_per_record": med("raw", "cpu_us_per_record"),
        "bridge_peak_rss_mb": med("bridge", "peak_rss_mb"),
        "bridge_stage_us_per_record": next(
            (t["stage_us_per_record"] for t in trials if "stage_us_per_record" in t), None
        ),
        "load_average": {"before": load_before, "after": load_average()},
        "trials": trials,
    }
    path = write_results("wire", summary)
    plot(summary, path.with_suffix(".png"))
    print(json.dumps(summary, indent=2))
    print(f"results: {path} and {path.with_suffix('.png')}", file=sys.stderr)


if __name__ == "__main__":
    main()
