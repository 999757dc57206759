"""End-to-end latency and catch-up rate of the whole pipeline on the local stack.

    python -m tests.bench.bench_latency [--rates 200,1000] [--duration-s 20] [--runs 1]
                                        [--backlog 100000] [--threads 16] [--backend elasticsearch]

Latency: both processes as subprocesses (the demo's code), an open-loop paced write rate to
moto, and per change the time from the DynamoDB write returning to a real-time multi-GET
showing the change (its ``rev``); beside it, in the same run, moto's own share: the time from
the write returning to a GetRecords of this benchmark's own (polling every 5 ms, a second
reader of the shard) returning the change. Catch-up: a backlog written with both processes
stopped, then both started; the time until every change is visible. Writes JSON and a PNG of
the latency distributions to bench-results/. Needs the local stack (`dynabridge dev up`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import threading
import time
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bridge.runtime.settings import SearchBackend, Settings
from consumers.indexer.documents import doc_id, index_name
from dynabridge.demo.cleanup import remove_run
from dynabridge.demo.driver import Driver
from dynabridge.demo.poller import VisibilityPoller
from dynabridge.demo.processes import Child, Children, wait_ready
from dynabridge.demo.runconfig import Endpoints, RunNames, config_data, write_config
from dynabridge.demo.runner import warm_up
from dynabridge.demo.stack import endpoints
from dynabridge.demo.table import DemoTable, client
from dynabridge.demo.visibility import LatencySummary, VisibilityTracker
from dynabridge.demo.workload import MIXED, REV, Shape, Workload
from dynabridge.devstack.config import load
from dynabridge.operations.index_reader import build_reader

RESULTS = Path("bench-results")
IDLE_POLL = {"idle_poll_min_s": 0.02, "idle_poll_max_s": 0.1}
"""The demo's setting (the product's default is 0.05-0.5 s); --idle-poll MIN,MAX changes it."""


class Tee:
    """The writer's expectations, to two trackers: the index's and moto's own stream's."""

    def __init__(self, index: VisibilityTracker, stream: VisibilityTracker) -> None:
        self.index, self.stream = index, stream

    def expect(self, doc: str, rev: int, deletes: bool, written_at: float) -> None:
        self.index.expect(doc, rev, deletes, written_at)
        self.stream.expect(doc, rev, deletes, written_at)

    def settled(self, doc: str) -> bool:
        return self.index.settled(doc)


class StreamWatcher(threading.Thread):
    """A GetRecords loop of its own on the table's shard (every 5 ms when empty): when moto
    itself makes each change readable."""

    POLL_S = 0.005

    def __init__(self, ends: Endpoints, table: str, tracker: VisibilityTracker) -> None:
        super().__init__(name="stream-watcher", daemon=True)
        import boto3  # noqa: TID251 - moto's stream, read directly: the reference

        common = {"endpoint_url": ends.moto, "region_name": "us-east-1"}
        self._dynamodb = boto3.client("dynamodb", **common)  # type: ignore[call-overload]
        self._streams = boto3.client("dynamodbstreams", **common)  # type: ignore[call-overload]
        self._table = table
        self._tracker = tracker
        self._halt = threading.Event()
        self._iterator = ""

    def begin(self) -> None:
        """From now on (LATEST), before the writes start."""
        arn = self._dynamodb.describe_table(TableName=self._table)["Table"]["LatestStreamArn"]
        shard = self._streams.describe_stream(StreamArn=arn)["StreamDescription"]["Shards"][0]
        self._iterator = self._streams.get_shard_iterator(
            StreamArn=arn, ShardId=shard["ShardId"], ShardIteratorType="LATEST"
        )["ShardIterator"]
        self.start()

    def stop(self) -> None:
        self._halt.set()

    def run(self) -> None:
        while not self._halt.is_set() and self._iterator:
            page = self._streams.get_records(ShardIterator=self._iterator, Limit=1000)
            now = time.monotonic()
            for record in page["Records"]:
                body = record["dynamodb"]
                image = body.get("NewImage")
                rev = None if image is None else int(image[REV]["N"])
                self._tracker.observe(doc_id(body["Keys"]), rev, now)
            self._iterator = page.get("NextShardIterator", "")
            if not page["Records"]:
                self._halt.wait(self.POLL_S)


class Bench:
    def __init__(
        self, ends: Endpoints, threads: int, work_dir: Path, shapes: tuple[Shape, ...]
    ) -> None:
        self.shapes = shapes
        self.idle_poll = dict(IDLE_POLL)
        self.ends = ends
        self.threads = threads
        self.work_dir = work_dir

    def workload(self, seed: int) -> Workload:
        return Workload(seed, uuid.uuid4().hex[:6], shapes=self.shapes)

    def prepare(self, label: str) -> tuple[RunNames, DemoTable, Settings, Path]:
        names = RunNames(f"bench-{label}-{uuid.uuid4().hex[:6]}")
        table = DemoTable(client(self.ends.moto, "us-east-1", pool=self.threads + 4), names.table)
        table.create()
        path = self.work_dir / names.table / "dynabridge.yaml"
        overrides: dict[str, dict[str, Any]] = {
            "bridge": dict(self.idle_poll),
            "logging": {"level": "WARNING"},
        }
        settings = write_config(path, config_data(names, self.ends, 0, overrides))
        return names, table, settings, path

    def start(self, children: Children, path: Path) -> list[Child]:
        args = ["--config", str(path)]
        started = [
            children.start("bridge", ["bridge", "run", *args], path.parent / "bridge.log"),
            children.start("indexer", ["index", "run", *args], path.parent / "indexer.log"),
        ]
        wait_ready(started, 120)
        return started

    def latency(self, rate: float, duration_s: float) -> dict[str, Any]:
        names, table, settings, path = self.prepare(f"{int(rate)}")
        children = Children()
        tracker, stop = VisibilityTracker(), threading.Event()
        in_stream = VisibilityTracker()
        watcher = StreamWatcher(self.ends, names.table, in_stream)
        reader = build_reader(settings.search)
        poller = VisibilityPoller(reader, index_name("", names.table), tracker, stop)
        try:
            self.start(children, path)
            poller.start()
            warm_up(table, tracker, path.parent)
            base = tracker.visible
            total = int(rate * duration_s)
            load_before = os.getloadavg()
            watcher.begin()
            driver = Driver(self.workload(1), table, Tee(tracker, in_stream), doc_id,  # type: ignore[arg-type]
                            total=total, rate=rate, threads=self.threads)  # fmt: skip
            drive = driver.run(threading.Event())
            drained = _drain(tracker, 120)
            latencies = tracker.latencies_s(since=base)
        finally:
            stop.set()
            watcher.stop()
            poller.join(5)
            reader.close()
            children.stop()
            remove_run(names, self.ends, lambda _message: None)
        return {
            "target_rate": rate,
            "achieved_rate": round(drive.rate, 1),
            "written": drive.written,
            "max_behind_schedule_s": round(drive.max_behind_s, 2),
            "drained": drained,
            "latency_ms": asdict(LatencySummary.of(latencies)),
            "moto_write_to_get_records_ms": asdict(LatencySummary.of(in_stream.latencies_s())),
            "poll_request_ms": round(poller.mean_request_ms, 1),
            "loadavg_before": load_before,
            "loadavg_after": os.getloadavg(),
            "latencies_s": latencies,
        }

    def catch_up(self, backlog: int) -> dict[str, Any]:
        names, table, settings, path = self.prepare("backlog")
        tracker, stop = VisibilityTracker(), threading.Event()
        started = time.monotonic()
        driver = Driver(self.workload(2), table, tracker, doc_id,
                        total=backlog, rate=0, threads=self.threads)  # fmt: skip
        write = driver.run(threading.Event())
        write_s = time.monotonic() - started
        children = Children()
        reader = build_reader(settings.search)
        poller = VisibilityPoller(reader, index_name("", names.table), tracker, stop)
        try:
            begin = time.monotonic()
            self.start(children, path)
            ready_s = time.monotonic() - begin
            poller.start()
            drained = _drain(tracker, 1800)
            drain_s = time.monotonic() - begin
        finally:
            stop.set()
            poller.join(5)
            reader.close()
            children.stop()
            remove_run(names, self.ends, lambda _message: None)
        return {
            "backlog": backlog,
            "write_s": round(write_s, 1),
            "write_rate": round(write.rate, 1),
            "drained": drained,
            "processes_ready_s": round(ready_s, 1),
            "drain_s_from_start": round(drain_s, 1),
            "changes_per_s": round(backlog / drain_s, 1),
            "changes_per_s_after_ready": round(backlog / (drain_s - ready_s), 1),
            "extrapolated_100k_s": round(100_000 / (backlog / drain_s), 1),
            "loadavg_after": os.getloadavg(),
        }


def _drain(tracker: VisibilityTracker, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while tracker.visible < tracker.expected:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _without_samples(trial: dict[str, Any]) -> dict[str, Any]:
    return {**trial, "latencies_s": len(trial["latencies_s"])}


def _plot(runs: dict[str, list[dict[str, Any]]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for label, trials in runs.items():
        values = sorted(v * 1000 for trial in trials for v in trial["latencies_s"])
        achieved = statistics.median(t["achieved_rate"] for t in trials)
        if values:
            ys = [(i + 1) / len(values) for i in range(len(values))]
            ax.plot(values, ys, label=f"target {label}, achieved {achieved:.0f}/s")
    ax.set_xscale("log")
    ax.set_xlabel("end-to-end latency, ms (DynamoDB write returned -> GET shows it)")
    ax.set_ylabel("fraction of changes")
    ax.grid(True, which="both", alpha=0.3)
    count = sum(len(t) for t in runs.values())
    ax.set_title(
        f"{count} runs, 5-min load average {os.getloadavg()[1]:.1f} on {os.cpu_count()} CPUs"
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="200,1000")
    parser.add_argument("--duration-s", type=float, default=20.0)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--backlog", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--backend", default="elasticsearch")
    parser.add_argument(
        "--items",
        choices=("compact", "mixed"),
        default="compact",
        help="compact: ~150-byte items; mixed: the demo's nested shapes (~1 KB, with old images)",
    )
    parser.add_argument("--idle-poll", default="0.02,0.1", help="bridge idle poll MIN,MAX s")
    args = parser.parse_args()
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"})
    ends = endpoints(load(os.environ), SearchBackend(args.backend))
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    RESULTS.mkdir(exist_ok=True)
    shapes = (Shape.COMPACT,) if args.items == "compact" else MIXED
    bench = Bench(ends, args.threads, RESULTS / f"latency-{stamp}", shapes)
    low, high = (float(v) for v in args.idle_poll.split(","))
    bench.idle_poll = {"idle_poll_min_s": low, "idle_poll_max_s": high}
    runs: dict[str, list[dict[str, Any]]] = {}
    for rate in (float(r) for r in args.rates.split(",") if r):
        runs[f"{rate:g}/s"] = [bench.latency(rate, args.duration_s) for _ in range(args.runs)]
    catch_up = bench.catch_up(args.backlog) if args.backlog else None
    summary = {
        label: {
            "achieved_rate": statistics.median(t["achieved_rate"] for t in trials),
            **{
                k: statistics.median(t["latency_ms"][k] for t in trials)
                for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")
            },
            "moto_write_to_get_records_p99_ms": statistics.median(
                t["moto_write_to_get_records_ms"]["p99_ms"] for t in trials
            ),
        }
        for label, trials in runs.items()
    }
    result = {
        "command": "python -m tests.bench.bench_latency "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "bridge_idle_poll": bench.idle_poll,
        "indexer_linger_ms": 20,
        "writer_threads": args.threads,
        "cpus": os.cpu_count(),
        "moto": ends.moto,
        "items": args.items,
        "medians": summary,
        "catch_up": catch_up,
        "runs": {k: [_without_samples(t) for t in v] for k, v in runs.items()},
    }
    (RESULTS / f"latency-{stamp}.json").write_text(json.dumps(result, indent=2))
    _plot(runs, RESULTS / f"latency-{stamp}.png")
    print(json.dumps({k: v for k, v in result.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
