"""The Streams API over the world, with a fixed clock and a recorded sleep: AWS's limits and
errors, and the configured faults decided per call."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest

from dynabridge.streamsim.config import StreamConfig
from dynabridge.streamsim.errors import ApiError
from dynabridge.streamsim.records import Change
from dynabridge.streamsim.streams_api import Foreign, StreamsApi
from dynabridge.streamsim.world import KeyAttribute, SimTable, Source, World

T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


class Sim:
    def __init__(self, **settings: Any) -> None:
        self.clock = Clock()
        self.slept: list[float] = []
        self.during_sleep: Callable[[], None] | None = None
        self.world = World(clock=self.clock, seed=3)
        self.api = StreamsApi(self.world, sleep=self._sleep)
        self.table: SimTable = self.world.add_table(
            "t",
            source=Source.SYNTHETIC,
            region="eu-west-1",
            key_schema=(KeyAttribute("pk", "S", "HASH"),),
            view_type="NEW_AND_OLD_IMAGES",
            config=StreamConfig.from_json(settings),
        )
        self.arn = self.table.latest.arn

    def _sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        if self.during_sleep is not None:
            hook, self.during_sleep = self.during_sleep, None
            hook()

    def call(self, operation: str, **request: Any) -> Any:
        return orjson.loads(self.api.handle(operation, request))

    def write(self, *keys: str) -> None:
        self.world.append(
            self.table.latest,
            [
                Change("INSERT", {"pk": {"S": k}}, {"pk": {"S": k}}, None, self.clock.now, k)
                for k in keys
            ],
        )

    def shard_ids(self) -> list[str]:
        return [s.shard_id for s in self.table.latest.model.listing(self.clock.now)]

    def iterator(self, shard_id: str, kind: str = "TRIM_HORIZON", **extra: Any) -> str:
        answer = self.call(
            "GetShardIterator", StreamArn=self.arn, ShardId=shard_id, ShardIteratorType=kind,
            **extra,
        )  # fmt: skip
        return str(answer["ShardIterator"])


def code(call: Callable[[], object]) -> str:
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value.code


def test_describe_stream_pages_by_limit_and_the_last_page_has_no_token() -> None:
    sim = Sim(shards=5)
    seen, start, pages = [], None, 0
    while True:
        extra: dict[str, Any] = {"ExclusiveStartShardId": start} if start else {}
        page = sim.call("DescribeStream", StreamArn=sim.arn, Limit=2, **extra)["StreamDescription"]
        pages += 1
        seen += [s["ShardId"] for s in page["Shards"]]
        start = page.get("LastEvaluatedShardId")
        if start is None:
            break
        assert start == page["Shards"][-1]["ShardId"]
    assert pages == 3
    assert seen == sim.shard_ids()
    assert code(lambda: sim.call("DescribeStream", StreamArn=sim.arn, Limit=101)) == (
        "ValidationException"
    )


def test_describe_stream_shows_the_stream_and_open_shards_without_an_ending_number() -> None:
    sim = Sim(shards=2)
    parent = sim.shard_ids()[0]
    sim.table.latest.model.rotate(T0, parent)
    description = sim.call("DescribeStream", StreamArn=sim.arn)["StreamDescription"]
    assert description["StreamStatus"] == "ENABLED"
    assert description["TableName"] == "t"
    assert description["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    by_id = {s["ShardId"]: s for s in description["Shards"]}
    assert "EndingSequenceNumber" in by_id[parent]["SequenceNumberRange"]
    children = [s for s in description["Shards"] if s.get("ParentShardId") == parent]
    assert len(children) == 1
    assert "EndingSequenceNumber" not in children[0]["SequenceNumberRange"]
    filtered = sim.call(
        "DescribeStream", StreamArn=sim.arn, ShardFilter={"Type": "CHILD_SHARDS", "ShardId": parent}
    )["StreamDescription"]["Shards"]
    assert filtered == children


def test_a_closed_parent_can_be_listed_open_beside_its_open_child() -> None:
    sim = Sim(ending_lag_s=2)
    parent = sim.shard_ids()[0]
    sim.table.latest.model.rotate(T0, parent)

    def ranges() -> list[dict[str, str]]:
        shards = sim.call("DescribeStream", StreamArn=sim.arn)["StreamDescription"]["Shards"]
        return [shard["SequenceNumberRange"] for shard in shards]

    assert all("EndingSequenceNumber" not in numbers for numbers in ranges())
    sim.clock.now += 2.1
    assert ["EndingSequenceNumber" in numbers for numbers in ranges()] == [True, False]


def test_describe_stream_is_limited_per_second_per_stream() -> None:
    sim = Sim(describe_stream_per_s=10)
    for _ in range(10):
        sim.call("DescribeStream", StreamArn=sim.arn)
    assert code(lambda: sim.call("DescribeStream", StreamArn=sim.arn)) == "LimitExceededException"
    sim.clock.now += 1.01
    sim.call("DescribeStream", StreamArn=sim.arn)
    throttling = Sim(describe_stream_per_s=1, describe_stream_throttle_code="ThrottlingException")
    throttling.call("DescribeStream", StreamArn=throttling.arn)
    assert code(lambda: throttling.call("DescribeStream", StreamArn=throttling.arn)) == (
        "ThrottlingException"
    )


def test_get_records_reads_a_closed_shard_to_its_end_then_gives_no_next_iterator() -> None:
    sim = Sim()
    shard = sim.shard_ids()[0]
    sim.write("a", "b", "c")
    sim.table.latest.model.rotate(T0, shard)
    page = sim.call("GetRecords", ShardIterator=sim.iterator(shard), Limit=2)
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in page["Records"]] == ["a", "b"]
    last = sim.call("GetRecords", ShardIterator=page["NextShardIterator"])
    assert [r["dynamodb"]["Keys"]["pk"]["S"] for r in last["Records"]] == ["c"]
    assert "NextShardIterator" not in last


def test_an_open_shard_answers_empty_pages_with_an_iterator() -> None:
    sim = Sim()
    page = sim.call("GetRecords", ShardIterator=sim.iterator(sim.shard_ids()[0], "LATEST"))
    assert page["Records"] == []
    assert page["NextShardIterator"]


def test_get_records_limits() -> None:
    sim = Sim()
    iterator = sim.iterator(sim.shard_ids()[0])
    assert code(lambda: sim.call("GetRecords", ShardIterator=iterator, Limit=1001)) == (
        "LimitExceededException"
    )
    assert code(lambda: sim.call("GetRecords", ShardIterator=iterator, Limit=0)) == (
        "ValidationException"
    )


def test_an_iterator_expires_after_its_time_to_live() -> None:
    sim = Sim(iterator_ttl_s=30)
    iterator = sim.iterator(sim.shard_ids()[0])
    sim.clock.now += 29
    fresh = sim.call("GetRecords", ShardIterator=iterator)["NextShardIterator"]
    sim.clock.now += 2
    assert code(lambda: sim.call("GetRecords", ShardIterator=iterator)) == (
        "ExpiredIteratorException"
    )
    sim.call("GetRecords", ShardIterator=fresh)


def test_a_trimmed_position_and_a_trimmed_away_shard() -> None:
    sim = Sim(retention_s=60)
    shard = sim.shard_ids()[0]
    sim.write("a")
    old = sim.iterator(shard)
    sim.table.latest.model.rotate(T0, shard)
    sim.clock.now += 61
    assert code(lambda: sim.call("GetRecords", ShardIterator=old)) == "TrimmedDataAccessException"
    assert code(lambda: sim.iterator(shard)) == "ResourceNotFoundException"
    assert shard not in sim.shard_ids()


def test_more_readers_of_a_shard_than_allowed_are_throttled() -> None:
    sim = Sim(max_readers_per_shard=1, get_records_latency_ms=40)
    iterator = sim.iterator(sim.shard_ids()[0])
    codes: list[str] = []
    sim.during_sleep = lambda: codes.append(
        code(lambda: sim.call("GetRecords", ShardIterator=iterator))
    )
    sim.call("GetRecords", ShardIterator=iterator)
    assert codes == ["LimitExceededException"]
    assert sim.table.latest.readers == {sim.shard_ids()[0]: 0}
    stats = sim.world.stats.as_json()["shards"][sim.shard_ids()[0]]
    assert (stats["max_readers"], stats["throttled"]) == (1, 1)


def test_two_concurrent_readers_are_allowed_by_default() -> None:
    sim = Sim(get_records_latency_ms=40)
    iterator = sim.iterator(sim.shard_ids()[0])
    inner: list[Any] = []
    sim.during_sleep = lambda: inner.append(sim.call("GetRecords", ShardIterator=iterator))
    sim.call("GetRecords", ShardIterator=iterator)
    assert inner
    assert inner[0]["Records"] == []


def test_throttle_rate_one_refuses_every_get_records_and_zero_none() -> None:
    always = Sim(throttle_rate=1.0)
    iterator = always.iterator(always.shard_ids()[0])
    assert code(lambda: always.call("GetRecords", ShardIterator=iterator)) == (
        "LimitExceededException"
    )
    never = Sim()
    iterator = never.iterator(never.shard_ids()[0])
    for _ in range(50):
        never.call("GetRecords", ShardIterator=iterator)


def test_latency_is_slept_within_fixed_plus_jitter() -> None:
    sim = Sim(get_records_latency_ms=40, get_records_jitter_ms=10)
    iterator = sim.iterator(sim.shard_ids()[0])
    for _ in range(20):
        sim.call("GetRecords", ShardIterator=iterator)
    assert len(sim.slept) == 20
    assert all(0.040 <= s <= 0.050 for s in sim.slept)
    assert max(sim.slept) > min(sim.slept)


def test_every_get_records_is_recorded_with_the_records_it_returned() -> None:
    sim = Sim()
    shard = sim.shard_ids()[0]
    sim.write("a", "b")
    iterator = sim.iterator(shard)
    page = sim.call("GetRecords", ShardIterator=iterator)
    sim.call("GetRecords", ShardIterator=page["NextShardIterator"])
    polls = sim.world.stats.as_json()["shards"][shard]["polls"]
    assert [n for _, _, n in polls] == [2, 0]


def test_streams_and_iterators_of_others_are_foreign() -> None:
    sim = Sim()
    with pytest.raises(Foreign):
        sim.call("DescribeStream", StreamArn="arn:aws:dynamodb:us-east-1:1:table/x/stream/y")
    moto_like = "arn:aws:dynamodb:us-east-1:1:table/x/stream/y|1|bW90bw=="
    with pytest.raises(Foreign):
        sim.call("GetRecords", ShardIterator=moto_like)


def test_get_shard_iterator_arguments_are_checked() -> None:
    sim = Sim()
    shard = sim.shard_ids()[0]
    assert code(lambda: sim.iterator(shard, "AT_SEQUENCE_NUMBER")) == "ValidationException"
    assert code(lambda: sim.iterator(shard, "BEFORE")) == "ValidationException"
    assert code(lambda: sim.iterator("shardId-00000000000000000001-00000000")) == (
        "ResourceNotFoundException"
    )
    assert code(lambda: sim.iterator(shard, "AT_TIMESTAMP", Timestamp=T0 + 60)) == (
        "ValidationException"
    )


def test_list_streams_pages_and_filters_by_table() -> None:
    sim = Sim()
    for name in ("u", "v"):
        sim.world.add_table(
            name, source=Source.SYNTHETIC, region="eu-west-1",
            key_schema=(KeyAttribute("pk", "S", "HASH"),), view_type="KEYS_ONLY",
            config=StreamConfig(),
        )  # fmt: skip
    first = sim.call("ListStreams", Limit=2)
    rest = sim.call("ListStreams", ExclusiveStartStreamArn=first["LastEvaluatedStreamArn"])
    assert len(first["Streams"]) == 2
    assert len(rest["Streams"]) == 1
    assert "LastEvaluatedStreamArn" not in rest
    assert [s["TableName"] for s in sim.call("ListStreams", TableName="v")["Streams"]] == ["v"]
