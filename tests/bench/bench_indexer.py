"""Indexer throughput: a pre-filled topic drained by ``dynabridge index run`` vs the raw helper.

Per run: N encoded change events (MODIFYs with both images of realistic items: numbers mixing
integers and decimals, a list of mixed types, an attribute whose type drifts; distinct
documents, so coalescing saves nothing) are produced to a fresh topic; a real ``dynabridge index
run`` process drains it into the engine until the group's committed offsets reach the end; the
engine client's own ``streaming_bulk`` indexes the same bodies the indexer sends (``_source`` and
typed fields, same ids, same external versions, same chunk size) into a fresh index with the same
managed mapping on the same node. Runs alternate which side goes first, medians are reported,
results go to a JSON file (``bench-results/indexer-<engine>.json``)::

    python -m tests.bench.bench_indexer --engine elasticsearch
    python -m tests.bench.bench_indexer --engine opensearch

Rates (the goal: ``first_to_last`` ratio >= 0.8). ``first_to_last``, on both sides, runs from the
first bulk request leaving to the last document acknowledged. The helper's first request is
timed at its transport; the indexer's is its first bulk's settle minus that bulk's duration, and
its last settle is exact: both come from its own metrics (bulk durations, and the end-to-end lag
gauge, which is now minus the event time every benchmark event carries), read every 50 ms.
``steady`` runs from the first commit to the commit reaching the end (commits come once a
second), ``settled`` from the first settle seen to the last, ``wall`` from the process start to
the final commit. CPU per document (steadier than rates on a shared machine): the indexer
process's user + system time (every thread) between 10 % and 90 % settled, and the helper's
process time over its whole run. ``--set key=value`` sets an ``indexer.*`` key for the process.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition  # noqa: TID251
from confluent_kafka.admin import AdminClient  # noqa: TID251
from confluent_kafka.admin._listoffsets import OffsetSpec  # noqa: TID251
from confluent_kafka.cimpl import NewTopic  # noqa: TID251

from bridge.contract import ChangeEvent, topic_name
from bridge.runtime.settings import SearchBackend as SearchBackendName
from consumers.indexer.documents import doc_id, index_name
from tests.bench.bench_search import (
    ENGINE_URLS,
    Measurement,
    bodies,
    measure_raw_client,
    sample_events,
)
from tests.indices import drop_table_indices
from tests.integration.indexer.indexer_harness import produce

DYNABRIDGE = str(Path(sys.executable).parent / "dynabridge")

LATEST = OffsetSpec.latest()  # type: ignore[no-untyped-call]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _fill(bootstrap: str, topic: str, events: list[ChangeEvent], partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    new = NewTopic(topic, num_partitions=partitions, replication_factor=1)
    admin.create_topics([new])[topic].result(timeout=30)
    produce(bootstrap, topic, events)  # the integration tests' producer: contract key, headers


def _committed_total(admin: AdminClient, group: str, topic: str) -> int:
    result = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])
    offsets = result[group].result(timeout=10).topic_partitions
    return sum(tp.offset for tp in offsets if tp.topic == topic and tp.offset > 0)


def _end_total(admin: AdminClient, topic: str) -> int:
    parts = admin.list_topics(topic, timeout=10).topics[topic].partitions
    futures = admin.list_offsets({TopicPartition(topic, p): LATEST for p in parts})
    return sum(f.result(timeout=10).offset for f in futures.values())


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


@dataclasses.dataclass(frozen=True)
class Sample:
    """What the indexer's own ``/metrics`` said at one moment."""

    settled: int
    """Changes settled so far (every result)."""
    bulks: int
    bulk_seconds: float
    """Sum of the bulk requests' durations so far."""
    bulk_documents: float
    """Sum of the bulk requests' sizes (actions) so far."""
    last_settle_s: float | None
    """Wall-clock time of the latest settle: the end-to-end lag gauge (now minus the event time
    of the change just settled) plus the event time every benchmark event carries."""


def _metrics(port: int, table: str, event_time_s: float) -> Sample | None:
    """The indexer's metrics; None until its server is up."""
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    settled, values = 0.0, {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name, value = line.rsplit(" ", 1)
        if name.startswith("dynabridge_indexer_documents_total{"):
            settled += float(value)
        values[name] = float(value)
    lag = values.get(f'dynabridge_indexer_end_to_end_lag_seconds{{table="{table}"}}')
    return Sample(
        int(settled),
        int(values.get("dynabridge_indexer_bulk_seconds_count", 0)),
        values.get("dynabridge_indexer_bulk_seconds_sum", 0.0),
        values.get("dynabridge_indexer_bulk_documents_sum", 0.0),
        None if lag is None else event_time_s + lag,
    )


@dataclasses.dataclass
class IndexerRun:
    first_to_last_docs_per_s: float
    """From the first bulk leaving (its settle minus its duration) to the last change settled."""
    first_exact: bool
    """The first bulk was the only one finished at the first look: its start is exact, not the
    first settle seen minus the mean bulk duration."""
    steady_docs_per_s: float
    settled_docs_per_s: float
    wall_docs_per_s: float
    cpu_us_per_doc: float
    """The indexer process's CPU (every thread) per change, between 10 % and 90 % settled."""
    cpu_us_per_doc_whole: float
    """The same from the process's start (imports, connections) to its final commit."""
    docs_per_bulk: float
    """Mean actions per bulk request (batches close by count, bytes, or linger)."""
    peak_rss_mib: float


def indexer_docs_per_s(
    bootstrap: str,
    url: str,
    engine: str,
    table: str,
    workdir: Path,
    event_time_s: float,
    extra: dict[str, Any] | None = None,
) -> IndexerRun:
    """Drain the pre-filled topic of ``table`` with a real ``dynabridge index run``.

    ``event_time_s`` is the event time every change carries (the end-to-end lag gauge then
    gives the exact time of each settle); ``extra`` adds ``indexer.*`` settings.
    """
    group = f"bench-{uuid.uuid4().hex[:8]}"
    port = _free_port()
    config: dict[str, Any] = {
        "kafka": {"bootstrap_servers": bootstrap, "topic_prefix": "bench."},
        "topics": {"partitions": 1},
        "indexer": {
            "group_id": group,
            "tables": [table],
            "session_timeout_ms": 6000,
            **(extra or {}),
        },
        "search": {"backend": engine, "hosts": [url], "index_prefix": "bench-idx-"},
        "metrics": {"host": "127.0.0.1", "port": port},
        "logging": {"level": "WARNING", "format": "text"},
    }
    path = workdir / f"{group}.yaml"
    path.write_text(yaml.safe_dump(config))
    topic = topic_name("bench.", table)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    end = _end_total(admin, topic)
    log = (workdir / f"{group}.log").open("wb")
    started = time.perf_counter()
    process = subprocess.Popen(
        [DYNABRIDGE, "index", "run", "--config", str(path)], stdout=log, stderr=subprocess.STDOUT
    )
    first: Sample | None = None
    first_seen_s = last_seen_s = 0.0
    last: Sample | None = None
    cpu_marks: dict[int, tuple[int, float]] = {}
    """10 and 90 (percent settled) -> (changes settled, process CPU seconds) when first seen."""
    first_commit_at, first_commit_done, peak, turn, cpu_total = 0.0, 0, 0.0, 0, 0.0
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"indexer exited {process.returncode}; see {log.name}")
            sample = _metrics(port, table, event_time_s)
            now_s = time.time()
            cpu = _cpu_s(process.pid)
            if sample is not None and sample.settled:
                if first is None:
                    first, first_seen_s = sample, now_s
                for mark in (10, 90):
                    if mark not in cpu_marks and sample.settled >= end * mark / 100:
                        cpu_marks[mark] = (sample.settled, cpu)
                if sample.settled >= end and last is None:
                    last, last_seen_s = sample, now_s
            turn += 1
            # Commits come once a second; looking up the group's offsets on every turn would
            # only load the machine the indexer runs on.
            if last is not None or turn % 4 == 0:
                done = _committed_total(admin, group, topic)
                if done and not first_commit_at:
                    first_commit_at, first_commit_done = time.perf_counter(), done
                if done >= end:
                    finished = time.perf_counter()
                    cpu_total = cpu
                    break
            peak = max(peak, _peak_rss_mib(process.pid))
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        log.close()
    if first is None or last is None:
        raise RuntimeError("the indexer's metrics never showed every change settled")
    last_settle_s = last.last_settle_s or last_seen_s
    first_settle_s = first.last_settle_s or first_seen_s
    exact = first.bulks == 1 and first.last_settle_s is not None
    if exact:
        first_sent_s = first_settle_s - first.bulk_seconds
    else:
        first_sent_s = first_settle_s - last.bulk_seconds / max(last.bulks, 1)
    (done_10, cpu_10), (done_90, cpu_90) = cpu_marks[10], cpu_marks[90]
    return IndexerRun(
        first_to_last_docs_per_s=end / max(last_settle_s - first_sent_s, 1e-9),
        first_exact=exact,
        steady_docs_per_s=(end - first_commit_done) / max(finished - first_commit_at, 1e-9),
        settled_docs_per_s=(end - first.settled) / max(last_settle_s - first_settle_s, 1e-9),
        wall_docs_per_s=end / (finished - started),
        cpu_us_per_doc=(cpu_90 - cpu_10) / max(done_90 - done_10, 1) * 1e6,
        cpu_us_per_doc_whole=cpu_total / end * 1e6,
        docs_per_bulk=last.bulk_documents / max(last.bulks, 1),
        peak_rss_mib=peak,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--engine", choices=["elasticsearch", "opensearch"], default="elasticsearch"
    )
    parser.add_argument("--url", default=None, help="default: the local stack's engine")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--docs", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an indexer.* setting for the indexer under test (repeatable), e.g. "
        "max_bulks_in_flight=1; the value is read as YAML",
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="default: bench-results/indexer-<engine>.json"
    )
    args = parser.parse_args()
    engine = SearchBackendName(args.engine)
    url = args.url or ENGINE_URLS[engine]
    out = args.out or Path("bench-results") / f"indexer-{engine.value}.json"
    extra = {key: yaml.safe_load(value) for key, _, value in (s.partition("=") for s in args.set)}
    base = sample_events(args.docs)
    (event_time_ms,) = {event.approximate_creation_time_ms for event in base}
    documents = bodies(base)
    ids = [doc_id(event.keys) for event in base]
    versions = [event.version for event in base]
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-indexer-") as tmp:
        for number in range(args.runs):
            table = f"bench-{uuid.uuid4().hex[:8]}"
            events = [dataclasses.replace(event, table=table) for event in base]
            _fill(args.bootstrap, topic_name("bench.", table), events, args.partitions)
            load_before = os.getloadavg()
            # Alternate which side goes first: load from the shared machine drifts over a run.
            raw = (
                measure_raw_client(url, documents, ids, versions, engine=engine)
                if number % 2
                else None
            )
            try:
                indexer = indexer_docs_per_s(
                    args.bootstrap, url, engine.value, table, Path(tmp), event_time_ms / 1000, extra
                )
            finally:
                index = index_name("bench-idx-", table)
                drop_table_indices(url, index)
                AdminClient({"bootstrap.servers": args.bootstrap}).delete_topics(
                    [topic_name("bench.", table), topic_name("bench.", table) + ".dlq"]
                )
            if raw is None:
                raw = measure_raw_client(url, documents, ids, versions, engine=engine)
            run = _run_record(indexer, raw, load_before, os.getloadavg())
            runs.append(run)
            print(
                f"run {number + 1}: first-to-last indexer {indexer.first_to_last_docs_per_s:6.0f}"
                f" helper {raw.first_to_last_docs_per_s:6.0f} docs/s, "
                f"ratio {run['ratio_first_to_last']:.2f} (steady {run['ratio_steady']:.2f}, "
                f"settled {run['ratio_settled']:.2f}); CPU us/doc indexer "
                f"{indexer.cpu_us_per_doc:.0f} helper {raw.cpu_us_per_doc:.0f}; "
                f"{indexer.docs_per_bulk:.0f} docs/bulk; peak RSS {indexer.peak_rss_mib:.0f} MiB; "
                f"load {load_before[0]:.1f}",
                flush=True,
            )
    summary = _summary(runs, args, extra)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary["medians"], indent=2))
    print(f"written to {out}")


def _run_record(
    indexer: IndexerRun,
    raw: Measurement,
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> dict[str, Any]:
    helper = raw.first_to_last_docs_per_s
    return {
        **dataclasses.asdict(indexer),
        "helper_first_to_last_docs_per_s": helper,
        "helper_docs_per_s_with_first_chunk": raw.docs_per_s,
        "helper_cpu_us_per_doc": raw.cpu_us_per_doc,
        "ratio_first_to_last": indexer.first_to_last_docs_per_s / helper,
        "ratio_steady": indexer.steady_docs_per_s / helper,
        "ratio_settled": indexer.settled_docs_per_s / helper,
        "load_average_before": load_before,
        "load_average_after": load_after,
    }


def _summary(
    runs: list[dict[str, Any]], args: argparse.Namespace, extra: dict[str, Any]
) -> dict[str, Any]:
    def median(key: str) -> float:
        return float(statistics.median(run[key] for run in runs))

    keys = (
        "ratio_first_to_last",
        "ratio_steady",
        "ratio_settled",
        "first_to_last_docs_per_s",
        "helper_first_to_last_docs_per_s",
        "steady_docs_per_s",
        "settled_docs_per_s",
        "wall_docs_per_s",
        "cpu_us_per_doc",
        "helper_cpu_us_per_doc",
        "cpu_us_per_doc_whole",
        "docs_per_bulk",
        "peak_rss_mib",
    )
    medians = {key: median(key) for key in keys}
    medians["load_average_1m"] = statistics.median(run["load_average_before"][0] for run in runs)
    return {
        "engine": args.engine,
        "docs": args.docs,
        "partitions": args.partitions,
        "indexer_settings": extra,
        "runs": runs,
        "medians": medians,
        "commit": _git_commit(),
        "host": {"python": platform.python_version(), "machine": platform.machine()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _git_commit() -> str:
    try:
        return subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


if __name__ == "__main__":
    main()
