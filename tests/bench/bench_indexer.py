"""Indexer throughput: a pre-filled topic drained by ``dynabridge index run`` vs the raw helper.

Per run: N encoded change events (MODIFYs with both images of realistic items: numbers mixing
integers and decimals, a list of mixed types, an attribute whose type drifts; distinct
documents, so coalescing saves nothing) are produced to a fresh topic; a real ``dynabridge index
run`` process drains it into the engine until the group's committed offsets reach the end; the
engine client's own ``streaming_bulk`` indexes the same bodies the indexer sends (``_source`` and
typed fields, same ids, same external versions, same chunk size) into a fresh index with the same
managed mapping on the same node. Runs alternate which side goes first, medians are reported,
results go to a JSON file::

    python -m tests.bench.bench_indexer --engine elasticsearch --docs 20000 --runs 3

Rates: ``first_to_last`` runs from the indexer sending its first bulk (the first settled bulk
minus the mean bulk duration) to the last document settled, both read from the indexer's own
metrics every 50 ms: what the helper's rate measures too, from its first request to its last
answer. ``steady`` runs from the first commit to the commit reaching the end (commits come once
a second). ``wall`` includes everything from the process start to the final commit. The goal is
first_to_last ratio >= 0.8.
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
    bodies,
    raw_client_docs_per_s,
    sample_events,
)
from tests.indices import drop_table_indices
from tests.integration.indexer.indexer_harness import produce

DYNABRIDGE = str(Path(sys.executable).parent / "dynabridge")

LATEST = OffsetSpec.latest()  # type: ignore[no-untyped-call]


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


def _metrics(port: int) -> tuple[int, float]:
    """(changes settled so far, mean bulk seconds) from the indexer's own metrics; 0s until the
    server is up."""
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return 0, 0.0
    lines = text.splitlines()
    prefix = "dynabridge_indexer_documents_total{"
    settled = sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(prefix))
    samples = [line for line in lines if line and not line.startswith("#")]
    values = {line.split(" ")[0]: float(line.rsplit(" ", 1)[1]) for line in samples}
    count = values.get("dynabridge_indexer_bulk_seconds_count", 0.0)
    mean = values.get("dynabridge_indexer_bulk_seconds_sum", 0.0) / count if count else 0.0
    return int(settled), mean


@dataclasses.dataclass
class IndexerRun:
    first_to_last_docs_per_s: float
    steady_docs_per_s: float
    settled_docs_per_s: float
    wall_docs_per_s: float
    peak_rss_mib: float


def indexer_docs_per_s(
    bootstrap: str, url: str, engine: str, table: str, workdir: Path
) -> IndexerRun:
    group = f"bench-{uuid.uuid4().hex[:8]}"
    port = _free_port()
    config = {
        "kafka": {"bootstrap_servers": bootstrap, "topic_prefix": "bench."},
        "topics": {"partitions": 1},
        "indexer": {"group_id": group, "tables": [table], "session_timeout_ms": 6000},
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
    first_at, first_done, peak = 0.0, 0, 0.0
    settled_first: tuple[float, int] | None = None
    settled_last, bulk_s = 0.0, 0.0
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"indexer exited {process.returncode}; see {log.name}")
            settled, bulk_s = _metrics(port)
            now = time.perf_counter()
            if settled and settled_first is None:
                settled_first = (now, settled)
            if settled < end:
                settled_last = 0.0
            elif not settled_last:
                settled_last = now
            done = _committed_total(admin, group, topic)
            finished = time.perf_counter()
            peak = max(peak, _peak_rss_mib(process.pid))
            if done and not first_at:
                first_at, first_done = finished, done
            if done >= end:
                break
            time.sleep(0.05)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        log.close()
    if settled_first is None or not settled_last:
        raise RuntimeError("the indexer's metrics never showed every change settled")
    first_sent = settled_first[0] - bulk_s
    return IndexerRun(
        first_to_last_docs_per_s=end / max(settled_last - first_sent, 1e-9),
        steady_docs_per_s=(end - first_done) / max(finished - first_at, 1e-9),
        settled_docs_per_s=(end - settled_first[1]) / max(settled_last - settled_first[0], 1e-9),
        wall_docs_per_s=end / (finished - started),
        peak_rss_mib=peak,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--engine", choices=["elasticsearch", "opensearch"], default="elasticsearch"
    )
    parser.add_argument("--url", default=None, help="default: the local stack's engine")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--docs", type=int, default=50000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench-indexer.json"))
    args = parser.parse_args()
    engine = SearchBackendName(args.engine)
    url = args.url or ENGINE_URLS[engine]
    base = sample_events(args.docs)
    documents = bodies(base)
    ids = [doc_id(event.keys) for event in base]
    versions = [event.version for event in base]
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-indexer-") as tmp:
        for number in range(args.runs):
            table = f"bench-{uuid.uuid4().hex[:8]}"
            events = [dataclasses.replace(event, table=table) for event in base]
            _fill(args.bootstrap, topic_name("bench.", table), events, args.partitions)
            # Alternate which side goes first: load from the shared machine drifts over a run.
            raw = (
                raw_client_docs_per_s(url, documents, ids, versions, engine=engine)
                if number % 2
                else 0.0
            )
            try:
                indexer = indexer_docs_per_s(args.bootstrap, url, engine.value, table, Path(tmp))
            finally:
                index = index_name("bench-idx-", table)
                drop_table_indices(url, index)
                AdminClient({"bootstrap.servers": args.bootstrap}).delete_topics(
                    [topic_name("bench.", table), topic_name("bench.", table) + ".dlq"]
                )
            if not raw:
                raw = raw_client_docs_per_s(url, documents, ids, versions, engine=engine)
            run = {
                **dataclasses.asdict(indexer),
                "raw_docs_per_s": raw,
                "ratio_first_to_last": indexer.first_to_last_docs_per_s / raw,
                "ratio_steady": indexer.steady_docs_per_s / raw,
                "ratio_settled": indexer.settled_docs_per_s / raw,
            }
            runs.append(run)
            print(
                f"run {number + 1}: indexer first-to-last {indexer.first_to_last_docs_per_s:7.0f}"
                f" docs/s (ratio {run['ratio_first_to_last']:.2f}), "
                f"steady {indexer.steady_docs_per_s:7.0f}, "
                f"settled {indexer.settled_docs_per_s:7.0f}, wall {indexer.wall_docs_per_s:7.0f}, "
                f"raw helper {raw:7.0f}, ratio {run['ratio_steady']:.2f} "
                f"(settled {run['ratio_settled']:.2f}), peak RSS {indexer.peak_rss_mib:.0f} MiB, "
                f"load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    summary = _summary(runs, args)
    args.out.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary["medians"], indent=2))


def _summary(runs: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    def median(key: str) -> float:
        return float(statistics.median(run[key] for run in runs))

    medians = {
        "indexer_first_to_last_docs_per_s": median("first_to_last_docs_per_s"),
        "indexer_steady_docs_per_s": median("steady_docs_per_s"),
        "indexer_settled_docs_per_s": median("settled_docs_per_s"),
        "indexer_wall_docs_per_s": median("wall_docs_per_s"),
        "raw_helper_docs_per_s": median("raw_docs_per_s"),
        "indexer_peak_rss_mib": median("peak_rss_mib"),
    }
    medians["ratio_first_to_last"] = (
        medians["indexer_first_to_last_docs_per_s"] / medians["raw_helper_docs_per_s"]
    )
    medians["ratio_steady"] = (
        medians["indexer_steady_docs_per_s"] / medians["raw_helper_docs_per_s"]
    )
    medians["ratio_settled"] = (
        medians["indexer_settled_docs_per_s"] / medians["raw_helper_docs_per_s"]
    )
    medians["ratio_wall"] = medians["indexer_wall_docs_per_s"] / medians["raw_helper_docs_per_s"]
    medians["median_of_run_ratios_steady"] = median("ratio_steady")
    medians["load_average_1m"] = os.getloadavg()[0]
    return {
        "engine": args.engine,
        "docs": args.docs,
        "partitions": args.partitions,
        "runs": runs,
        "medians": medians,
        "host": {"python": platform.python_version(), "machine": platform.machine()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


if __name__ == "__main__":
    main()
