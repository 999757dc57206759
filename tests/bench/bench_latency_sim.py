"""End-to-end latency at rates moto cannot take: the Streams simulator generating changes over
16 shards, both processes running, write -> visible by GET in Elasticsearch.

    python -m tests.bench.bench_latency_sim [--rates 1000,5000] [--duration-s 20] [--runs 3]
                                            [--shards 16] [--latency-ms 0] [--sample 1.0]

The simulator's generator stamps every item with its write time (``written_at_us``, epoch µs,
wall clock of this machine). A consumer of this benchmark's own tails the table's topic and,
for each change, asks a poller to watch its document; the poller multi-GETs (real-time) every
watched document still pending, every 10 ms at most, and a change is visible when the document
shows its ``written_at_us`` or a later one. Latency = the poll's answer time - the write time:
an upper bound by one poll. The same consumer's receive time gives write -> in Kafka, the
bridge's share. The processes run with the product's defaults. Writes JSON and a
PNG (latency distributions) to bench-results/. Needs the local stack (Kafka, moto, ES).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition  # noqa: TID251 - the benchmark's own tail

from bridge.contract import decode, topic_name
from bridge.runtime.settings import SearchSettings
from consumers.indexer.documents import doc_id, index_name
from dynabridge.demo.visibility import LatencySummary, VisibilityTracker
from dynabridge.operations.errors import IndexMissing, OperationError
from dynabridge.operations.index_reader import build_reader
from tests.bench.readpath import (
    BOOTSTRAP,
    ES,
    bridge_process,
    load_average,
    median,
    simulator,
    wait_until,
    write_results,
)
from tests.streamsim import StreamSimServer

WRITTEN_AT = "written_at_us"
POLL_BATCH = 500
MIN_CYCLE_S = 0.01


def _written_at(value: Any) -> int | None:
    """``written_at_us`` as the index shows it (a number, or text for a large one)."""
    with contextlib.suppress(TypeError, ValueError):
        return int(value)
    return None


class Tail(threading.Thread):
    """Reads the topic from the start; every (sampled) change becomes an expectation."""

    def __init__(self, topic: str, tracker: VisibilityTracker, sample: float) -> None:
        super().__init__(name="topic-tail", daemon=True)
        self._topic = topic
        self._tracker = tracker
        self._every = max(1, round(1 / sample))
        self._halt = threading.Event()
        self.seen = 0
        self.since_s = float("inf")
        """Changes written before this (wall clock) are not watched: the warm-up."""
        self.in_kafka_s: list[float] = []
        """Write -> read from the topic by this consumer: the bridge's share (and Kafka's)."""

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": BOOTSTRAP,
                "group.id": f"bench-tail-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 5,
            }
        )
        try:
            partitions = wait_for_topic(consumer, self._topic)
            consumer.assign([TopicPartition(self._topic, p, 0) for p in partitions])
            while not self._halt.is_set():
                for message in consumer.consume(500, timeout=0.05):
                    if message.error() is not None:
                        continue
                    self.seen += 1
                    if self.seen % self._every:
                        continue
                    event = decode(message.value(), validate=False, old_image=False)  # type: ignore[arg-type]
                    image = event.new_image or {}
                    written = _written_at(image.get(WRITTEN_AT, {}).get("N"))
                    if written is not None and written / 1e6 >= self.since_s:
                        self.in_kafka_s.append(time.time() - written / 1e6)
                        self._tracker.expect(doc_id(event.keys), written, False, written / 1e6)
        finally:
            consumer.close()


def wait_for_topic(consumer: Consumer, topic: str) -> list[int]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = consumer.list_topics(topic, timeout=5).topics.get(topic)
        if found is not None and found.error is None and found.partitions:
            return list(found.partitions)
        time.sleep(0.2)
    raise TimeoutError(f"topic {topic} did not appear")


class Poller(threading.Thread):
    """Real-time multi-GETs of the pending documents; observations in wall-clock time."""

    def __init__(self, index: str, tracker: VisibilityTracker) -> None:
        super().__init__(name="visibility", daemon=True)
        self._reader = build_reader(SearchSettings(hosts=[ES]))
        self._index = index
        self._tracker = tracker
        self._halt = threading.Event()
        self.requests = 0

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                started = time.monotonic()
                # The oldest pending first, one request a cycle: when the pipeline falls far
                # behind, the newer ones are looked at later (their latency is long anyway),
                # and the poller never hogs this process (the tail thread measures in it too).
                ids = self._tracker.pending_ids()[:POLL_BATCH]
                if ids:
                    self._poll(ids)
                self._halt.wait(max(0.001, MIN_CYCLE_S - (time.monotonic() - started)))
        finally:
            self._reader.close()

    def _poll(self, ids: list[str]) -> None:
        try:
            found = self._reader.documents(self._index, ids)
        except (IndexMissing, OperationError):
            return  # not created yet, or no shard ready yet
        now = time.time()
        self.requests += 1
        for document_id in ids:
            document = found.get(document_id)
            if document is not None:
                written = _written_at(document.source.get(WRITTEN_AT))
                self._tracker.observe(document_id, -1 if written is None else written, now)


def delete_indices(prefix: str) -> None:
    """Every index the run's indexer created (wildcard deletes are refused by default)."""
    with contextlib.suppress(OSError, ValueError):
        url = f"{ES}/_cat/indices/{prefix}*?format=json&expand_wildcards=all"
        with urllib.request.urlopen(url, timeout=30) as answer:  # noqa: S310 - the local ES
            names = [row["index"] for row in json.loads(answer.read())]
        for name in names:
            request = urllib.request.Request(f"{ES}/{name}", method="DELETE")  # noqa: S310
            with contextlib.suppress(OSError):
                urllib.request.urlopen(request, timeout=30).close()  # noqa: S310


def trial(
    sim: StreamSimServer,
    rate: float,
    *,
    shards: int,
    duration_s: float,
    warmup_s: float,
    latency_ms: float,
    sample: float,
    item_bytes: tuple[int, int],
) -> dict[str, Any]:
    table = f"lat-{uuid.uuid4().hex[:8]}"
    run = uuid.uuid4().hex[:8]
    index_prefix = f"benchlat{run}-"
    client = sim.client
    client.create_synthetic_table(
        table, shards=shards, oracle=False, get_records_latency_ms=latency_ms
    )
    tracker = VisibilityTracker()
    sections: dict[str, dict[str, Any]] = {
        "search": {"backend": "elasticsearch", "hosts": [ES], "index_prefix": index_prefix},
        "indexer": {"group_id": f"benchlat-{run}"},
    }
    try:
        with bridge_process(sim, table, extra_sections=sections, indexer=True) as (process, _):
            process.wait_ready()
            tail = Tail(topic_name(process.topic_prefix, table), tracker, sample)
            poller = Poller(index_name(index_prefix, table), tracker)
            tail.start()
            poller.start()
            total = int(rate * (warmup_s + duration_s))
            client.generate(
                table,
                rate_per_s=rate,
                total=total,
                items=1_000_000,
                remove_share=0.0,
                item_bytes_min=item_bytes[0],
                item_bytes_max=item_bytes[1],
                stamp_write_time=True,
            )
            started = time.time()
            # Changes written during the warm-up (the processes finding the shards, the index
            # being created) are not watched: the figure is the steady state.
            tail.since_s = started + warmup_s
            wait_until(lambda: client.generator(table)["written"] >= total, duration_s * 4 + 120,
                       "the generator")  # fmt: skip
            write_s = time.time() - started
            try:
                wait_until(
                    lambda: tail.seen >= total and not tracker.pending_ids(), 120, "visibility"
                )
                drained = True
            except TimeoutError:
                drained = False
            tail.stop()
            poller.stop()
            generator = client.generator(table)
    finally:
        client.drop(table, missing_ok=True)
        delete_indices(index_prefix)
    latencies = tracker.latencies_s()
    return {
        "target_rate": rate,
        "achieved_rate": round(total / write_s, 1),
        "generator": generator,
        "written": total,
        "drained": drained,
        "latency_ms": dataclasses.asdict(LatencySummary.of(latencies)),
        "write_to_kafka_ms": dataclasses.asdict(LatencySummary.of(tail.in_kafka_s)),
        "poll_requests": poller.requests,
        "load_average_1m": round(load_average()[0], 2),
        "latencies_s": latencies,
    }


def plot(runs: dict[str, list[dict[str, Any]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(8, 5))
    for label, trials in runs.items():
        values = sorted(v * 1000 for t in trials for v in t["latencies_s"])
        if values:
            axis.plot(values, [(i + 1) / len(values) for i in range(len(values))], label=label)
    axis.axvline(50, color="gray", linestyle=":", linewidth=1)
    axis.axvline(150, color="red", linestyle="--", linewidth=1)
    axis.set_xscale("log")
    axis.set_xlabel("write -> visible by GET in Elasticsearch, ms")
    axis.set_ylabel("fraction of changes")
    axis.grid(True, which="both", alpha=0.3)
    axis.set_title(f"Streams simulator, 16 shards; load average {load_average()[1]:.1f}")
    axis.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="1000,5000")
    parser.add_argument("--duration-s", type=float, default=20.0)
    parser.add_argument("--warmup-s", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=0.0, help="simulated GetRecords")
    parser.add_argument(
        "--sample",
        type=float,
        default=0.2,
        help="share of changes watched (the watching multi-GETs load the engine measured)",
    )
    parser.add_argument("--item-bytes", default="100,400", help="MIN,MAX item size")
    args = parser.parse_args()
    load_before = load_average()
    runs: dict[str, list[dict[str, Any]]] = {}
    with simulator() as sim:
        for rate in (float(r) for r in args.rates.split(",") if r):
            label = f"{rate:g}/s"
            for _ in range(args.runs):
                result = trial(
                    sim, rate, shards=args.shards, duration_s=args.duration_s,
                    warmup_s=args.warmup_s, latency_ms=args.latency_ms, sample=args.sample,
                    item_bytes=tuple(int(v) for v in args.item_bytes.split(",")),  # type: ignore[arg-type]
                )  # fmt: skip
                runs.setdefault(label, []).append(result)
                brief = {k: v for k, v in result.items() if k != "latencies_s"}
                print(json.dumps(brief), file=sys.stderr)
    summary = {
        "benchmark": "write -> GET-visible in Elasticsearch, Streams simulator",
        "command": "python -m tests.bench.bench_latency_sim " + " ".join(sys.argv[1:]),
        "shards": args.shards,
        "get_records_latency_ms": args.latency_ms,
        "medians": {
            label: {
                "achieved_rate": median([t["achieved_rate"] for t in trials]),
                **{
                    key: median([t["latency_ms"][key] for t in trials if t["latency_ms"]])
                    for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms")
                },
            }
            for label, trials in runs.items()
        },
        "load_average": {"before": load_before, "after": load_average()},
        "runs": {
            k: [{**t, "latencies_s": len(t["latencies_s"])} for t in v] for k, v in runs.items()
        },
    }
    path = write_results("latency-sim", summary)
    plot(runs, path.with_suffix(".png"))
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2))
    print(f"results: {path} and {path.with_suffix('.png')}", file=sys.stderr)


if __name__ == "__main__":
    main()
