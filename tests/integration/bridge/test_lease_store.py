"""The DynamoDB lease table and two coordinators against real moto (small, real-clock timings)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import pytest

from bridge.coordinator import LeaseCoordinator
from bridge.discovery import StreamDiscovery
from bridge.lease_store import DynamoLeaseStore
from bridge.leases import (
    SHARD_END,
    TRIM_HORIZON,
    LeaseTableError,
    checkpointed,
    new_lease,
    released,
    renewed,
    taken,
    with_gap,
)
from bridge.runtime.settings import BridgeSettings

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient

FAST = BridgeSettings(
    lease_duration_s=1.0,
    lease_renew_interval_s=0.3,
    lease_take_interval_s=0.3,
    shard_sync_interval_s=1.0,
)


def make_table(dynamodb: DynamoDBClient, name: str) -> None:
    dynamodb.create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


def test_rows_round_trip_and_every_write_is_conditional(
    dynamodb: DynamoDBClient, unique_name: Callable[[str], str]
) -> None:
    store = DynamoLeaseStore(dynamodb, unique_name("leases"))
    store.ensure_table()
    store.ensure_table()  # idempotent
    lease = new_lease("orders", "arn:s", "shardId-1", ("shardId-0",), TRIM_HORIZON)
    assert store.create(lease)
    assert not store.create(lease)

    mine = taken(lease, "w1")
    assert store.replace(lease, mine)
    assert not store.replace(lease, taken(lease, "w2"))  # stale counter and owner
    assert not store.replace(released(mine), renewed(released(mine)))  # wrong owner
    done = checkpointed(with_gap(mine, "trimmed before 17"), SHARD_END, 2**70)
    assert store.replace(mine, done)
    assert store.leases() == [done]  # 2**70: versions wider than 64 bits survive

    assert not store.delete(mine)  # stale counter
    assert store.delete(done)
    assert store.leases() == []


def test_backfill_progress_rows_in_the_lease_table_are_not_leases(
    dynamodb: DynamoDBClient, unique_name: Callable[[str], str]
) -> None:
    table = unique_name("leases")
    store = DynamoLeaseStore(dynamodb, table)
    store.ensure_table()
    lease = new_lease("orders", "arn:s", "shardId-1", (), TRIM_HORIZON)
    assert store.create(lease)
    # A progress row shaped nothing like a lease (bridge/backfill/progress.py writes these).
    dynamodb.put_item(
        TableName=table,
        Item={"lease_key": {"S": "backfill#orders#0"}, "segment": {"N": "0"}},
    )
    assert store.leases() == [lease]


def test_a_foreign_table_is_refused_with_the_key_to_change(
    dynamodb: DynamoDBClient, unique_name: Callable[[str], str]
) -> None:
    name = unique_name("notleases")
    make_table(dynamodb, name)
    with pytest.raises(LeaseTableError, match=r"bridge\.lease_table"):
        DynamoLeaseStore(dynamodb, name).ensure_table()


def test_two_coordinators_share_shards_and_one_takes_over_when_the_other_stops(
    dynamodb: DynamoDBClient,
    dynamodbstreams: DynamoDBStreamsClient,
    unique_name: Callable[[str], str],
) -> None:
    tables = [unique_name("orders") for _ in range(4)]  # moto: one shard per table
    for table in tables:
        make_table(dynamodb, table)
    lease_table = unique_name("leases")

    def coordinator(worker: str) -> LeaseCoordinator:
        return LeaseCoordinator(
            DynamoLeaseStore(dynamodb, lease_table),
            StreamDiscovery(dynamodb, dynamodbstreams),
            worker_id=worker,
            tables=tables,
            settings=FAST,
        )

    one, two = coordinator("w1"), coordinator("w2")
    one.start()
    two.start()
    deadline = time.monotonic() + 15
    while not (len(one.readable()) == 2 and len(two.readable()) == 2):
        assert time.monotonic() < deadline, "the two workers never split the four shards"
        one.tick()
        two.tick()
        time.sleep(0.02)

    one.lost()  # w2's steals during the split
    dying_lease = one.readable()[0]
    dying = dying_lease.lease_key
    # A position inside the shard (checkpoints outside its sequence range are refused).
    (shard,) = dynamodbstreams.describe_stream(StreamArn=dying_lease.stream_arn)[
        "StreamDescription"
    ]["Shards"]
    position = str(int(shard["SequenceNumberRange"]["StartingSequenceNumber"]) + 1)
    assert one.checkpoint(dying, position, 7)
    stopped = time.monotonic()  # w1 "dies": it is never ticked again
    while len(two.readable()) < 4:
        assert time.monotonic() - stopped < 10, "w2 never took the dead worker's leases"
        two.tick()
        time.sleep(0.02)
    takeover_s = time.monotonic() - stopped
    print(f"takeover after {takeover_s:.2f} s")
    # The bound is lease_duration_s + one take interval, plus the take round's own calls (a
    # Scan, a listing, a conditional write per lease): 1.1-1.3 s on a quiet machine, 2.4 s
    # measured at load average 5-8, when each moto round trip takes a few hundred ms.
    assert takeover_s <= FAST.lease_duration_s + FAST.lease_take_interval_s + 1.5
    assert {lease.owner for lease in two.leases()} == {"w2"}
    assert position in {lease.checkpoint for lease in two.readable()}
    assert one.readable() == []  # unrenewed for lease_duration_s by its own clock
    assert not one.checkpoint(dying, str(int(position) + 1), 8)  # refused: w2 owns it
    assert dying in one.lost()
