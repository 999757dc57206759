"""Indexer throughput: a pre-filled topic drained by ``dynabridge index run`` vs the raw helper.

Per run: N encoded change events (distinct documents, so coalescing saves nothing) are produced
to a fresh topic; a real ``dynabridge index run`` process drains it into Elasticsearch until the
group's committed offsets reach the end; the raw client's ``streaming_bulk`` indexes the same
plain documents (same ids, same external versions) into a fresh index on the same node. Runs
alternate, medians are reported, results go to a JSON file::

    python -m tests.bench.bench_indexer --docs 50000 --runs 3 --out bench-indexer.json

``steady`` rates run from the indexer's first commit to the commit that reaches the end of the
topic (process start, imports, the group join and the shutdown excluded); commits come once a
second, so both ends are known to about a second. ``settled`` rates run from the first to the
last settled bulk, read from the indexer's own ``dynabridge_indexer_documents_total`` every 50 ms,
so their ends are known to one bulk. ``wall`` rates include everything up to the final commit.
The goal is steady ratio >= 0.8.
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
from consumers.indexer.documents import doc_id, index_name, to_plain_json
from tests.bench.bench_search import _http, raw_client_docs_per_s, sample_events
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


def _settled_total(port: int) -> int:
    """Changes the indexer settled so far, from its own metrics; 0 until the server is up."""
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return 0
    prefix = "dynabridge_indexer_documents_total{"
    return int(
        sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))
    )


@dataclasses.dataclass
class IndexerRun:
    steady_docs_per_s: float
    settled_docs_per_s: float
    wall_docs_per_s: float
    peak_rss_mib: float


def indexer_docs_per_s(
    bootstrap: str, url: str, events: list[ChangeEvent], table: str, workdir: Path
) -> IndexerRun:
    group = f"bench-{uuid.uuid4().hex[:8]}"
    port = _free_port()
    config = {
        "kafka": {"bootstrap_servers": bootstrap, "topic_prefix": "bench."},
        "topics": {"partitions": 1},
        "indexer": {"group_id": group, "tables": [table], "session_timeout_ms": 6000},
        "search": {"backend": "elasticsearch", "hosts": [url], "index_prefix": "bench-idx-"},
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
    settled_last = 0.0
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"indexer exited {process.returncode}; see {log.name}")
            settled = _settled_total(port)
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
    return IndexerRun(
        steady_docs_per_s=(end - first_done) / max(finished - first_at, 1e-9),
        settled_docs_per_s=(end - settled_first[1]) / max(settled_last - settled_first[0], 1e-9),
        wall_docs_per_s=end / (finished - started),
        peak_rss_mib=peak,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:9200")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--docs", type=int, default=50000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("bench-indexer.json"))
    args = parser.parse_args()
    base = sample_events(args.docs)
    documents = [to_plain_json(event.new_image or {}) for event in base]
    ids = [doc_id(event.keys) for event in base]
    versions = [event.version for event in base]
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-indexer-") as tmp:
        for number in range(args.runs):
            table = f"bench-{uuid.uuid4().hex[:8]}"
            events = [dataclasses.replace(event, table=table) for event in base]
            _fill(args.bootstrap, topic_name("bench.", table), events, args.partitions)
            # Alternate which side goes first: load from the shared machine drifts over a run.
            raw = raw_client_docs_per_s(args.url, documents, ids, versions) if number % 2 else 0.0
            try:
                indexer = indexer_docs_per_s(args.bootstrap, args.url, events, table, Path(tmp))
            finally:
                _http("DELETE", f"{args.url}/{index_name('bench-idx-', table)}")
                AdminClient({"bootstrap.servers": args.bootstrap}).delete_topics(
                    [topic_name("bench.", table), topic_name("bench.", table) + ".dlq"]
                )
            if not raw:
                raw = raw_client_docs_per_s(args.url, documents, ids, versions)
            run = {
                **dataclasses.asdict(indexer),
                "raw_docs_per_s": raw,
                "ratio_steady": indexer.steady_docs_per_s / raw,
                "ratio_settled": indexer.settled_docs_per_s / raw,
            }
            runs.append(run)
            print(
                f"run {number + 1}: indexer steady {indexer.steady_docs_per_s:7.0f} docs/s, "
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
        "indexer_steady_docs_per_s": median("steady_docs_per_s"),
        "indexer_settled_docs_per_s": median("settled_docs_per_s"),
        "indexer_wall_docs_per_s": median("wall_docs_per_s"),
        "raw_helper_docs_per_s": median("raw_docs_per_s"),
        "indexer_peak_rss_mib": median("peak_rss_mib"),
    }
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
        "docs": args.docs,
        "partitions": args.partitions,
        "runs": runs,
        "medians": medians,
        "host": {"python": platform.python_version(), "machine": platform.machine()},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


if __name__ == "__main__":
    main()
