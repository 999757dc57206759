"""`dynabridge status`: leases (owner, checkpoint, renewing), time to trim, lag per partition,
and the indexer group's members, from moto's lease table and real Kafka."""

from __future__ import annotations

import json
import threading

from .ops_pipeline import Pipeline


def test_status_shows_leases_renewals_trim_and_lag(pipeline: Pipeline) -> None:
    pipeline.create_topic(2)
    for n in range(4):
        pipeline.put({"pk": {"S": f"k{n}"}, "sk": {"N": str(n)}})
    events = pipeline.stream_events()
    pipeline.publish(events)
    lease = pipeline.lease(events[1].sequence_number, owner="worker-a")
    ends: dict[int, int] = {}
    for partition, offset in pipeline.produced:
        ends[partition] = max(ends.get(partition, 0), offset + 1)
    committed = {p: end - 1 for p, end in ends.items()}  # one record of lag per partition
    pipeline.commit(committed)

    # The worker renews every 0.3 s, as a live bridge does, while status runs.
    stop = threading.Event()

    def renew_until_stopped() -> None:
        held = lease
        while not stop.wait(0.3):
            held = pipeline.renew(held)

    renewer = threading.Thread(target=renew_until_stopped)
    renewer.start()
    try:
        result = pipeline.run("status", "--json", "--interval", "1.0")
    finally:
        stop.set()
        renewer.join()
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["bridge_workers"] == {"worker-a": True}
    (table,) = report["tables"]
    assert table["stream_arn"] == lease.stream_arn
    (shard,) = table["shards"]
    assert shard["owner"] == "worker-a"
    assert shard["checkpoint"] == events[1].sequence_number
    assert shard["renewing"] is True
    # The oldest unread record is events[2], written seconds ago: nearly 24 h left.
    assert 0 <= shard["unread_age_s"] < 120
    assert 24 * 3600 - 120 < shard["trim_in_s"] <= 24 * 3600
    lags = {p["partition"]: (p["committed"], p["end"], p["lag"]) for p in table["partitions"]}
    assert lags == {p: (committed[p], ends[p], 1) for p in ends} | {
        p: (None, 0, 0) for p in range(2) if p not in ends
    }
    assert table["lag"] == len(ends)
    assert report["indexer_group"]["members"] == []
    # The record each partition has still to read was written just now: seconds old.
    lagging = [p for p in table["partitions"] if p["lag"]]
    assert lagging
    assert all(0 <= p["lag_s"] < 120 for p in lagging), lagging
    assert all(p["produced_per_s"] == 0 for p in table["partitions"])  # nothing arrived meanwhile
    bridge, indexer = report["scaling"]["bridge"], report["scaling"]["indexer"]
    assert (bridge["desired"], bridge["workers_alive"], bridge["open_shards"]) == (1, 1, 1)
    assert bridge["leases_per_worker"] == {"worker-a": 1}
    assert indexer["desired"] == 1
    assert indexer["lag_records"] == len(ends)

    text = pipeline.run("status", "--interval", "0")
    assert text.exit_code == 0, text.output
    assert "worker-a" in text.stdout
    assert f"topic {pipeline.topic}: total lag {len(ends)}" in text.stdout
    assert "bridge: desired 1 worker(s)" in text.stdout
    assert "indexer: desired 1 consumer(s)" in text.stdout


def test_status_reports_a_stalled_worker_and_group_members(pipeline: Pipeline) -> None:
    pipeline.create_topic(1)
    pipeline.put({"pk": {"S": "a"}, "sk": {"N": "1"}})
    pipeline.lease("TRIM_HORIZON", owner="worker-dead")
    member = pipeline.member()
    try:
        result = pipeline.run("status", "--json", "--interval", "0.5")
    finally:
        member.close()
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["bridge_workers"] == {"worker-dead": False}
    assert report["indexer_group"]["state"] == "STABLE"
    (member_info,) = report["indexer_group"]["members"]
    assert member_info["partitions"] == [f"{pipeline.topic}[0]"]
    (shard,) = report["tables"][0]["shards"]
    assert shard["renewing"] is False
    assert shard["unread_age_s"] is not None  # TRIM_HORIZON: the first record is unread


def test_status_shows_backfills_from_the_lease_table(pipeline: Pipeline) -> None:
    import time

    from bridge.backfill.plan import SegmentProgress
    from bridge.backfill.progress import ProgressTable, RunRecord, RunState

    pipeline.put({"pk": {"S": "k"}, "sk": {"N": "1"}})
    pipeline.lease(pipeline.stream_events()[0].sequence_number)  # creates the lease table
    progress = ProgressTable(pipeline.dynamodb, pipeline.lease_table, time.time)
    now = time.time()
    run = RunRecord(
        table=pipeline.table,
        run_id="run-1",
        owner="host-1",
        counter=3,
        state=RunState.RUNNING,
        scan_start_s=int(now) - 5,
        total_segments=2,
        item_count_estimate=100,
        started_at=now - 5,
        updated_at=now,
    )
    assert progress.create_run(run)
    done = SegmentProgress(pipeline.table, 0, 2, start_key=None, done=True, items=40)
    progress.adopt_segment(done, run.run_id)

    result = pipeline.run("status", "--json", "--interval", "0")
    (backfill,) = json.loads(result.stdout)["backfills"]
    assert backfill["table"] == pipeline.table
    assert backfill["state"] == "running"
    assert (backfill["segments_done"], backfill["segments"]) == (1, 2)
    assert backfill["items"] == 40

    text = pipeline.run("status", "--interval", "0")
    assert f"backfill {pipeline.table}: running, 1/2 segments, 40 of ~100 items" in text.stdout
