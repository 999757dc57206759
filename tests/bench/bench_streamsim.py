"""What the Streams simulator itself sustains, so a benchmark on it knows the server is not its
bottleneck: recorded-pages (backlog) serving with a plain HTTP client, and the synthetic
generator's rate.

    python -m tests.bench.bench_streamsim [--runs 3] [--records-per-shard 5000]

Each run starts a fresh simulator subprocess (no moto), prefills a backlog table (~2 KB
records, pages of up to 1,000 records, ``page_max_bytes`` raised so a page is 1,000 records),
then drains it with keep-alive HTTP connections (one per shard, ``--clients`` threads), timing
only GetRecords: pages/s, records/s and MB/s of response bodies. Then a synthetic table's
generator runs at increasing rates to find the highest it keeps up with. Prints one JSON
document with every run and the medians.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import orjson

from tests.streamsim import start_server

HEADERS = {
    "Content-Type": "application/x-amz-json-1.0",
    "Authorization": "AWS4-HMAC-SHA256 Credential=bench/20200101/us-east-1/dynamodb/aws4_request",
}


def _post(connection: http.client.HTTPConnection, operation: str, body: dict[str, Any]) -> bytes:
    connection.request(
        "POST",
        "/",
        orjson.dumps(body),
        {**HEADERS, "X-Amz-Target": f"DynamoDBStreams_20120810.{operation}"},
    )
    response = connection.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"{operation}: {response.status} {data[:300]!r}")
    return data


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def drain(
    endpoint: str, pid: int, shards: int, records_per_shard: int, clients: int
) -> dict[str, Any]:
    from dynabridge.streamsim.client import SimClient

    sim = SimClient(endpoint, timeout_s=600)
    name = f"bench-{uuid.uuid4().hex[:6]}"
    started = time.monotonic()
    info = sim.create_synthetic_table(
        name,
        shards=shards,
        page_max_bytes=64 * 2**20,
        describe_stream_per_s=0,
        oracle=False,
        backlog={"records_per_shard": records_per_shard, "record_bytes": 2048},
    )
    prefill_s = time.monotonic() - started
    arn = info["latest_stream_arn"]
    shard_ids = [s.shard_id for s in sim.shards(name)]
    host, port = endpoint.removeprefix("http://").split(":")
    totals = {"pages": 0, "records": 0, "bytes": 0}
    lock = threading.Lock()

    def read_shard(shard_id: str) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=600)
        iterator = orjson.loads(
            _post(
                connection,
                "GetShardIterator",
                {"StreamArn": arn, "ShardId": shard_id, "ShardIteratorType": "TRIM_HORIZON"},
            )
        )["ShardIterator"]
        pages = records = size = 0
        while True:
            body = _post(connection, "GetRecords", {"ShardIterator": iterator, "Limit": 1000})
            size += len(body)
            pages += 1
            # Count without parsing: each record has exactly one "eventID".
            found = body.count(b'"eventID"')
            records += found
            if found == 0:
                break
            iterator = _next_iterator(body)
        connection.close()
        with lock:
            totals["pages"] += pages
            totals["records"] += records
            totals["bytes"] += size

    begin, begin_cpu = time.monotonic(), cpu_s(pid)
    with ThreadPoolExecutor(max_workers=min(clients, shards)) as pool:
        list(pool.map(read_shard, shard_ids))
    elapsed = time.monotonic() - begin
    server_cpu_s = cpu_s(pid) - begin_cpu
    sim.drop(name)
    return {
        "server_cpu_s": round(server_cpu_s, 3),
        "server_cpu_us_per_page": round(server_cpu_s * 1e6 / totals["pages"]),
        "server_pages_per_cpu_s": round(totals["pages"] / server_cpu_s),
        "server_mb_per_cpu_s": round(totals["bytes"] / server_cpu_s / 1e6),
        "shards": shards,
        "records": totals["records"],
        "prefill_s": round(prefill_s, 2),
        "drain_s": round(elapsed, 3),
        "pages_per_s": round(totals["pages"] / elapsed, 1),
        "records_per_s": round(totals["records"] / elapsed),
        "mb_per_s": round(totals["bytes"] / elapsed / 1e6, 1),
    }


def _next_iterator(body: bytes) -> str:
    marker = b'"NextShardIterator":"'
    start = body.rindex(marker) + len(marker)
    return body[start : body.index(b'"', start)].decode()


def generator_rate(endpoint: str, pid: int, rate: int, seconds: float) -> dict[str, Any]:
    from dynabridge.streamsim.client import SimClient

    sim = SimClient(endpoint)
    name = f"gen-{uuid.uuid4().hex[:6]}"
    sim.create_synthetic_table(
        name,
        shards=16,
        oracle=False,
        generator={"rate_per_s": rate, "items": 100_000, "stamp_write_time": True},
    )
    time.sleep(1.0)  # warm-up
    first, first_cpu = sim.generator(name)["written"], cpu_s(pid)
    time.sleep(seconds)
    written = sim.generator(name)["written"] - first
    used = cpu_s(pid) - first_cpu
    sim.drop(name)
    achieved = written / seconds
    return {
        "target_per_s": rate,
        "achieved_per_s": round(achieved),
        "kept_up": achieved >= 0.97 * rate,
        "server_cpu_us_per_change": round(used * 1e6 / max(written, 1)),
    }


def empty_polls(endpoint: str, pid: int, shards: int, polls: int) -> dict[str, Any]:
    """Requests/s and server CPU per request when every poll finds nothing (idle shards)."""
    from dynabridge.streamsim.client import SimClient

    sim = SimClient(endpoint)
    name = f"idle-{uuid.uuid4().hex[:6]}"
    arn = sim.create_synthetic_table(name, shards=shards, oracle=False)["latest_stream_arn"]
    host, port = endpoint.removeprefix("http://").split(":")

    def poll(shard_id: str) -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=60)
        body = {"StreamArn": arn, "ShardId": shard_id, "ShardIteratorType": "LATEST"}
        iterator = orjson.loads(_post(connection, "GetShardIterator", body))["ShardIterator"]
        for _ in range(polls):
            iterator = _next_iterator(_post(connection, "GetRecords", {"ShardIterator": iterator}))
        connection.close()

    begin, begin_cpu = time.monotonic(), cpu_s(pid)
    with ThreadPoolExecutor(max_workers=shards) as pool:
        list(pool.map(poll, [s.shard_id for s in sim.shards(name)]))
    elapsed = time.monotonic() - begin
    used = cpu_s(pid) - begin_cpu
    sim.drop(name)
    return {
        "requests_per_s": round(shards * polls / elapsed),
        "server_cpu_us_per_request": round(used * 1e6 / (shards * polls)),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--records-per-shard", type=int, default=20000)
    parser.add_argument("--wide-records-per-shard", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--rates", default="1000,2500,5000,7500,10000")
    args = parser.parse_args(argv)

    runs: list[dict[str, Any]] = []
    for _ in range(args.runs):
        server = start_server("", "--log-level", "WARNING")
        assert server.process is not None
        pid = server.process.pid
        try:
            run = {
                "one_shard": drain(server.endpoint, pid, 1, args.records_per_shard, 1),
                "64_shards": drain(
                    server.endpoint, pid, 64, args.wide_records_per_shard, args.clients
                ),
                "empty_polls": empty_polls(server.endpoint, pid, 64, 50),
                "generator": [
                    generator_rate(server.endpoint, pid, int(rate), 5.0)
                    for rate in args.rates.split(",")
                ],
            }
        finally:
            server.stop()
        runs.append(run)
        print(json.dumps(run), file=sys.stderr)

    def median(case: str, key: str) -> float:
        return float(statistics.median(run[case][key] for run in runs))

    keys = (
        "pages_per_s", "records_per_s", "mb_per_s", "server_cpu_us_per_page",
        "server_pages_per_cpu_s", "server_mb_per_cpu_s",
    )  # fmt: skip
    summary: dict[str, Any] = {
        case: {key: median(case, key) for key in keys} for case in ("one_shard", "64_shards")
    }
    summary["empty_polls"] = {
        key: median("empty_polls", key) for key in ("requests_per_s", "server_cpu_us_per_request")
    }
    summary["generator_max_kept_up_per_s"] = statistics.median(
        max([g["target_per_s"] for g in run["generator"] if g["kept_up"]], default=0)
        for run in runs
    )
    print(json.dumps({"load_average": os.getloadavg(), "runs": runs, "medians": summary}, indent=2))


if __name__ == "__main__":
    main()
