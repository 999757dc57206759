"""Backfill throughput against its source limit: a bare parallel Scan of the same table.

Same table, same segments, same page size, same run, alternating which goes first; the ratio
``backfill items/s / bare Scan items/s`` is the figure of merit (goal >= 0.8). Then, with
``dynabridge index run`` as a subprocess, the end-to-end time from the backfill's start until
the index holds every item. Medians over ``--runs``; JSON on stdout::

    python -m tests.bench.bench_backfill --items 10000 --segments 4 --runs 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3  # noqa: TID251 - the benchmark's reference is the raw client
from confluent_kafka.admin import AdminClient  # noqa: TID251 - cleanup of the bench topics

from bridge.backfill.runner import Options
from bridge.runtime.settings import load_settings
from consumers.indexer.documents import index_name
from dynabridge.operations.backfill import run_backfill
from tests.tables import create_pk_sk_table


def item(i: int) -> dict[str, Any]:
    return {
        "pk": {"S": f"customer-{i % 997}"},
        "sk": {"N": str(i)},
        "name": {"S": f"item number {i} " + "x" * 120},
        "price": {"N": f"{i}.99"},
        "tags": {"SS": ["a", f"t{i % 13}"]},
        "blob": {"B": bytes(range(64))},
        "attrs": {"M": {"n": {"N": str(i)}, "ok": {"BOOL": True}, "l": {"L": [{"S": "v"}]}}},
    }


def load_table(ddb: Any, table: str, count: int) -> None:
    create_pk_sk_table(ddb, table, stream=False)

    def batch(start: int) -> None:
        requests = [{"PutRequest": {"Item": item(i)}} for i in range(start, min(count, start + 25))]
        ddb.batch_write_item(RequestItems={table: requests})

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(batch, range(0, count, 25)))
    ddb.update_table(
        TableName=table,
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


def bare_scan_items_per_s(ddb: Any, table: str, segments: int, page_size: int | None) -> float:
    """The source limit: every segment scanned to its end on its own thread, items dropped."""

    def segment(number: int) -> int:
        kwargs: dict[str, Any] = {"TableName": table, "Segment": number, "TotalSegments": segments}
        if page_size:
            kwargs["Limit"] = page_size
        count = 0
        while True:
            page = ddb.scan(**kwargs, ReturnConsumedCapacity="TOTAL")
            count += len(page["Items"])
            if "LastEvaluatedKey" not in page:
                return count
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    started = time.monotonic()
    with ThreadPoolExecutor(segments) as pool:
        total = sum(pool.map(segment, range(segments)))
    return total / (time.monotonic() - started)


def backfill_items_per_s(table: str, segments: int, page_size: int | None) -> tuple[float, float]:
    """(items/s of the run loop, wall seconds of the whole command including its set-up)."""
    started = time.monotonic()
    options = Options(segments=segments, page_size=page_size, restart=True)
    code, summary = run_backfill(
        load_settings(None), table, options, stop=threading.Event(), say=lambda line: None
    )
    if code != 0 or summary is None:
        raise SystemExit(f"backfill failed with exit code {code}")
    return summary.items_published / summary.elapsed_s, time.monotonic() - started


def count(es: str, index: str) -> int:
    try:
        with urllib.request.urlopen(f"{es}/{index}/_count", timeout=10) as response:  # noqa: S310
            return int(json.loads(response.read())["count"])
    except OSError:
        return 0


def end_to_end_s(table: str, items: int, segments: int, page_size: int | None, es: str) -> float:
    """Seconds from the backfill's start until the index holds every item (indexer running)."""
    run_prefix = f"{table}-e2e{uuid.uuid4().hex[:6]}."
    env = {
        **os.environ,
        "DYNABRIDGE_KAFKA__TOPIC_PREFIX": run_prefix,
        "DYNABRIDGE_SEARCH__INDEX_PREFIX": run_prefix,
        "DYNABRIDGE_INDEXER__GROUP_ID": run_prefix + "g",
        "DYNABRIDGE_BRIDGE__TABLES": table,
    }
    os.environ["DYNABRIDGE_KAFKA__TOPIC_PREFIX"] = run_prefix
    indexer = subprocess.Popen(
        [sys.executable, "-c", "from dynabridge.cli import main; main()", "index", "run"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    index = index_name(run_prefix, table)
    try:
        started = time.monotonic()
        backfill_items_per_s(table, segments, page_size)
        while count(es, index) < items:
            if time.monotonic() - started > 600:
                raise SystemExit("the index did not fill within 600 s")
            time.sleep(0.2)
        return time.monotonic() - started
    finally:
        indexer.terminate()
        indexer.wait(timeout=30)
        with contextlib.suppress(OSError):
            request = urllib.request.Request(f"{es}/{index}", method="DELETE")  # noqa: S310
            urllib.request.urlopen(request, timeout=10).close()  # noqa: S310


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument("--segments", type=int, default=4)
    parser.add_argument("--page-size", type=int, default=None)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--e2e-runs", type=int, default=2)
    parser.add_argument("--moto", default="http://127.0.0.1:5000")
    parser.add_argument("--kafka", default="127.0.0.1:9092")
    parser.add_argument("--es", default="http://127.0.0.1:9200")
    args = parser.parse_args()

    name = f"bench-bf-{uuid.uuid4().hex[:6]}"
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "DYNABRIDGE_AWS__ENDPOINT_URL": args.moto,
            "DYNABRIDGE_KAFKA__BOOTSTRAP_SERVERS": args.kafka,
            "DYNABRIDGE_KAFKA__TOPIC_PREFIX": name + ".",
            "DYNABRIDGE_BRIDGE__LEASE_TABLE": name + "-leases",
            "DYNABRIDGE_SEARCH__HOSTS": args.es,
            "DYNABRIDGE_METRICS__PORT": "0",
            "DYNABRIDGE_LOGGING__LEVEL": "WARNING",
            "DYNABRIDGE_LOGGING__FORMAT": "text",
        }
    )
    ddb = boto3.client("dynamodb", endpoint_url=args.moto, region_name="us-east-1")
    table = name
    load_table(ddb, table, args.items)
    runs = []
    try:
        for run in range(args.runs):
            if run % 2 == 0:
                bare = bare_scan_items_per_s(ddb, table, args.segments, args.page_size)
                ours, wall = backfill_items_per_s(table, args.segments, args.page_size)
            else:
                ours, wall = backfill_items_per_s(table, args.segments, args.page_size)
                bare = bare_scan_items_per_s(ddb, table, args.segments, args.page_size)
            runs.append({"bare_scan_items_per_s": bare, "backfill_items_per_s": ours,
                         "backfill_wall_s": wall, "ratio": ours / bare})  # fmt: skip
            print(json.dumps(runs[-1]), file=sys.stderr)
        e2e = [
            end_to_end_s(table, args.items, args.segments, args.page_size, args.es)
            for _ in range(args.e2e_runs)
        ]
    finally:
        for doomed in (table, name + "-leases"):
            with contextlib.suppress(Exception):
                ddb.delete_table(TableName=doomed)
        admin = AdminClient({"bootstrap.servers": args.kafka})
        topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(name)]
        if topics:
            admin.delete_topics(topics)
    result = {
        "items": args.items,
        "segments": args.segments,
        "page_size": args.page_size,
        "runs": runs,
        "median_bare_scan_items_per_s": statistics.median(r["bare_scan_items_per_s"] for r in runs),
        "median_backfill_items_per_s": statistics.median(r["backfill_items_per_s"] for r in runs),
        "median_ratio": statistics.median(r["ratio"] for r in runs),
        "end_to_end_s": e2e,
        "median_end_to_end_s": statistics.median(e2e) if e2e else None,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
