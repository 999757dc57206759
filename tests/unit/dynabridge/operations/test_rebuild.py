"""``Rebuild``'s steps in order against fakes of the engine and Kafka: the old index refuses
writes before the drain, the alias moves only after the rebuild's group read every record that
existed at the block, a resumed BLOCKED rebuild goes straight to the drain, a legacy index is
copied before the switch removes it, and every refusal leaves nothing half done."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pytest

from bridge.runtime.settings import Settings
from consumers.indexer.dlq import HEADER_ERROR_TYPE, HEADER_INDEX
from consumers.indexer.records import Record
from dynabridge.operations.errors import OperationError
from dynabridge.operations.generations import Layout
from dynabridge.operations.index_reader import StoredDocument
from dynabridge.operations.offset_targets import Watermarks
from dynabridge.operations.rebuild import Options, Rebuild
from dynabridge.operations.reindex import ReindexRefused, unsettled

TABLE = "orders"
ALIAS = "idx-orders"
GEN1, GEN2 = f"{ALIAS}~000001", f"{ALIAS}~000002"
TOPIC = "cdc.orders"


class World:
    """The engine and Kafka of one test; ``log`` is every step, in order."""

    def __init__(self, generations: dict[int, dict[str, Any]], legacy: bool = False) -> None:
        self.log: list[tuple[str, ...]] = []
        self.generations = generations
        self.legacy = legacy
        self.write_index: str | None = None if legacy else GEN1
        self.states: dict[str, dict[str, Any]] = {
            f"{ALIAS}~{n:06d}": dict(meta.get("reindex", {})) for n, meta in generations.items()
        }
        self.heartbeat_moves = False
        self.high = {0: 40, 1: 30}
        self.low = {0: 0, 1: 0}
        self.policy = "delete"
        self.committed: dict[int, int | None] = {0: None, 1: None}
        self.lock = threading.Lock()
        self.committed_at_switch: dict[int, int | None] = {}
        self.high_at_block: dict[int, int] = {}
        self.fills: list[dict[str, str]] = []
        self.letters: list[Record] = []
        """The dead-letter topic's records."""
        self.documents: dict[str, list[dict[str, StoredDocument]]] = {}
        """Per index, what each successive ``_mget`` finds (the last one repeats)."""

    # ------------------------------------------------------------------ engine (Generations)

    def layout(self, alias: str) -> Layout:
        return Layout(alias, self.write_index, self.legacy, dict(self.generations))

    def create(self, index: str, body: Mapping[str, Any]) -> bool:
        self.log.append(("create", index))
        self.generations[int(index.rsplit("~", 1)[1])] = {}
        return True

    def state(self, index: str) -> dict[str, Any]:
        state = dict(self.states.get(index, {}))
        if self.heartbeat_moves:
            self.states[index] = {**state, "heartbeat": int(state.get("heartbeat", 0)) + 1}
        return state

    def set_state(self, index: str, state: Mapping[str, Any]) -> None:
        if self.states.get(index, {}).get("phase") != state.get("phase"):
            self.log.append(("phase", index, str(state.get("phase"))))
        self.states[index] = dict(state)

    def block_writes(self, index: str, blocked: bool) -> None:
        self.log.append(("block" if blocked else "unblock", index))
        with self.lock:
            for partition in self.high:  # the live indexer's last records, produced meanwhile
                self.high[partition] += 5
            self.high_at_block = dict(self.high)

    def refresh(self, index: str) -> None:
        self.log.append(("refresh", index))

    def count(self, index: str) -> int:
        return 17

    def clone(self, source: str, target: str) -> bool:
        self.log.append(("clone", source, target))
        return True

    def switch(self, alias: str, new: str, layout: Layout) -> None:
        self.log.append(("switch", new))
        with self.lock:
            self.committed_at_switch = dict(self.committed)
        self.write_index, self.legacy = new, False

    def delete(self, index: str) -> None:
        self.log.append(("delete", index))

    # ---------------------------------------------------------------------- Kafka (admin)

    def partitions(self, topic: str) -> list[int]:
        return [0] if topic.endswith(".dlq") else sorted(self.high)

    def watermarks(self, topic: str, partitions: Iterable[int]) -> dict[int, Watermarks]:
        if topic.endswith(".dlq"):
            return {p: Watermarks(0, len(self.letters)) for p in partitions}
        with self.lock:
            return {p: Watermarks(self.low[p], self.high[p]) for p in partitions}

    def topic_config(self, topic: str, name: str) -> str | None:
        return self.policy

    def committed_offsets(self) -> dict[int, int | None]:
        with self.lock:
            return dict(self.committed)

    def read(self, topic: str, partition: int, start: int, end: int) -> list[Any]:
        if not topic.endswith(".dlq"):
            return []  # the table's topic: no record timestamps needed here
        return [r for r in self.letters if r.partition == partition and start <= r.offset < end]

    def exists(self, topic: str) -> bool:
        return bool(self.letters)

    def delete_group(self, group: str) -> None:
        self.log.append(("delete-group", group))


class Kafka:
    """The admin face of the world (``committed`` has another signature than the engine's)."""

    def __init__(self, world: World) -> None:
        self._world = world

    def __getattr__(self, name: str) -> Any:
        return getattr(self._world, name)

    def committed(self, group: str, topic: str, partitions: Iterable[int]) -> dict[int, int | None]:
        return self._world.committed_offsets()


def _settings() -> Settings:
    return Settings.model_validate(
        {
            "kafka": {"topic_prefix": "cdc."},
            "indexer": {"group_id": "indexer", "tables": [TABLE]},
            "search": {"index_prefix": "idx-", "request_timeout_s": 1},
        }
    )


def _rebuild(
    world: World,
    verdicts: list[dict[str, int]] | None = None,
    options: Options | None = None,
    backfills_ms: list[int] | None = None,
    differing: list[str] | None = None,
) -> Rebuild:
    verdicts = list(verdicts or [{}])

    def verify(index: str, letters: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
        world.log.append(("verify", index))
        counts = {"missing": 0, "extra": 0, "different": 0, "dead_lettered": 0}
        counts.update(verdicts.pop(0) if len(verdicts) > 1 else verdicts[0])
        found = {"differences": counts, "equal": not any(counts.values())}
        return {**found, "differing_ids": list(differing or [])}

    def documents(index: str, ids: Sequence[str]) -> dict[str, StoredDocument]:
        world.log.append(("mget", index, *ids))
        answers = world.documents.get(index, [{}])
        found = answers.pop(0) if len(answers) > 1 else answers[0]
        return {i: found[i] for i in ids if i in found}

    def fill(settings: Settings, stop: threading.Event, overrides: Mapping[str, str]) -> int:
        world.fills.append(dict(overrides))
        assert settings.indexer.group_id.startswith("indexer.reindex.")
        while not stop.wait(0.005):
            with world.lock:
                world.committed = dict(world.high)
        return 0

    return Rebuild(
        _settings(), TABLE, options or Options(), world, Kafka(world),  # type: ignore[arg-type]
        verify, documents, lambda: list(backfills_ms or []), fill, lambda line: None,
        sleep=lambda s: None,
    )  # fmt: skip


def _steps(world: World) -> list[tuple[str, ...]]:
    return [step for step in world.log if step[0] not in ("verify", "mget")]


def test_the_old_index_refuses_writes_before_the_drain_and_the_switch_follows_it() -> None:
    world = World({1: {}})
    report = _rebuild(world).run()
    assert _steps(world) == [
        ("create", GEN2),
        ("phase", GEN2, "filling"),
        ("block", GEN1),
        ("phase", GEN2, "blocked"),
        ("refresh", GEN2),
        ("switch", GEN2),
        ("phase", GEN2, "done"),
        ("refresh", GEN2),
    ]
    assert ("verify", GEN2) in world.log
    assert world.log.index(("verify", GEN2)) < world.log.index(("block", GEN1))
    # Every record that existed when GEN1 stopped taking writes was read into GEN2 first.
    assert world.committed_at_switch == world.high_at_block
    assert world.fills == [{TABLE: GEN2}]
    assert report.switched
    assert report.kept == GEN1
    assert report.verify["verdict"] == "EQUAL"
    assert report.documents == 17


def test_a_rebuild_that_died_blocked_resumes_at_the_drain() -> None:
    state = {"phase": "blocked", "group": "indexer.reindex.2", "from": GEN1, "heartbeat": 7}
    world = World({1: {}, 2: {"reindex": state}})
    report = _rebuild(world).run()
    assert report.plan.resume
    assert _steps(world)[:3] == [("refresh", GEN2), ("switch", GEN2), ("phase", GEN2, "done")]
    assert ("verify", GEN2) not in world.log, "verified before it blocked the old index"
    assert world.fills == [{TABLE: GEN2}]


def test_a_rebuild_whose_heartbeat_moves_is_refused_and_nothing_is_touched() -> None:
    state = {"phase": "filling", "group": "indexer.reindex.2", "owner": "host-1", "heartbeat": 1}
    world = World({1: {}, 2: {"reindex": state}})
    world.heartbeat_moves = True
    with pytest.raises(ReindexRefused, match=r"is running .*host-1"):
        _rebuild(world).run()
    assert world.log == []


def test_a_legacy_index_is_copied_read_only_before_the_switch_removes_it() -> None:
    world = World({}, legacy=True)
    report = _rebuild(world).run()
    steps = _steps(world)
    assert steps.index(("block", ALIAS)) < steps.index(("clone", ALIAS, f"{ALIAS}~000000"))
    assert steps.index(("clone", ALIAS, f"{ALIAS}~000000")) < steps.index(("switch", GEN1))
    assert report.plan.new == GEN1
    assert report.kept == f"{ALIAS}~000000"
    dropped = World({}, legacy=True)
    report = _rebuild(dropped, options=Options(drop_old=True)).run()
    assert report.dropped == [f"{ALIAS}~000000"]
    assert report.kept is None


def test_an_index_that_stays_different_is_never_switched_to() -> None:
    world = World({1: {}})
    with pytest.raises(OperationError, match="still differs"):
        _rebuild(world, verdicts=[{"missing": 2}]).run()
    assert not any(step[0] in ("block", "switch") for step in world.log)
    assert world.states[GEN2]["phase"] == "filling", "a rerun resumes it"


def test_differences_in_flight_are_verified_again_after_catching_up() -> None:
    world = World({1: {}})
    report = _rebuild(world, verdicts=[{"extra": 1}, {}]).run()
    assert [step for step in world.log if step[0] == "verify"] == [("verify", GEN2)] * 2
    assert report.switched


def test_a_trimmed_topic_is_refused_unless_compacted_or_backfilled_since() -> None:
    world = World({1: {}})
    world.low = {0: 10, 1: 0}
    with pytest.raises(ReindexRefused, match=f"dynabridge backfill --table {TABLE}"):
        _rebuild(world).plan()
    world.policy = "compact"
    assert _rebuild(world).plan()[0].history.startswith("the topic is compacted")


def _letter(offset: int, index: str) -> Record:
    headers = ((HEADER_INDEX, index.encode()), (HEADER_ERROR_TYPE, b"mapper_parsing_exception"))
    return Record(f"{TOPIC}.dlq", 0, offset, b'{"pk":{"S":"a"}}', b"", headers)


def test_documents_the_new_mappings_refuse_stop_the_switch() -> None:
    world = World({1: {}})
    world.letters = [_letter(0, GEN1), _letter(1, GEN2)]  # the live index's, then the rebuild's
    with pytest.raises(OperationError, match=rf"{GEN2} refused 1 document.*--abort"):
        _rebuild(world).run()
    assert not any(step[0] in ("block", "switch") for step in world.log)
    live_only = World({1: {}})
    live_only.letters = [_letter(0, GEN1)]  # the live index's refusal: not the new one's
    assert _rebuild(live_only).run().switched


def _doc(version: int, **source: Any) -> StoredDocument:
    return StoredDocument("x", version, dict(source))


def test_a_document_is_settled_when_the_live_generation_holds_the_same_one() -> None:
    new = {"a": _doc(5, v=1), "b": _doc(5, v=1), "c": _doc(6, v=2), "e": _doc(3, v=1.0)}
    live = {"a": _doc(5, v=1), "b": _doc(4, v=1), "d": _doc(1), "e": _doc(3, v=1)}
    # a same; b other version; c absent from live; d absent from new; e equal numbers; f neither
    assert unsettled(["a", "b", "c", "d", "e", "f"], new, live) == ["b", "c", "d"]


def test_differences_the_live_index_shares_are_in_flight_and_do_not_stop_the_switch() -> None:
    world = World({1: {}})
    # Round 1: a and b differ from the table. After catching up, b is still unlike the live
    # generation (the rebuild is behind on it); next round both agree with it.
    world.documents = {
        GEN2: [{"a": _doc(2, v=1), "b": _doc(1, v=0)}, {"a": _doc(2, v=1), "b": _doc(3, v=2)}],
        GEN1: [{"a": _doc(2, v=1), "b": _doc(3, v=2)}],
    }
    report = _rebuild(world, verdicts=[{"different": 2}], differing=["a", "b"]).run()
    assert report.switched
    assert report.verify["verdict"] == "EQUAL"
    assert report.verify["in_flight"] == 2
    assert [s for s in world.log if s[0] == "verify"] == [("verify", GEN2)], "no second Scan"
    assert [s for s in world.log if s[0] == "mget"] == [
        ("mget", GEN2, "a", "b"), ("mget", GEN1, "a", "b"),
        ("mget", GEN2, "b"), ("mget", GEN1, "b"),
    ]  # fmt: skip


def test_a_document_unlike_the_live_generation_round_after_round_stops_the_switch() -> None:
    world = World({1: {}})
    world.documents = {GEN2: [{"a": _doc(1, v=0)}], GEN1: [{"a": _doc(2, v=1)}]}
    with pytest.raises(OperationError, match="unlike_the_live_index"):
        _rebuild(world, verdicts=[{"missing": 1}], differing=["a"]).run()
    assert not any(step[0] in ("block", "switch") for step in world.log)
