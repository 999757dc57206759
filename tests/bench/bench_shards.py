"""Many shards: one ``dynabridge bridge run`` holding 64 shards whose GetRecords take 40 ms.

    python -m tests.bench.bench_shards [--shards 64] [--latency-ms 40] [--backlog 1000]
                                       [--trickle-per-shard 3] [--trickle-s 30] [--runs 3]

(a) Backlog: every shard holds ``--backlog`` records of ~2 KB. Drain time (first GetRecords to
the last record acknowledged) against the ideal: the larger of the CPU bound (all records at
the raw limit's rate, measured in the same run by ``bench_wire``'s raw loop on a one-shard
table of the same records) and the latency bound (every shard's pages one after another, all
shards in parallel). Per shard, the gap between a GetRecords that returned records and the
shard's next GetRecords (the simulator records every call).
(b) Trickle: a few changes per second per shard; per shard the interval between the starts of
successive GetRecords. RSS sampled throughout. Writes JSON and a PNG to bench-results/.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from dynabridge.streamsim.client import Poll, Stats
from tests.bench.bench_wire import trial_raw
from tests.bench.readpath import (
    Sampler,
    bridge_process,
    load_average,
    median,
    percentile,
    simulator,
    wait_until,
    write_results,
)
from tests.streamsim import StreamSimServer

RECORD_BYTES = 2048
PAGE_BYTES = 1_048_576
"""A GetRecords page stops at 1 MB of records (AWS's limit, the simulator's default)."""


def _polls_by_shard(stats: Stats) -> dict[str, list[Poll]]:
    return {
        shard: sorted(entry.polls, key=lambda poll: poll.started_s)
        for shard, entry in stats.shards.items()
    }


def poll_intervals(polls: dict[str, list[Poll]], since_s: float) -> list[float]:
    """Per shard: between the starts of successive GetRecords, from ``since_s`` on."""
    intervals = []
    for shard_polls in polls.values():
        starts = [poll.started_s for poll in shard_polls if poll.started_s >= since_s]
        intervals += [b - a for a, b in itertools.pairwise(starts)]
    return intervals


def raw_rate(sim: StreamSimServer, records: int) -> float:
    """The raw limit's records/s on a one-shard table of the backlog's records."""
    table = f"raw-{uuid.uuid4().hex[:8]}"
    sim.client.create_synthetic_table(
        table,
        shards=1,
        oracle=False,
        backlog={"records_per_shard": records, "record_bytes": RECORD_BYTES},
    )
    try:
        return float(trial_raw(sim, table, records)["records_per_s"])
    finally:
        sim.client.drop(table, missing_ok=True)


def trial_backlog(
    sim: StreamSimServer, shards: int, latency_ms: float, backlog: int, rate: float
) -> dict[str, Any]:
    table = f"drain-{uuid.uuid4().hex[:8]}"
    client = sim.client
    client.create_synthetic_table(
        table,
        shards=shards,
        oracle=False,
        get_records_latency_ms=latency_ms,
        backlog={"records_per_shard": backlog, "record_bytes": RECORD_BYTES},
    )
    total = shards * backlog
    try:
        client.reset_stats()
        with bridge_process(sim, table) as (process, _):
            sampler = Sampler(process)
            process.wait_ready(sampler.sample)
            done = wait_until(
                lambda: process.published() >= total,
                1800,
                f"{total} records drained",
                every_s=0.1,
                on_tick=sampler.sample,
            )
            stats = client.stats(table)
            polls = _polls_by_shard(stats)
            peak_rss_mb = process.peak_rss_mb()
    finally:
        client.drop(table, missing_ok=True)
    first = min(p.started_s for shard_polls in polls.values() for p in shard_polls)
    seconds = done - first
    pages_per_shard = math.ceil(backlog * RECORD_BYTES / PAGE_BYTES)
    latency_bound_s = pages_per_shard * latency_ms / 1000
    cpu_bound_s = total / rate
    ideal_s = max(cpu_bound_s, latency_bound_s)
    gaps = [gap for shard in stats.shards.values() for gap in shard.gaps_after_records_s()]
    cpu_s = sampler.cpu_at(done + 1) - sampler.cpu_at(first)
    return {
        "mode": "backlog",
        "shards": shards,
        "records": total,
        "drain_s": round(seconds, 2),
        "records_per_s": round(total / seconds),
        "ideal_s": round(ideal_s, 2),
        "cpu_bound_s": round(cpu_bound_s, 2),
        "latency_bound_s": round(latency_bound_s, 2),
        "ideal_ratio": round(ideal_s / seconds, 3),
        "cpu_us_per_record": round(cpu_s / total * 1e6, 1),
        "gap_after_records_s": {
            "p50": round(percentile(gaps, 50), 3),
            "p99": round(percentile(gaps, 99), 3),
            "max": round(max(gaps, default=0.0), 3),
            "count": len(gaps),
        },
        "get_records_calls": sum(len(p) for p in polls.values()),
        "max_rss_mb": round(sampler.max_rss_mb, 1),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "gaps_s": gaps,
    }


def trial_trickle(
    sim: StreamSimServer, shards: int, latency_ms: float, per_shard_s: float, seconds: float
) -> dict[str, Any]:
    table = f"trickle-{uuid.uuid4().hex[:8]}"
    client = sim.client
    client.create_synthetic_table(
        table,
        shards=shards,
        oracle=False,
        get_records_latency_ms=latency_ms,
        generator={
            "rate_per_s": per_shard_s * shards,
            "items": 100_000,
            "remove_share": 0.0,
            "item_bytes_min": 900,
            "item_bytes_max": 1100,
        },
    )
    try:
        with bridge_process(sim, table) as (process, _):
            sampler = Sampler(process)
            process.wait_ready(sampler.sample)
            # Measured from once every shard has been read (leases taken, readers started).
            wait_until(
                lambda: len(client.stats(table, polls=False).shards) >= shards,
                120,
                "every shard to be read",
                every_s=0.2,
                on_tick=sampler.sample,
            )
            since = time.time() + 2
            end = since + seconds
            wait_until(lambda: time.time() >= end, seconds + 60, "the trickle", 0.2, sampler.sample)
            polls = _polls_by_shard(client.stats(table))
            written = client.generator(table)["written"]
            published = process.published()
    finally:
        client.drop(table, missing_ok=True)
    intervals = poll_intervals(polls, since)
    calls = sum(1 for p in polls.values() for poll in p if poll.started_s >= since)
    return {
        "mode": "trickle",
        "shards": shards,
        "changes_per_s": per_shard_s * shards,
        "seconds": seconds,
        "written": written,
        "published": published,
        "poll_interval_s": {
            "p50": round(percentile(intervals, 50), 3),
            "p99": round(percentile(intervals, 99), 3),
            "max": round(max(intervals, default=0.0), 3),
            "count": len(intervals),
        },
        "get_records_per_s": round(calls / seconds, 1),
        "max_rss_mb": round(sampler.max_rss_mb, 1),
        "intervals_s": intervals,
    }


def plot(summary: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for trial in summary["trials"]:
        values = sorted(trial.get("gaps_s") or trial.get("intervals_s") or [])
        if not values:
            continue
        axis = left if trial["mode"] == "backlog" else right
        axis.plot(values, [i / len(values) for i in range(len(values))], alpha=0.7)
    left.axvline(0.5, color="red", linestyle="--", linewidth=1)
    left.set_title("backlog: gap after a page with records")
    left.set_xlabel("seconds")
    left.set_ylabel("fraction of gaps")
    right.axvline(0.3, color="red", linestyle="--", linewidth=1)
    right.set_title("trickle: interval between polls of a shard")
    right.set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=64)
    parser.add_argument("--latency-ms", type=float, default=40.0)
    parser.add_argument("--backlog", type=int, default=1000, help="records per shard")
    parser.add_argument("--trickle-per-shard", type=float, default=3.0, help="changes/s")
    parser.add_argument("--trickle-s", type=float, default=30.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--skip", choices=["backlog", "trickle"], action="append", default=[])
    args = parser.parse_args()
    load_before = load_average()
    trials: list[dict[str, Any]] = []
    with simulator() as sim:
        for _ in range(args.runs):
            if "backlog" not in args.skip:
                rate = raw_rate(sim, min(20_000, args.shards * args.backlog))
                trial = trial_backlog(sim, args.shards, args.latency_ms, args.backlog, rate)
                trial["raw_records_per_s"] = rate
                trial["load_average_1m"] = round(load_average()[0], 2)
                trials.append(trial)
                brief = {k: v for k, v in trial.items() if k != "gaps_s"}
                print(json.dumps(brief), file=sys.stderr)
            if "trickle" not in args.skip:
                trial = trial_trickle(
                    sim, args.shards, args.latency_ms, args.trickle_per_shard, args.trickle_s
                )
                trial["load_average_1m"] = round(load_average()[0], 2)
                trials.append(trial)
                brief = {k: v for k, v in trial.items() if k != "intervals_s"}
                print(json.dumps(brief), file=sys.stderr)

    def med(mode: str, *path: str) -> float:
        values = []
        for trial in trials:
            if trial["mode"] == mode:
                value: Any = trial
                for key in path:
                    value = value[key]
                values.append(value)
        return median(values)

    summary = {
        "benchmark": f"{args.shards} shards, GetRecords {args.latency_ms:g} ms",
        "backlog_per_shard": args.backlog,
        "drain_ideal_ratio": med("backlog", "ideal_ratio"),
        "drain_s": med("backlog", "drain_s"),
        "ideal_s": med("backlog", "ideal_s"),
        "gap_after_records_p99_s": med("backlog", "gap_after_records_s", "p99"),
        "trickle_poll_interval_p99_s": med("trickle", "poll_interval_s", "p99"),
        "max_rss_mb": max((t["max_rss_mb"] for t in trials), default=None),
        "load_average": {"before": load_before, "after": load_average()},
        "trials": trials,
    }
    path = write_results("shards", summary)
    plot(summary, path.with_suffix(".png"))
    print(json.dumps({k: v for k, v in summary.items() if k != "trials"}, indent=2))
    print(f"results: {path} and {path.with_suffix('.png')}", file=sys.stderr)


if __name__ == "__main__":
    main()
