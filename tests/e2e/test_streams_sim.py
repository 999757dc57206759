"""The bridge's run loop in a world like AWS's: simulated streams that rotate and split under
load, throttle, expire iterators, trim, and list shards late or not at all (the Streams
simulator, tests/streamsim.py), real Kafka, the lease table in moto behind the simulator, and
the bridge as subprocesses, SIGKILLed and restarted.

Each test checks its premise (the fault happened, per the simulator's counters), then
``stream_oracle.check``: every emitted change in Kafka (or a recorded, logged gap), per item in
stream order with strictly increasing versions, duplicates byte-identical, and no child record
appended before its parent's last.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml
from confluent_kafka import KafkaException  # noqa: TID251 - tests set up the real topics
from confluent_kafka.admin import AdminClient  # noqa: TID251
from confluent_kafka.cimpl import NewTopic  # noqa: TID251

from bridge.contract import MAX_RECORD_BYTES
from tests.e2e.conftest import FAILED
from tests.e2e.pipeline import Names, Pipeline, Process, Role, _deep_merge, base_config
from tests.e2e.stream_oracle import Report, TopicReader, check
from tests.polling import wait_for
from tests.streamsim import SimTable, SimTables

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

FAST_LEASES = {
    "lease_duration_s": 3.0,
    "lease_renew_interval_s": 0.75,
    "lease_take_interval_s": 1.0,
    "shard_sync_interval_s": 3.0,
    "get_records_limit": 1000,
}


class SimRun:
    """One test's bridges on simulated tables: config, LogAppendTime topics, processes, oracle."""

    def __init__(
        self,
        tables: SimTables,
        dynamodb: DynamoDBClient,
        kafka: str,
        unique_name: Callable[[str], str],
        workdir: Path,
    ) -> None:
        self.tables = tables
        self.sim = tables.sim
        self.dynamodb = dynamodb  # moto itself: the test's own look at the lease table
        self.kafka = kafka
        self.unique_name = unique_name
        self.workdir = workdir
        self.seed = int(os.environ.get("E2E_SEED") or random.SystemRandom().randrange(2**31))
        print(f"E2E_SEED={self.seed}")
        self.pipeline: Pipeline | None = None
        self._readers: dict[str, TopicReader] = {}

    @property
    def names(self) -> Names:
        assert self.pipeline is not None
        return self.pipeline.names

    def configure(self, tables: list[SimTable], **bridge: Any) -> Pipeline:
        names = Names(
            tables=tuple(table.name for table in tables),
            topic_prefix=self.unique_name("sim") + ".",
            lease_table=self.unique_name("sim-leases"),
            group=self.unique_name("sim-group"),
            index_prefix=self.unique_name("sim") + "-",
        )
        config = base_config(names, self.kafka, "http://127.0.0.1:9", self.tables.server.endpoint)
        config = _deep_merge(config, {"bridge": {**FAST_LEASES, **bridge}})
        self.pipeline = Pipeline(self.workdir, names, config)
        admin = AdminClient({"bootstrap.servers": self.kafka})
        topic_config = {
            "message.timestamp.type": "LogAppendTime",
            "max.message.bytes": str(MAX_RECORD_BYTES),
        }
        topics = [NewTopic(names.topic(t), 3, 1, config=topic_config) for t in names.tables]
        for future in admin.create_topics(topics).values():
            future.result(timeout=30)
        return self.pipeline

    def bridge(self) -> Process:
        assert self.pipeline is not None
        return self.pipeline.start(Role.BRIDGE)

    def published(self, table: SimTable) -> int:
        return len(self._reader(table).catch_up())

    def wait_all_published(self, table: SimTable, timeout_s: float) -> None:
        def done() -> bool:
            assert self.pipeline is not None
            self.pipeline.assert_alive()
            emitted = {(r.shard_id, r.sequence_number) for r in self.sim.records(table.name)}
            seen = {(r.shard_id, r.sequence_number) for r in self._reader(table).catch_up()}
            return emitted <= seen

        wait_for(done, timeout_s, f"every change of {table.name} in Kafka", every_s=0.5)

    def check(self, table: SimTable, excused: dict[str, list[str]] | None = None) -> Report:
        report = check(
            self.sim.records(table.name),
            self.sim.shards(table.name),
            self._reader(table).catch_up(),
            stream_arn=self.sim.table(table.name)["latest_stream_arn"],
            excused=excused or {},
        )
        print(
            f"{table.name}: {report.emitted} emitted, {report.published} published, "
            f"{report.duplicates} duplicates, {len(report.missing)} missing"
        )
        report.assert_clean()
        return report

    def leases(self) -> list[dict[str, Any]]:
        """The lease table's rows, read from moto itself ([] before a bridge created it)."""
        try:
            rows = self.dynamodb.scan(TableName=self.names.lease_table, ConsistentRead=True)
        except self.dynamodb.exceptions.ResourceNotFoundException:
            return []
        return [dict(row) for row in rows["Items"]]

    def errors(self) -> list[str]:
        """Every ERROR line the bridges logged."""
        assert self.pipeline is not None
        lines: list[str] = []
        for process in self.pipeline.started:
            text = process.log_path.read_text(errors="replace") if process.log_path.exists() else ""
            lines.extend(line for line in text.splitlines() if re.search(r"\bERROR\b", line))
        return lines

    def wait_written(self, table: SimTable, total: int, timeout_s: float) -> None:
        wait_for(
            lambda: self.sim.generator(table.name)["written"] >= total,
            timeout_s,
            f"the simulator to write {total} changes",
            every_s=0.5,
        )

    def state_report(self) -> str:
        """The simulator's shards and the lease rows, side by side (for a failed test)."""
        leases = {row["shard_id"]["S"]: row for row in self.leases()}
        lines = []
        for table in self.names.tables:
            for shard in self.sim.shards(table):
                row = leases.pop(shard.shard_id, None)
                lease = (
                    f"{row.get('lease_owner', {}).get('S')} {row['checkpoint']['S']}"
                    if row
                    else "-"
                )
                lines.append(
                    f"{shard.shard_id} parent={shard.parent_shard_id} open={shard.open} "
                    f"listed={shard.listed} gone={shard.gone} appended={shard.appended} "
                    f"lease={lease}"
                )
        lines.extend(f"lease of an unknown shard: {shard_id}" for shard_id in leases)
        return "\n".join(lines)

    def _reader(self, table: SimTable) -> TopicReader:
        reader = self._readers.get(table.name)
        if reader is None:
            reader = self._readers[table.name] = TopicReader(
                self.kafka, self.names.topic(table.name)
            )
        return reader

    def close(self, failed: bool) -> None:
        for reader in self._readers.values():
            reader.close()
        if self.pipeline is None:
            return
        self.pipeline.close()
        if failed:
            print(self.pipeline.log_report())
            print(self.state_report())
        admin = AdminClient({"bootstrap.servers": self.kafka})
        topics = [self.names.topic(t) for t in self.names.tables]
        for future in admin.delete_topics(topics).values():
            with contextlib.suppress(KafkaException):
                future.result(timeout=30)
        with contextlib.suppress(self.dynamodb.exceptions.ResourceNotFoundException):
            self.dynamodb.delete_table(TableName=self.names.lease_table)


@pytest.fixture
def run(
    request: pytest.FixtureRequest,
    sim_tables: SimTables,
    dynamodb: DynamoDBClient,
    kafka_bootstrap: str,
    unique_name: Callable[[str], str],
    workdir: Path,
) -> Iterator[SimRun]:
    sim_run = SimRun(sim_tables, dynamodb, kafka_bootstrap, unique_name, workdir)
    yield sim_run
    sim_run.close(request.node.stash.get(FAILED, False))


def throttled(run: SimRun, table: SimTable) -> int:
    stats = run.sim.stats(table.name, polls=False)
    return sum(shard.throttled for shard in stats.shards.values())


def test_rotations_and_splits_under_load_survive_sigkill_and_restart(run: SimRun) -> None:
    table = run.tables.synthetic_table(
        "rot", shards=3, rotate_every_records=60, split_rate=0.3, max_open_shards=8,
        throttle_rate=0.1, get_records_latency_ms=5, get_records_jitter_ms=20,
    )  # fmt: skip
    run.configure([table])
    total = 3000
    run.sim.generate(table.name, rate_per_s=150, total=total, items=300, seed=run.seed)
    first = run.bridge()
    wait_for(lambda: run.published(table) >= 600, 120, "600 changes published")
    first.kill()
    run.bridge()
    run.wait_written(table, total, 60)
    run.wait_all_published(table, 240)
    report = run.check(table)
    shards = run.sim.shards(table.name)
    assert sum(1 for s in shards if s.parent_shard_id) >= 30, "rotations and splits happened"
    assert len({s.parent_shard_id for s in shards if s.parent_shard_id}) < sum(
        1 for s in shards if s.parent_shard_id
    ), "some parent split into two children"
    assert throttled(run, table) > 0, "GetRecords was throttled"
    assert report.duplicates > 0, "the SIGKILL made the restart re-read some records"
    assert run.errors() == []


def test_three_workers_one_killed_with_a_throttled_lease_table_and_stale_listings(
    run: SimRun,
) -> None:
    table = run.tables.synthetic_table(
        "multi", shards=6, rotate_every_records=80, split_rate=0.25, max_open_shards=10,
        omit_shard_rate=0.25, listing_lag_s=1.0, throttle_rate=0.05,
    )  # fmt: skip
    pipeline = run.configure([table])
    total = 3000
    run.sim.generate(table.name, rate_per_s=200, total=total, items=400, seed=run.seed)
    workers = [run.bridge() for _ in range(3)]
    wait_for(lambda: len(run.leases()) >= 6, 60, "the shards leased")
    run.sim.throttle_tables(pipeline.names.lease_table, 0.2)
    try:
        wait_for(lambda: run.published(table) >= 1000, 120, "1000 changes published")
        wait_for(
            lambda: (
                {"bridge-1", "bridge-2", "bridge-3"}
                <= {row.get("lease_owner", {}).get("S") for row in run.leases()}
            ),
            60,
            "the three workers sharing the shards",
        )
        workers[1].kill()
        run.wait_written(table, total, 60)
        run.wait_all_published(table, 240)
        errors = run.sim.stats(polls=False).errors
    finally:
        run.sim.clear_throttling()
    run.check(table)
    throttled_writes = sum(n for call, n in errors.items() if "ProvisionedThroughput" in call)
    assert throttled_writes > 0, f"the lease table was throttled: {errors}"
    assert throttled(run, table) > 0
    owners = {row.get("lease_owner", {}).get("S") for row in run.leases()}
    assert "bridge-2" not in owners - {None} or all(
        row["checkpoint"]["S"] == "SHARD_END"
        for row in run.leases()
        if row.get("lease_owner", {}).get("S") == "bridge-2"
    ), "the killed worker's unfinished shards were taken over"
    assert run.errors() == []


def test_trimmed_parents_and_expired_iterators(run: SimRun) -> None:
    """A parent trimmed before the bridge ever ran: its child is a lineage root, silently (the
    records were gone before the first start). A parent trimmed while its lease was unfinished
    (the bridge was down): a recorded gap and an ERROR, then its child is read. Idle polls
    slower than the iterators' lifetime: every expired iterator re-acquired, nothing lost."""
    table = run.tables.synthetic_table("trim", shards=2, iterator_ttl_s=1.0)
    run.configure([table], trimmed_policy="skip", idle_poll_min_s=0.5, idle_poll_max_s=2.0)
    a, b = (shard.shard_id for shard in run.sim.shards(table.name))

    def write(count: int) -> None:
        """``count`` more changes (each call a new generator: its counter starts at 0)."""
        run.sim.generate(table.name, rate_per_s=400, total=count, items=200, seed=run.seed)
        run.wait_written(table, count, 30)
        wait_for(lambda: not run.sim.generator(table.name)["running"], 10, "the generator done")

    write(200)
    run.sim.rotate(table.name, a)
    run.sim.trim(table.name, shard_id=a)  # gone before the first start
    first = run.bridge()
    write(100)
    gone_a = {r.sequence_number for r in run.sim.records(table.name) if r.shard_id == a}

    def published_but(shards: set[str]) -> bool:
        emitted = {(r.shard_id, r.sequence_number) for r in run.sim.records(table.name)}
        seen = {(r.shard_id, r.sequence_number) for r in run._reader(table).catch_up()}
        return {p for p in emitted if p[0] not in shards} <= seen

    wait_for(lambda: published_but({a}), 120, "every change but the trimmed shard's")
    first.kill()
    write(100)  # b now has records no bridge read
    run.sim.rotate(table.name, b)
    run.sim.trim(table.name, shard_id=b)
    write(100)
    run.bridge()
    wait_for(lambda: published_but({a, b}), 180, "the children of both trimmed parents read")

    rows = {row["shard_id"]["S"]: row for row in run.leases()}
    assert a not in rows, "a shard trimmed before the first start is never leased"
    gaps = [gap["S"] for gap in rows[b].get("gaps", {}).get("L", [])]
    assert len(gaps) == 1, gaps
    assert b in gaps[0]
    errors = run.errors()
    assert any(b in line for line in errors), errors
    assert all(b in line for line in errors), f"only b's gap is an error: {errors}"
    published = {r.sequence_number for r in run._reader(table).catch_up() if r.shard_id == b}
    lost_b = {r.sequence_number for r in run.sim.records(table.name) if r.shard_id == b}
    lost_b -= published
    assert lost_b, "the premise: b had unread records when it was trimmed"
    assert max(map(int, published)) < min(map(int, lost_b)), "the gap is b's tail"
    run.check(table, excused={a: sorted(gone_a), b: sorted(lost_b)})
    expired = run.sim.stats(polls=False).errors.get("GetRecords:ExpiredIteratorException", 0)
    assert expired > 0, "iterators expired between idle polls"


def test_a_checkpoint_of_an_older_stream_is_never_skipped_silently(run: SimRun) -> None:
    """The table's stream disabled and enabled again (a new ARN) while a bridge was down with an
    unfinished lease: under ``fail`` the bridge refuses to start, naming the older stream;
    under ``skip`` it records the gap in the older lease and reads the new stream."""
    table = run.tables.synthetic_table("restream", shards=1)
    pipeline = run.configure([table])

    def write(count: int) -> None:
        run.sim.generate(table.name, rate_per_s=400, total=count, items=100, seed=run.seed)
        run.wait_written(table, count, 30)
        wait_for(lambda: not run.sim.generator(table.name)["running"], 10, "the generator done")

    old_arn = run.sim.table(table.name)["latest_stream_arn"]
    write(100)
    first = run.bridge()
    run.wait_all_published(table, 120)
    first.kill()
    write(50)  # read by nobody: the older stream's tail
    run.sim.disable_stream(table.name)
    new_arn = run.sim.enable_stream(table.name)["latest_stream_arn"]
    assert new_arn != old_arn
    write(100)

    refused = run.bridge()
    wait_for(lambda: not refused.running, 120, "the bridge to refuse the older stream's lease")
    pipeline.started.remove(refused)  # its exit is the expected outcome, not a crash
    assert refused.returncode == 1
    log = refused.log_path.read_text(errors="replace")
    assert re.search(r"ERROR .*unusable checkpoint.*older stream", log), log[-2000:]
    assert "trimmed_policy=skip" in log

    pipeline.config["bridge"]["trimmed_policy"] = "skip"
    pipeline.config_path.write_text(yaml.safe_dump(pipeline.config, sort_keys=False))
    run.bridge()
    run.wait_all_published(table, 120)  # the table's current (new) stream
    report = run.check(table)
    assert report.emitted == 100
    old_rows = [row for row in run.leases() if row["stream_arn"]["S"] == old_arn]
    assert [row["checkpoint"]["S"] for row in old_rows] == ["SHARD_END"]
    gaps = [gap["S"] for gap in old_rows[0]["gaps"]["L"]]
    assert len(gaps) == 1
    assert old_arn in gaps[0]
    assert new_arn in gaps[0]
    old = check(
        run.sim.records(table.name, old_arn),
        run.sim.shards(table.name, old_arn),
        run._reader(table).catch_up(),
        stream_arn=old_arn,
        excused={
            old_rows[0]["shard_id"]["S"]: [
                r.sequence_number for r in run.sim.records(table.name, old_arn)
            ]
        },
    )
    assert old.emitted == 150
    assert old.published == 100, "the older stream's records before the kill, not its tail"
