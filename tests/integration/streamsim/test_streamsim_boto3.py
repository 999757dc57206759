"""The simulator through real boto3 clients over HTTP: every response parses and matches
botocore's output shapes (tests/integration/streamsim/shapes.py), moto tables' changes come
out of the simulated shard tree in order, errors carry AWS's codes, and faults happen."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError  # noqa: TID251 - the test reads AWS error codes

from tests.integration.streamsim.shapes import ShapeWatch, watch
from tests.polling import wait_for
from tests.streamsim import SimTable, SimTables, StreamSimServer


@pytest.fixture
def shapes(streamsim: StreamSimServer) -> Iterator[ShapeWatch]:
    """Fails the test if any response of its clients did not match the service model."""
    checker = ShapeWatch()
    original = streamsim.boto3_clients

    def watched(*args: Any, **kwargs: Any) -> Any:
        clients = original(*args, **kwargs)
        for client in clients:
            watch(client, checker)
        return clients

    streamsim.boto3_clients = watched  # type: ignore[method-assign]
    yield checker
    streamsim.boto3_clients = original  # type: ignore[method-assign]
    assert checker.problems == []


def error_code(call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    return str(caught.value.response["Error"]["Code"])


def all_shards(table: SimTable) -> list[dict[str, Any]]:
    shards: list[dict[str, Any]] = []
    start: str | None = None
    while True:
        extra: dict[str, Any] = {"ExclusiveStartShardId": start} if start else {}
        page = table.streams.describe_stream(StreamArn=table.stream_arn, Limit=3, **extra)
        shards += [dict(shard) for shard in page["StreamDescription"]["Shards"]]
        start = page["StreamDescription"].get("LastEvaluatedShardId")
        if start is None:
            return shards


def read_shard(table: SimTable, shard_id: str) -> list[dict[str, Any]]:
    """Every record of a shard, to its end if closed (to an empty page if open)."""
    iterator: str | None = table.streams.get_shard_iterator(
        StreamArn=table.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    records: list[dict[str, Any]] = []
    while iterator:
        page = table.streams.get_records(ShardIterator=iterator, Limit=7)
        records += [dict(record) for record in page["Records"]]
        iterator = page.get("NextShardIterator")
        if not page["Records"] and iterator:
            return records
    return records


def parents_first(shards: list[dict[str, Any]]) -> list[dict[str, Any]]:
    done: set[str] = set()
    ordered: list[dict[str, Any]] = []
    known = {s["ShardId"] for s in shards}
    while len(ordered) < len(shards):
        for shard in shards:
            parent = shard.get("ParentShardId")
            if shard["ShardId"] not in done and (
                parent is None or parent in done or parent not in known
            ):
                ordered.append(shard)
                done.add(shard["ShardId"])
    return ordered


def put(table: SimTable, key: str, revision: int) -> None:
    table.dynamodb.put_item(
        TableName=table.name,
        Item={"pk": {"S": key}, "sk": {"N": "1"}, "rev": {"N": str(revision)}},
    )


def test_moto_changes_are_read_back_in_per_item_order_across_rotations_and_splits(
    sim_tables: SimTables, shapes: ShapeWatch
) -> None:
    table = sim_tables.moto_table(shards=3, rotate_every_records=7, split_rate=0.3)
    written: dict[str, list[int]] = defaultdict(list)
    for revision in range(6):
        for key in range(20):
            put(table, f"k{key}", revision)
            written[f"k{key}"].append(revision)
    sim = sim_tables.sim
    wait_for(lambda: len(sim.records(table.name)) == 120, 30, "120 records in the simulator")
    shards = all_shards(table)
    assert len(shards) > 3 + 120 // 7 - 3
    assert sum("EndingSequenceNumber" not in s["SequenceNumberRange"] for s in shards) >= 3
    read: dict[str, list[int]] = defaultdict(list)
    for shard in parents_first(shards):
        records = read_shard(table, shard["ShardId"])
        numbers = [int(r["dynamodb"]["SequenceNumber"]) for r in records]
        assert numbers == sorted(numbers)
        for record in records:
            image = record["dynamodb"]["NewImage"]
            read[image["pk"]["S"]].append(int(image["rev"]["N"]))
            assert record["dynamodb"]["Keys"] == {"pk": image["pk"], "sk": image["sk"]}
    assert read == written
    assert shapes.checked.get("GetRecords", 0) > 0


def test_every_iterator_type_and_the_end_of_a_closed_shard(
    sim_tables: SimTables, shapes: ShapeWatch
) -> None:
    table = sim_tables.moto_table()
    for revision in range(3):
        put(table, "a", revision)
    wait_for(lambda: len(sim_tables.sim.records(table.name)) == 3, 20, "3 records")
    (shard,) = sim_tables.sim.shards(table.name)

    def first_page(kind: str, **extra: Any) -> dict[str, Any]:
        request: dict[str, Any] = {"ShardIteratorType": kind, **extra}
        iterator = table.streams.get_shard_iterator(
            StreamArn=table.stream_arn, ShardId=shard.shard_id, **request
        )["ShardIterator"]
        return dict(table.streams.get_records(ShardIterator=iterator))

    everything = first_page("TRIM_HORIZON")["Records"]
    numbers = [r["dynamodb"]["SequenceNumber"] for r in everything]
    assert len(numbers) == 3
    assert all(21 <= len(n) <= 40 for n in numbers)
    assert first_page("LATEST")["Records"] == []
    at = first_page("AT_SEQUENCE_NUMBER", SequenceNumber=numbers[1])["Records"]
    after = first_page("AFTER_SEQUENCE_NUMBER", SequenceNumber=numbers[1])["Records"]
    assert [r["dynamodb"]["SequenceNumber"] for r in at] == numbers[1:]
    assert [r["dynamodb"]["SequenceNumber"] for r in after] == numbers[2:]
    stamp = everything[0]["dynamodb"]["ApproximateCreationDateTime"]
    assert stamp.microsecond == 0  # rounded down to the second
    assert len(first_page("AT_TIMESTAMP", Timestamp=stamp)["Records"]) == 3
    (child,) = sim_tables.sim.rotate(table.name, shard.shard_id)
    last = first_page("TRIM_HORIZON")
    assert len(last["Records"]) == 3
    assert "NextShardIterator" not in last
    children = table.streams.describe_stream(
        StreamArn=table.stream_arn, ShardFilter={"Type": "CHILD_SHARDS", "ShardId": shard.shard_id}
    )["StreamDescription"]["Shards"]
    assert [c["ShardId"] for c in children] == [child.shard_id]


def test_errors_carry_aws_codes(sim_tables: SimTables, shapes: ShapeWatch) -> None:
    table = sim_tables.moto_table(iterator_ttl_s=1, describe_stream_per_s=2)
    put(table, "a", 0)
    wait_for(lambda: sim_tables.sim.records(table.name), 20, "a record")
    (shard,) = sim_tables.sim.shards(table.name)
    streams = table.streams
    iterator = streams.get_shard_iterator(
        StreamArn=table.stream_arn, ShardId=shard.shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]

    def expired() -> bool:
        try:
            streams.get_records(ShardIterator=iterator)
        except ClientError as error:
            return error.response["Error"]["Code"] == "ExpiredIteratorException"
        return False

    wait_for(expired, 10, "the iterator to expire")
    assert error_code(lambda: streams.get_records(ShardIterator=iterator, Limit=1001)) == (
        "LimitExceededException"
    )
    streams.describe_stream(StreamArn=table.stream_arn)
    codes = {
        error_code(lambda: [streams.describe_stream(StreamArn=table.stream_arn) for _ in range(3)])
    }
    assert codes == {"LimitExceededException"}
    fresh = streams.get_shard_iterator(
        StreamArn=table.stream_arn, ShardId=shard.shard_id, ShardIteratorType="TRIM_HORIZON"
    )["ShardIterator"]
    sim_tables.sim.rotate(table.name, shard.shard_id)
    assert sim_tables.sim.trim(table.name, shard_id=shard.shard_id) == 1
    assert error_code(lambda: streams.get_records(ShardIterator=fresh)) == (
        "TrimmedDataAccessException"
    )
    assert (
        error_code(
            lambda: streams.get_shard_iterator(
                StreamArn=table.stream_arn, ShardId=shard.shard_id, ShardIteratorType="TRIM_HORIZON"
            )
        )
        == "ResourceNotFoundException"
    )
    assert shard.shard_id not in {s["ShardId"] for s in all_shards_slowly(table)}


def all_shards_slowly(table: SimTable) -> list[dict[str, Any]]:
    """DescribeStream once the per-second budget of the test above is free again."""
    result: list[list[dict[str, Any]]] = []

    def listed() -> bool:
        try:
            result.append(all_shards(table))
        except ClientError:
            return False
        return True

    wait_for(listed, 10, "DescribeStream within its rate")
    return result[-1]


def test_describe_table_carries_the_simulated_stream_and_it_can_be_turned_off_and_on(
    sim_tables: SimTables, shapes: ShapeWatch
) -> None:
    table = sim_tables.moto_table()
    description = table.dynamodb.describe_table(TableName=table.name)["Table"]
    assert description["LatestStreamArn"] == table.stream_arn
    off = table.dynamodb.update_table(
        TableName=table.name, StreamSpecification={"StreamEnabled": False}
    )["TableDescription"]
    assert off["StreamSpecification"] == {"StreamEnabled": False}
    put(table, "while-off", 0)
    on = table.dynamodb.update_table(
        TableName=table.name,
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )["TableDescription"]
    new_arn = on["LatestStreamArn"]
    assert new_arn != table.stream_arn
    assert on["LatestStreamLabel"] != description["LatestStreamLabel"]
    old = table.streams.describe_stream(StreamArn=table.stream_arn)["StreamDescription"]
    assert old["StreamStatus"] == "DISABLED"
    assert all("EndingSequenceNumber" in s["SequenceNumberRange"] for s in old["Shards"])
    streams = table.streams.list_streams(TableName=table.name)["Streams"]
    assert {s["StreamArn"] for s in streams} == {table.stream_arn, new_arn}
    put(table, "after", 1)
    wait_for(lambda: sim_tables.sim.records(table.name, new_arn), 20, "a record in the new stream")
    assert [r.keys["pk"]["S"] for r in sim_tables.sim.records(table.name, new_arn)] == ["after"]
    assert sim_tables.sim.records(table.name, table.stream_arn) == []
    # With another change in the same call, moto gets that change, never the stream's.
    both = table.dynamodb.update_table(
        TableName=table.name,
        BillingMode="PROVISIONED",
        ProvisionedThroughput={"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
        StreamSpecification={"StreamEnabled": False},
    )["TableDescription"]
    assert both["StreamSpecification"] == {"StreamEnabled": False}
    assert both["BillingModeSummary"]["BillingMode"] == "PROVISIONED"
    put(table, "moto-still-writes", 2)
    moto_side = sim_tables.moto_dynamodb.describe_table(TableName=table.name)["Table"]
    assert moto_side["StreamSpecification"]["StreamEnabled"] is True


def test_lease_tables_can_be_throttled_by_name_pattern(
    sim_tables: SimTables, streamsim: StreamSimServer, shapes: ShapeWatch
) -> None:
    leases = sim_tables.moto_table("leases")
    other = sim_tables.moto_table("data")
    sim = sim_tables.sim
    code = "PutItem:ProvisionedThroughputExceededException"
    before = sim.stats().errors.get(code, 0)  # the session's simulator served earlier tests
    sim.throttle_tables("leases-*", 1.0, operations=["PutItem"])
    try:
        assert error_code(lambda: put(leases, "x", 0)) == "ProvisionedThroughputExceededException"
        put(other, "x", 0)
        leases.dynamodb.describe_table(TableName=leases.name)
    finally:
        sim.clear_throttling()
    put(leases, "x", 0)
    assert sim.stats().errors.get(code, 0) == before + 1


def test_get_records_throttling_and_the_two_readers_limit(
    sim_tables: SimTables, streamsim: StreamSimServer
) -> None:
    table = sim_tables.moto_table(get_records_latency_ms=300)
    (shard,) = sim_tables.sim.shards(table.name)
    _, streams = streamsim.boto3_clients(pool=4)
    iterator = streams.get_shard_iterator(
        StreamArn=table.stream_arn, ShardId=shard.shard_id, ShardIteratorType="LATEST"
    )["ShardIterator"]
    codes: list[str] = []
    barrier = threading.Barrier(3)

    def read() -> None:
        barrier.wait()
        try:
            streams.get_records(ShardIterator=iterator)
            codes.append("ok")
        except ClientError as error:
            codes.append(error.response["Error"]["Code"])

    threads = [threading.Thread(target=read) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(codes) == ["LimitExceededException", "ok", "ok"]
    sim_tables.sim.configure(table.name, throttle_rate=1.0, get_records_latency_ms=0)
    assert error_code(lambda: streams.get_records(ShardIterator=iterator)) == (
        "LimitExceededException"
    )
    stats = sim_tables.sim.stats(table.name).shards[shard.shard_id]
    assert stats.max_readers == 2
    assert stats.throttled == 2


def test_64_shards_at_40ms_answer_in_parallel(
    sim_tables: SimTables, streamsim: StreamSimServer
) -> None:
    table = sim_tables.synthetic_table(
        shards=64, get_records_latency_ms=40, describe_stream_per_s=0
    )
    _, streams = streamsim.boto3_clients(pool=64)
    shard_ids = [s.shard_id for s in sim_tables.sim.shards(table.name)]
    iterators = [
        streams.get_shard_iterator(
            StreamArn=table.stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        for shard_id in shard_ids
    ]
    barrier = threading.Barrier(len(iterators))

    def read(iterator: str) -> None:
        barrier.wait()
        streams.get_records(ShardIterator=iterator)

    threads = [threading.Thread(target=read, args=(it,)) for it in iterators]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    polls = [
        poll for stats in sim_tables.sim.stats(table.name).shards.values() for poll in stats.polls
    ]
    assert len(polls) == 64
    assert all(poll.ended_s - poll.started_s >= 0.040 for poll in polls)
    # The calls overlapped: one after another they would take 64 x 40 ms = 2.56 s.
    overlapping = max(sum(p.started_s <= q.started_s < p.ended_s for p in polls) for q in polls)
    span = max(p.ended_s for p in polls) - min(p.started_s for p in polls)
    assert overlapping >= 16, overlapping
    assert span < 1.28, span


def test_a_synthetic_tables_changes_replay_to_its_oracle_state(
    sim_tables: SimTables, shapes: ShapeWatch
) -> None:
    table = sim_tables.synthetic_table(
        shards=4,
        rotate_every_records=60,
        split_rate=0.5,
        generator={"rate_per_s": 2000, "total": 600, "items": 80, "remove_share": 0.2, "seed": 4},
    )
    sim = sim_tables.sim
    wait_for(lambda: not sim.generator(table.name)["running"], 30, "the generator to finish")
    state: dict[str, dict[str, Any]] = {}
    count = 0
    for shard in parents_first(all_shards(table)):
        for record in read_shard(table, shard["ShardId"]):
            count += 1
            key = record["dynamodb"]["Keys"]["pk"]["S"]
            if record["eventName"] == "REMOVE":
                state.pop(key)
            else:
                state[key] = record["dynamodb"]["NewImage"]
    assert count == 600 == len(sim.records(table.name))
    expected = {item["pk"]["S"]: item for item in sim.items(table.name)}
    assert state.keys() == expected.keys()
    as_boto3 = table.dynamodb.scan(TableName=table.name)["Items"]
    assert len(as_boto3) == len(expected)
    for key, image in state.items():
        assert image == next(i for i in as_boto3 if i["pk"]["S"] == key)
    described = table.dynamodb.describe_table(TableName=table.name)["Table"]
    assert described["LatestStreamArn"] == table.stream_arn
    assert described["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]


def test_a_child_can_lag_behind_its_parents_end_in_listings(sim_tables: SimTables) -> None:
    table = sim_tables.moto_table(listing_lag_s=1.5, describe_stream_per_s=0)
    (shard,) = sim_tables.sim.shards(table.name)
    (child,) = sim_tables.sim.rotate(table.name, shard.shard_id)
    started = time.monotonic()
    assert child.shard_id not in {s["ShardId"] for s in all_shards(table)}
    waited = wait_for(
        lambda: child.shard_id in {s["ShardId"] for s in all_shards(table)},
        10,
        "the child to be listed",
        every_s=0.05,
    )
    assert time.monotonic() - started >= 1.4
    assert waited > 0
