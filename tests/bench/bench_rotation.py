"""Child pickup after a parent's SHARD_END, and failover after a SIGKILL, of the bridge on
simulated streams (the Streams simulator in front of the local stack's moto, real Kafka).

    python -m tests.bench.bench_rotation [--runs 3] [--rotations 24] [--failovers 3]

Child pickup: one bridge with the product's timings reads a synthetic table whose shards
rotate every ``--records-per-shard`` records under ``--rate`` changes/s. For every parent whose
child the bridge read, from the simulator's log of GetRecords calls: the delay from the bridge's
last GetRecords of the parent (the page that ended it) to its first GetRecords of the child,
and from the moment the parent closed. p50/p99 per run.

Failover: two bridges with the product's lease timings share a synthetic table; one is
SIGKILLed; for each shard it held, the time from the kill to the first GetRecords of that shard
(by the survivor); a trial's figure is the slowest of its shards.

Prints one JSON document (every run, and the medians over runs); ``--out`` writes it too.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3  # noqa: TID251 - the benchmark reads the lease table itself
from confluent_kafka.admin import AdminClient  # noqa: TID251 - and removes its topics

from bridge.runtime.settings import BridgeSettings
from dynabridge.devstack.config import load
from tests.e2e.pipeline import Names, Pipeline, Role, _deep_merge, base_config
from tests.polling import wait_for
from tests.streamsim import CREDENTIALS, REGION, StreamSimServer, start_server

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_DEFAULTS = BridgeSettings(tables=["any"])
PRODUCT_TIMINGS = {
    key: getattr(_DEFAULTS, key)
    for key in (
        "lease_duration_s", "lease_renew_interval_s", "lease_take_interval_s",
        "shard_sync_interval_s", "idle_poll_min_s", "idle_poll_max_s", "get_records_limit",
    )
}  # fmt: skip
"""The bridge's defaults (bridge/runtime/settings.py): the benchmark measures the product."""


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


class Bench:
    def __init__(self, sim: StreamSimServer, kafka: str, moto: str, work: Path) -> None:
        self.sim = sim
        self.kafka = kafka
        self.moto: DynamoDBClient = boto3.client(
            "dynamodb",
            endpoint_url=moto,
            region_name=REGION,
            aws_access_key_id=CREDENTIALS["aws_access_key_id"],
            aws_secret_access_key=CREDENTIALS["aws_secret_access_key"],
        )
        self.work = work

    def pipeline(self, table: str, label: str) -> Pipeline:
        tag = uuid.uuid4().hex[:8]
        names = Names(
            tables=(table,),
            topic_prefix=f"bench-{label}-{tag}.",
            lease_table=f"bench-{label}-leases-{tag}",
            group=f"bench-{tag}",
            index_prefix=f"bench-{tag}-",
        )
        config = base_config(names, self.kafka, "http://127.0.0.1:9", self.sim.endpoint)
        config = _deep_merge(config, {"bridge": PRODUCT_TIMINGS, "logging": {"level": "INFO"}})
        workdir = self.work / f"{label}-{tag}"
        workdir.mkdir()
        return Pipeline(workdir, names, config)

    def owners(self, pipeline: Pipeline) -> dict[str, str]:
        """Unfinished shards by owner (read from moto itself)."""
        try:
            rows = self.moto.scan(TableName=pipeline.names.lease_table, ConsistentRead=True)
        except self.moto.exceptions.ResourceNotFoundException:
            return {}
        return {
            row["shard_id"]["S"]: row["lease_owner"]["S"]
            for row in rows["Items"]
            if "lease_owner" in row and row["checkpoint"]["S"] != "SHARD_END"
        }

    def cleanup(self, pipeline: Pipeline, table: str) -> None:
        pipeline.close()
        self.sim.client.drop(table, missing_ok=True)
        with contextlib.suppress(self.moto.exceptions.ResourceNotFoundException):
            self.moto.delete_table(TableName=pipeline.names.lease_table)
        admin = AdminClient({"bootstrap.servers": self.kafka})
        for future in admin.delete_topics([pipeline.names.topic(table)]).values():
            with contextlib.suppress(Exception):
                future.result(timeout=30)

    def pickup(self, rotations: int, rate: float, records_per_shard: int) -> dict[str, Any]:
        client = self.sim.client
        table = f"bench-rot-{uuid.uuid4().hex[:8]}"
        client.create_synthetic_table(
            table, region=REGION, shards=2, rotate_every_records=records_per_shard
        )
        pipeline = self.pipeline(table, "pickup")
        try:
            pipeline.start(Role.BRIDGE)
            wait_for(lambda: client.stats(table).shards, 60, "the bridge reading", every_s=0.5)
            client.generate(table, rate_per_s=rate, items=500, seed=1)

            def enough() -> bool:
                pipeline.assert_alive()
                return len(self._pickups(table)) >= rotations

            wait_for(enough, 60 + 3 * rotations * records_per_shard / rate, "rotations read")
            client.stop_generator(table)
            pickups = self._pickups(table)
            errors = client.stats(table, polls=False).errors
        finally:
            self.cleanup(pipeline, table)
        after_end = [p["after_parent_end_s"] for p in pickups]
        after_close = [p["after_close_s"] for p in pickups]
        return {
            "rotations": len(pickups),
            "after_parent_end_p50_s": percentile(after_end, 0.5),
            "after_parent_end_p99_s": percentile(after_end, 0.99),
            "after_parent_end_max_s": max(after_end),
            "after_close_p50_s": percentile(after_close, 0.5),
            "after_close_p99_s": percentile(after_close, 0.99),
            "simulator_errors": errors,
        }

    def _pickups(self, table: str) -> list[dict[str, float]]:
        shards = self.sim.client.shards(table)
        polls = self.sim.client.stats(table).shards
        found = []
        for child in shards:
            parent = next((s for s in shards if s.shard_id == child.parent_shard_id), None)
            if parent is None or parent.closed_s is None:
                continue
            parent_polls, child_polls = polls.get(parent.shard_id), polls.get(child.shard_id)
            if not parent_polls or not child_polls or not child_polls.polls:
                continue
            last_parent = max(poll.ended_s for poll in parent_polls.polls)
            first_child = min(poll.started_s for poll in child_polls.polls)
            found.append(
                {
                    "after_parent_end_s": first_child - last_parent,
                    "after_close_s": first_child - parent.closed_s,
                }
            )
        return found

    def failover(self) -> float:
        client = self.sim.client
        table = f"bench-fail-{uuid.uuid4().hex[:8]}"
        client.create_synthetic_table(table, region=REGION, shards=4)
        pipeline = self.pipeline(table, "failover")
        try:
            victim = pipeline.start(Role.BRIDGE)
            pipeline.start(Role.BRIDGE)
            client.generate(table, rate_per_s=20, items=200, seed=2)

            def shared() -> bool:
                pipeline.assert_alive()
                owners = self.owners(pipeline)
                return len(owners) == 4 and set(owners.values()) == {"bridge-1", "bridge-2"}

            wait_for(shared, 120, "both bridges holding leases", every_s=0.5)
            held = [shard for shard, owner in self.owners(pipeline).items() if owner == "bridge-1"]
            killed_at = time.time()
            victim.kill()

            def first_reads() -> dict[str, float]:
                polls = client.stats(table).shards
                return {
                    shard: min(starts)
                    for shard in held
                    if shard in polls
                    and (
                        starts := [
                            p.started_s for p in polls[shard].polls if p.started_s > killed_at
                        ]
                    )
                }

            wait_for(
                lambda: len(first_reads()) == len(held),
                60,
                "the survivor reading every shard of the killed one",
            )
            return max(first_reads().values()) - killed_at
        finally:
            self.cleanup(pipeline, table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rotations", type=int, default=24)
    parser.add_argument("--rate", type=float, default=100.0, help="changes per second")
    parser.add_argument("--records-per-shard", type=int, default=100)
    parser.add_argument("--failovers", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    stack = load(os.environ)
    sim = start_server(stack.moto_endpoint)
    work = Path(tempfile.mkdtemp(prefix="bench-rotation-"))
    bench = Bench(sim, stack.kafka_bootstrap, stack.moto_endpoint, work)
    try:
        load_before = os.getloadavg()
        pickups = [
            bench.pickup(args.rotations, args.rate, args.records_per_shard)
            for _ in range(args.runs)
        ]
        failovers = [bench.failover() for _ in range(args.failovers)]
        load_after = os.getloadavg()
    finally:
        sim.stop()
    result = {
        "bridge": PRODUCT_TIMINGS,
        "pickup_runs": pickups,
        "pickup_median": {
            key: statistics.median(run[key] for run in pickups)
            for key in pickups[0]
            if key not in ("rotations", "simulator_errors")
        },
        "failover_s": failovers,
        "failover_median_s": statistics.median(failovers) if failovers else None,
        "failover_goal_s": PRODUCT_TIMINGS["lease_duration_s"] + 2,
        "load_average": {"before": load_before, "after": load_after},
        "logs": str(work),
    }
    text = json.dumps(result, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
