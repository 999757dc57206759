"""The control API in process (no moto, no socket): what each request does, and how a bad one
is refused without leaving anything behind."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from dynabridge.streamsim.client import Poll, ShardStats
from dynabridge.streamsim.server import Simulator
from tests.polling import wait_for


@pytest.fixture
def sim() -> Simulator:
    return Simulator(moto_endpoint=None, seed=1)


def call(sim: Simulator, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    status, answer = sim.control(method, "/_sim" + path, orjson.dumps(body) if body else b"")
    return status, orjson.loads(answer)


def ok(sim: Simulator, method: str, path: str, body: Any = None) -> Any:
    status, answer = call(sim, method, path, body)
    assert status == 200, answer
    return answer


def test_a_refused_creation_leaves_no_table(sim: Simulator) -> None:
    status, answer = call(sim, "POST", "/tables", {"table": "t", "generator": {"rate": 1}})
    assert (status, answer["error"][:34]) == (400, "unknown generator setting 'rate'; ")
    assert ok(sim, "GET", "/tables") == {"tables": []}
    ok(sim, "POST", "/tables", {"table": "t"})
    assert call(sim, "POST", "/tables", {"table": "t"})[0] == 409


def test_shards_can_be_rotated_split_and_trimmed_by_hand(sim: Simulator) -> None:
    ok(sim, "POST", "/tables", {"table": "t", "stream": {"shards": 2}})
    first = ok(sim, "GET", "/tables/t/shards")["shards"][0]["shard_id"]
    (child,) = ok(sim, "POST", f"/tables/t/shards/{first}/rotate")["children"]
    assert child["parent_shard_id"] == first
    low, high = ok(sim, "POST", f"/tables/t/shards/{child['shard_id']}/split")["children"]
    assert int(low["hash_range"][1]) + 1 == int(high["hash_range"][0])
    assert call(sim, "POST", f"/tables/t/shards/{first}/split")[0] == 400  # closed already
    assert call(sim, "POST", "/tables/t/shards/shardId-nope/rotate")[0] == 404
    assert ok(sim, "POST", "/tables/t/trim", {"shard_id": first}) == {"trimmed": 0}
    shards = {s["shard_id"]: s for s in ok(sim, "GET", "/tables/t/shards")["shards"]}
    assert shards[first]["gone"]
    assert not shards[first]["listed"]
    assert sum(s["open"] for s in shards.values()) == 3


def test_the_generator_writes_the_oracle_and_the_records(sim: Simulator) -> None:
    body = {"table": "g", "stream": {"shards": 3}, "generator": {"rate_per_s": 5000, "total": 300}}
    ok(sim, "POST", "/tables", body)
    wait_for(lambda: not ok(sim, "GET", "/tables/g/generator")["running"], 30, "300 changes")
    records = ok(sim, "GET", "/tables/g/records")
    assert sum(len(entries) for entries in records["shards"].values()) == 300
    items = ok(sim, "GET", "/tables/g/items")
    assert items["changes"] == 300
    assert 0 < len(items["items"]) <= 300
    assert ok(sim, "GET", "/tables/g")["generator"]["written"] == 300


def test_settings_change_at_runtime_and_bad_ones_are_named(sim: Simulator) -> None:
    ok(sim, "POST", "/tables", {"table": "t"})
    stream = ok(sim, "PATCH", "/tables/t/stream", {"shards": 4, "throttle_rate": 0.5})["stream"]
    assert (stream["shards"], stream["throttle_rate"]) == (4, 0.5)
    assert sum(s["open"] for s in ok(sim, "GET", "/tables/t/shards")["shards"]) == 4
    status, answer = call(sim, "PATCH", "/tables/t/stream", {"throttle": 1})
    assert status == 400
    assert "unknown stream setting 'throttle'" in answer["error"]


def test_disable_and_enable_give_a_new_stream(sim: Simulator) -> None:
    first = ok(sim, "POST", "/tables", {"table": "t"})["latest_stream_arn"]
    assert ok(sim, "POST", "/tables/t/stream/disable")["stream_enabled"] is False
    assert call(sim, "POST", "/tables/t/stream/disable")[0] == 409
    enabled = ok(sim, "POST", "/tables/t/stream/enable")
    assert enabled["latest_stream_arn"] != first
    assert [s["status"] for s in enabled["streams"]] == ["DISABLED", "ENABLED"]


def test_throttle_rules_and_unknown_paths(sim: Simulator) -> None:
    rules = {"rules": [{"pattern": "leases-*", "rate": 0.5}]}
    assert ok(sim, "PUT", "/throttle", rules)["rules"][0]["pattern"] == "leases-*"
    assert call(sim, "PUT", "/throttle", {"rules": [{"pattern": "x", "rate": 2}]})[0] == 400
    assert ok(sim, "DELETE", "/throttle") == {"rules": []}
    assert call(sim, "GET", "/nothing")[0] == 404
    assert call(sim, "DELETE", "/health")[0] == 405
    assert call(sim, "GET", "/tables/missing")[0] == 404


def test_poll_intervals_and_gaps_after_records_from_the_stats() -> None:
    stats = ShardStats(
        "t", 1, 0, 4,
        (Poll(10.0, 10.04, 5), Poll(10.1, 10.14, 0), Poll(10.3, 10.34, 7), Poll(10.5, 10.6, 0)),
    )  # fmt: skip
    assert [round(i, 3) for i in stats.intervals_s()] == [0.1, 0.2, 0.2]
    assert [round(g, 3) for g in stats.gaps_after_records_s()] == [0.06, 0.16]


def test_a_backlog_fills_every_shard_with_records_of_the_asked_size(sim: Simulator) -> None:
    body = {"table": "b", "stream": {"shards": 4}, "backlog": {"records_per_shard": 500}}
    assert ok(sim, "POST", "/tables", body)["backlog_records"] == 2000
    stream = sim.world.table("b").latest.model
    for shard in stream.open_shards:
        page = shard.page(shard.trimmed_through, 1000, 10**9)
        assert len(page.bodies) == 500
        assert all(2048 * 0.98 <= len(record) <= 2048 * 1.02 for record in page.bodies)
        assert orjson.loads(page.bodies[0])["eventName"] == "MODIFY"
