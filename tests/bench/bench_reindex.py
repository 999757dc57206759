"""Reindex duration: ``dynabridge reindex`` of an N-document index while changes keep arriving.

Per run: a moto table loaded with N realistic items (``bench_search.sample_events``' images),
the same N changes in the table's topic as the bridge publishes them (contract key, value,
headers), and a real ``dynabridge index run`` process keeping the live index. Then a writer
puts items into the table and publishes their changes into the topic at ``--live-rate``
changes/s (the bridge's job done by hand: the bench measures the reindex, not moto's stream)
while the real ``dynabridge reindex --json`` runs. Reported: the command's wall time, its fill
time, the lag at the switch, how long writes were blocked, and two raw limits measured in the
same run: the engine's own bulk helper indexing the same N bodies (the fill's ratio), and
moto's consistent Scan of the table alone (verify reads the whole table; it cannot beat that)::

    python -m tests.bench.bench_reindex --docs 100000 --runs 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import boto3  # noqa: TID251 - the bench loads its own table
import yaml
from confluent_kafka.admin import AdminClient  # noqa: TID251 - the bench makes its topics

from bridge.contract import ChangeEvent, EventName, topic_name
from bridge.runtime.settings import SearchBackend as SearchBackendName
from consumers.indexer.documents import doc_id, index_name
from tests.bench.bench_indexer import _committed_total, _end_total, _fill
from tests.bench.bench_search import (
    ENGINE_URLS,
    bodies,
    raw_client_docs_per_s,
    sample_events,
    sample_item,
)
from tests.indices import drop_table_indices
from tests.integration.indexer.indexer_harness import produce

DYNABRIDGE = str(Path(sys.executable).parent / "dynabridge")
PREFIX = "bench."
INDEX_PREFIX = "bench-idx-"
AWS = {"region_name": "us-east-1", "aws_access_key_id": "x", "aws_secret_access_key": "x"}


def _load_table(moto: str, table: str, events: list[ChangeEvent]) -> float:
    """Create ``table`` and put every event's new image; items/s."""
    dynamodb = boto3.client("dynamodb", endpoint_url=moto, **AWS)  # type: ignore[call-overload]
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                   {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                              {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )  # fmt: skip
    started = time.perf_counter()
    for start in range(0, len(events), 25):
        batch = [{"PutRequest": {"Item": e.new_image}} for e in events[start : start + 25]]
        pending: dict[str, Any] = {table: batch}
        while pending:
            pending = dict(dynamodb.batch_write_item(RequestItems=pending)["UnprocessedItems"])
    return len(events) / (time.perf_counter() - started)


def _scan_items_per_s(moto: str, table: str) -> float:
    """moto's strongly consistent Scan of the whole table, alone: verify's floor."""
    dynamodb = boto3.client("dynamodb", endpoint_url=moto, **AWS)  # type: ignore[call-overload]
    started, count = time.perf_counter(), 0
    for page in dynamodb.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        count += len(page["Items"])
    return count / (time.perf_counter() - started)


class LiveWriter:
    """Puts an item and publishes its change, ``rate`` times a second, until stopped."""

    def __init__(
        self, moto: str, bootstrap: str, table: str, docs: int, rate: float, first_version: int
    ) -> None:
        self._dynamodb = boto3.client("dynamodb", endpoint_url=moto, **AWS)  # type: ignore[call-overload]
        self._bootstrap, self._table, self._docs, self._rate = bootstrap, table, docs, rate
        self._version = first_version
        self._stop = threading.Event()
        self.written = 0
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)

    def _run(self) -> None:
        import random

        rng = random.Random(11)
        started = time.monotonic()
        while not self._stop.is_set():
            batch: list[ChangeEvent] = []
            for _ in range(10):
                item = sample_item(rng.randrange(self._docs), rng, 2 + self.written)
                self._version += 1
                self._dynamodb.put_item(TableName=self._table, Item=item)
                batch.append(_change(self._table, item, self._version))
                self.written += 1
            produce(self._bootstrap, topic_name(PREFIX, self._table), batch)
            ahead = self.written / self._rate - (time.monotonic() - started)
            if ahead > 0:
                self._stop.wait(ahead)


def _change(table: str, item: dict[str, Any], version: int) -> ChangeEvent:
    return ChangeEvent(
        table=table, event_name=EventName.MODIFY, event_id=str(version),
        stream_arn=f"arn:aws:dynamodb:us-east-1:000000000000:table/{table}/stream/x",
        shard_id="shardId-0", sequence_number=str(10**20 + version % 10**12),
        approximate_creation_time_ms=int(time.time() * 1000), version=version,
        keys={"pk": item["pk"], "sk": item["sk"]}, new_image=item, old_image=None,
    )  # fmt: skip


def _config(args: argparse.Namespace, table: str, group: str, url: str, path: Path) -> Path:
    config = {
        "aws": {"endpoint_url": args.moto, "region": "us-east-1"},
        "kafka": {"bootstrap_servers": args.bootstrap, "topic_prefix": PREFIX},
        "topics": {"partitions": args.partitions},
        "indexer": {"group_id": group, "tables": [table], "session_timeout_ms": 6000},
        "search": {"backend": args.engine, "hosts": [url], "index_prefix": INDEX_PREFIX},
        "metrics": {"host": "127.0.0.1", "port": 0},
        "logging": {"level": "WARNING", "format": "text"},
    }
    path.write_text(yaml.safe_dump(config))
    return path


@dataclasses.dataclass
class Run:
    docs: int
    reindex_wall_s: float
    fill_s: float
    fill_docs_per_s: float
    raw_helper_docs_per_s: float
    fill_ratio: float
    verify_and_switch_s: float
    moto_scan_items_per_s: float
    lag_at_switch: int
    writes_blocked_s: float
    live_changes_during: int
    verdict: str
    load_average_1m: float


def one_run(args: argparse.Namespace, workdir: Path) -> Run:
    engine = SearchBackendName(args.engine)
    url = args.url or ENGINE_URLS[engine]
    table = f"bench-reindex-{uuid.uuid4().hex[:8]}"
    group = f"bench-{uuid.uuid4().hex[:8]}"
    events = [dataclasses.replace(e, table=table) for e in sample_events(args.docs)]
    topic = topic_name(PREFIX, table)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    config = _config(args, table, group, url, workdir / f"{table}.yaml")
    indexer = None
    try:
        loaded = _load_table(args.moto, table, events)
        _fill(args.bootstrap, topic, events, args.partitions)
        print(f"{table}: {args.docs} items loaded ({loaded:.0f}/s), topic filled", flush=True)
        log = (workdir / f"{table}-indexer.log").open("wb")
        indexer = subprocess.Popen([DYNABRIDGE, "index", "run", "--config", str(config)],
                                   stdout=log, stderr=subprocess.STDOUT, env=env)  # fmt: skip
        deadline = time.monotonic() + 1800
        while _committed_total(admin, group, topic) < _end_total(admin, topic):
            if indexer.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the live indexer did not catch up; see {log.name}")
            time.sleep(0.5)
        print(f"{table}: live index built", flush=True)
        writer = LiveWriter(args.moto, args.bootstrap, table, args.docs, args.live_rate,
                            events[-1].version + 1)  # fmt: skip
        writer.start()
        started = time.perf_counter()
        done = subprocess.run(
            [DYNABRIDGE, "reindex", "--config", str(config), "--table", table, "--json",
             "--switch-lag", str(args.switch_lag)],
            capture_output=True, text=True, env=env, timeout=7200, check=False,
        )  # fmt: skip
        wall = time.perf_counter() - started
        writer.stop()
        if done.returncode != 0:
            raise RuntimeError(f"reindex exited {done.returncode}: {done.stderr[-2000:]}")
        report = json.loads(done.stdout)
        scan = _scan_items_per_s(args.moto, table)
        documents = bodies(events)
        ids = [doc_id(e.keys) for e in events]
        raw = raw_client_docs_per_s(url, documents, ids, [e.version for e in events],
                                    engine=engine)  # fmt: skip
        fill_s = float(report["fill_seconds"])
        return Run(
            docs=args.docs,
            reindex_wall_s=round(wall, 1),
            fill_s=fill_s,
            fill_docs_per_s=round(args.docs / fill_s),
            raw_helper_docs_per_s=round(raw),
            fill_ratio=round(args.docs / fill_s / raw, 2),
            verify_and_switch_s=round(wall - fill_s, 1),
            moto_scan_items_per_s=round(scan),
            lag_at_switch=int(report["lag_at_switch"]),
            writes_blocked_s=float(report["writes_blocked_seconds"]),
            live_changes_during=writer.written,
            verdict=str(report["verify"]["verdict"]),
            load_average_1m=round(os.getloadavg()[0], 2),
        )
    finally:
        if indexer is not None:
            indexer.send_signal(signal.SIGTERM)
            indexer.wait(60)
        drop_table_indices(url, index_name(INDEX_PREFIX, table))
        admin.delete_topics([topic, topic + ".dlq"])
        dynamodb = boto3.client("dynamodb", endpoint_url=args.moto, **AWS)  # type: ignore[call-overload]
        dynamodb.delete_table(TableName=table)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--engine", choices=["elasticsearch", "opensearch"],
                        default="elasticsearch")  # fmt: skip
    parser.add_argument("--url", default=None, help="default: the local stack's engine")
    parser.add_argument("--bootstrap", default="127.0.0.1:9092")
    parser.add_argument("--moto", default="http://127.0.0.1:5000")
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=3)
    parser.add_argument("--live-rate", type=float, default=50.0, help="changes/s meanwhile")
    parser.add_argument("--switch-lag", type=int, default=100)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("bench-reindex.json"))
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="bench-reindex-") as tmp:
        for number in range(args.runs):
            run = one_run(args, Path(tmp))
            runs.append(dataclasses.asdict(run))
            print(f"run {number + 1}: {json.dumps(runs[-1])}", flush=True)
    args.out.write_text(json.dumps({"engine": args.engine, "runs": runs}, indent=2))


if __name__ == "__main__":
    main()
