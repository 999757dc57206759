"""Checkpoint sanity: a checkpoint outside its shard's range, or of an older stream of the
table, is reported and handled by trimmed_policy, never resumed from or skipped silently."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bridge.checkpoints import Remedy, UnusableCheckpointError, out_of_range, repaired, unusable
from bridge.leases import SHARD_END, TRIM_HORIZON, Lease, new_lease
from bridge.runtime.settings import TrimmedPolicy
from bridge.shards import Shard
from tests.unit.bridge.fakes import (
    ARN,
    SETTINGS,
    Clock,
    MemoryStore,
    Streams,
    closed,
    coordinator,
    open_shard,
    readable_ids,
)

OLD_ARN = "arn:aws:dynamodb:us-east-1:1:table/t/stream/older"
SKIP = SETTINGS.model_copy(update={"trimmed_policy": TrimmedPolicy.SKIP})


def held(shard_id: str, checkpoint: str, version: int = 0, arn: str = ARN) -> Lease:
    lease = new_lease("t", arn, shard_id, (), TRIM_HORIZON, owner="w1")
    return replace(lease, checkpoint=checkpoint, last_version=version)


def test_out_of_range_compares_with_the_listed_sequence_range() -> None:
    shard = Shard("a", None, "100", "900")
    assert out_of_range(held("a", "100"), shard) is None
    assert out_of_range(held("a", "900"), shard) is None
    assert "before" in (out_of_range(held("a", "99"), shard) or "")
    assert "after" in (out_of_range(held("a", "901"), shard) or "")
    assert out_of_range(held("a", "9" * 30), Shard("a", None, "100", None)) is None  # open
    assert out_of_range(held("a", TRIM_HORIZON), shard) is None
    assert out_of_range(held("a", "1"), None) is None  # unlisted: nothing to compare with


def test_unusable_finds_bad_ranges_and_unfinished_leases_of_older_streams() -> None:
    bad, fine = held("a", "50"), held("b", "150")
    older = held("x", "700", arn=OLD_ARN)
    finished_older = held("y", SHARD_END, arn=OLD_ARN)
    shards = {bad.lease_key: open_shard("a"), fine.lease_key: open_shard("b")}
    found = unusable([bad, fine], shards, [older, finished_older], {"t": ARN})
    assert [(p.lease.shard_id, p.remedy) for p in found] == [
        ("a", Remedy.RESTART),
        ("x", Remedy.FINISH),
    ]
    assert OLD_ARN in found[1].gap
    assert ARN in found[1].gap


def test_repaired_keeps_the_version_and_records_the_gap() -> None:
    problem = unusable([held("a", "50", version=77)], {f"{ARN}#a": open_shard("a")}, [], {})[0]
    row = repaired(problem)
    assert (row.checkpoint, row.last_version, row.counter) == (TRIM_HORIZON, 77, 1)
    assert row.gaps == (problem.gap,)


def test_a_checkpoint_outside_its_shard_stops_the_process_under_fail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store, clock, gaps = MemoryStore(), Clock(), list[str]()
    bad = replace(held("a", "42", version=5), owner=None)
    store.rows[bad.lease_key] = bad
    coord = coordinator(store, Streams(open_shard("a")), clock, on_gap=gaps.append)
    coord.start()
    with pytest.raises(UnusableCheckpointError, match=r"checkpoint 42 is before.*trimmed_policy"):
        coord.tick()  # the take round takes it, then finds the checkpoint unusable
    assert readable_ids(coord) == [], "never read from a checkpoint of another shard"
    assert gaps == ["t"]
    assert any(r.levelname == "ERROR" and "checkpoint 42" in r.getMessage() for r in caplog.records)
    assert store.rows[bad.lease_key].checkpoint == "42"


def test_a_checkpoint_after_a_closed_shards_end_restarts_the_shard_under_skip() -> None:
    store, clock, gaps = MemoryStore(), Clock(), list[str]()
    bad = replace(held("a", "950", version=5), owner=None)
    store.rows[bad.lease_key] = bad
    coord = coordinator(
        store, Streams(closed(open_shard("a"))), clock, settings=SKIP, on_gap=gaps.append
    )
    coord.start()
    coord.tick()
    row = store.rows[bad.lease_key]
    assert (row.checkpoint, row.last_version, row.owner) == (TRIM_HORIZON, 5, "w1")
    assert len(row.gaps) == 1
    assert "950" in row.gaps[0]
    assert gaps == ["t"]
    assert [(lease.shard_id, lease.checkpoint) for lease in coord.readable()] == [
        ("a", TRIM_HORIZON)
    ]


def test_an_unfinished_lease_of_an_older_stream_refuses_the_start_under_fail() -> None:
    store, clock, gaps = MemoryStore(), Clock(), list[str]()
    older = held("x", "700", arn=OLD_ARN)
    store.rows[older.lease_key] = older
    coord = coordinator(store, Streams(open_shard("a")), clock, on_gap=gaps.append)
    with pytest.raises(UnusableCheckpointError, match="older stream"):
        coord.start()
    assert gaps == ["t"]


def test_an_unfinished_lease_of_an_older_stream_is_finished_with_its_gap_under_skip() -> None:
    store, clock, gaps = MemoryStore(), Clock(), list[str]()
    older = held("x", "700", arn=OLD_ARN)
    other_table = replace(held("z", "5", arn=OLD_ARN), table="another", lease_key="other#z")
    store.rows.update({older.lease_key: older, other_table.lease_key: other_table})
    coord = coordinator(store, Streams(open_shard("a")), clock, settings=SKIP, on_gap=gaps.append)
    coord.start()
    coord.tick()
    assert store.rows[older.lease_key].checkpoint == SHARD_END
    assert len(store.rows[older.lease_key].gaps) == 1
    assert store.rows[other_table.lease_key] == other_table, "another table's rows: not ours"
    clock.now += 10
    coord.tick()
    assert gaps == ["t"], "reported once"
    assert readable_ids(coord) == ["a"]
