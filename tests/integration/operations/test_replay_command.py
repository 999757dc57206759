"""`dynabridge replay` against real Kafka: refuses with a live member, moves offsets when the
group is empty, changes nothing on --dry-run, resolves a datetime by record timestamps."""

from __future__ import annotations

import datetime as dt
import json

from bridge.contract import ChangeEvent, EventName
from bridge.runtime.exits import ExitCode

from .ops_pipeline import Pipeline

T0_MS = 1_700_000_000_000
T1_MS = T0_MS + 60_000


def _event(pipeline: Pipeline, n: int) -> ChangeEvent:
    keys = {"pk": {"S": f"item-{n}"}, "sk": {"N": str(n)}}
    return ChangeEvent(
        table=pipeline.table,
        event_name=EventName.INSERT,
        event_id=f"e{n}",
        stream_arn="arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x",
        shard_id="shardId-1",
        sequence_number=str(100 + n),
        approximate_creation_time_ms=T0_MS,
        version=1_700_000_000_000_000 + n,
        keys=keys,
        new_image={**keys, "n": {"N": str(n)}},
        old_image=None,
    )


def _filled(pipeline: Pipeline) -> dict[int, int]:
    """Two partitions, 12 records: the first six at T0, the last six at T1; all committed."""
    pipeline.create_topic(2)
    events = [_event(pipeline, n) for n in range(12)]
    pipeline.publish(events, [T0_MS] * 6 + [T1_MS] * 6)
    ends: dict[int, int] = {}
    for partition, offset in pipeline.produced:
        ends[partition] = max(ends.get(partition, 0), offset + 1)
    pipeline.commit(ends)
    return ends


def test_dry_run_shows_moves_and_changes_nothing(pipeline: Pipeline) -> None:
    ends = _filled(pipeline)
    result = pipeline.run("replay", "--table", pipeline.table, "--to", "earliest", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would reset (dry run)" in result.stdout
    for partition, end in ends.items():
        assert f"{end:>12} -> {0:>12}" in result.stdout, (partition, result.stdout)
    assert pipeline.committed() == ends


def test_replay_refuses_a_live_member_then_works_when_the_group_is_empty(
    pipeline: Pipeline,
) -> None:
    ends = _filled(pipeline)
    member = pipeline.member()
    try:
        refused = pipeline.run("replay", "--table", pipeline.table, "--to", "earliest")
    finally:
        member.close()  # LeaveGroup: the group is empty at once
    assert refused.exit_code == ExitCode.REFUSED, refused.output
    assert "live member" in refused.stderr
    assert "session_timeout_ms" in refused.stderr
    assert pipeline.committed() == ends

    done = pipeline.run("replay", "--table", pipeline.table, "--to", "earliest", "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["applied"] is True
    assert report["records_to_reread"] == 12
    assert pipeline.committed() == dict.fromkeys(ends, 0)


def test_replay_to_a_datetime_uses_record_timestamps(pipeline: Pipeline) -> None:
    ends = _filled(pipeline)
    pipeline.commit(dict.fromkeys(ends, 0))
    first_at_t1: dict[int, int] = {}
    for index, (partition, offset) in enumerate(pipeline.produced):
        if index >= 6:
            first_at_t1[partition] = min(first_at_t1.get(partition, offset), offset)
    when = dt.datetime.fromtimestamp((T1_MS - 1) / 1000, dt.UTC).isoformat()
    result = pipeline.run("replay", "--table", pipeline.table, "--to", when)
    assert result.exit_code == 0, result.output
    expected = {p: first_at_t1.get(p, ends[p]) for p in ends}
    assert pipeline.committed() == expected
    assert sum(ends[p] - expected[p] for p in ends) == 6


def test_bad_target_and_missing_topic_fail_with_the_input_named(pipeline: Pipeline) -> None:
    naive = pipeline.run("replay", "--table", pipeline.table, "--to", "2024-05-01T12:00:00")
    assert naive.exit_code == 2
    assert "no timezone" in naive.stderr
    missing = pipeline.run("replay", "--table", pipeline.table, "--to", "latest")
    assert missing.exit_code == 3
    assert f"topic {pipeline.topic} does not exist" in missing.stderr
