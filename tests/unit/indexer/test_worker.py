"""The loop with fakes: settles, retries only what failed, pauses through outages, stops cleanly."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial

import pytest

from bridge.contract import ChangeEvent, EventName, SchemaRegistryError, UnknownSchema, decode
from bridge.runtime.backoff import Backoff
from bridge.runtime.health import Heartbeat
from bridge.runtime.settings import ConfigError
from consumers.indexer.actions import Action, ItemResult
from consumers.indexer.batching import Limits
from consumers.indexer.metrics import IndexerMetrics
from consumers.indexer.records import Partition
from consumers.indexer.worker import IndexerFatal, LoopConfig, Submit, Worker
from tests.unit.indexer.fakes import (
    OK,
    P0,
    P1,
    TOPIC,
    FakeClock,
    FakeConsumer,
    FakeDeadLetters,
    FakeSearch,
    Script,
    event,
    inline,
    record,
)


class Rig:
    def __init__(
        self,
        partitions: tuple[Partition, ...] = (P0,),
        max_docs: int = 100,
        decode: Callable[[bytes], ChangeEvent] = decode,
        search: FakeSearch | None = None,
        *,
        in_flight: int = 1,
        submit: Submit = inline,
        consumer: type[FakeConsumer] = FakeConsumer,
        poll_timeout_s: float = 0.1,
    ) -> None:
        self.clock = FakeClock() if search is None else search.clock
        self.consumer = consumer(self.clock, assignment=partitions)
        self.search = FakeSearch(self.clock) if search is None else search
        self.dlq = FakeDeadLetters()
        self.metrics = IndexerMetrics()
        config = LoopConfig(
            limits=Limits(max_docs=max_docs, max_bytes=1 << 20, linger_s=0.05),
            backoff=Backoff(initial_s=0.5, max_s=4.0),
            index_prefix="",
            tables_by_topic={TOPIC: "orders"},
            outcome_overrides={},
            shutdown_timeout_s=5.0,
            commit_interval_s=1.0,
            poll_timeout_s=poll_timeout_s,
            max_bulks_in_flight=in_flight,
        )
        self.worker = Worker(
            config,
            self.consumer,
            self.search,
            self.dlq,
            self.metrics,
            Heartbeat(60.0, clock=self.clock),
            self.consumer.stop,
            decode=decode,
            clock=self.clock,
            wall_clock=lambda: 1_700_000_010.0,
            draw=lambda: 1.0,  # the longest delay: the worst case for the outage budget
            submit=submit,
        )

    def run(self) -> None:
        self.worker.run()

    def count(self, name: str, **labels: str) -> float:
        value = self.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


def _all_settled(rig: Rig, partition: Partition, end: int) -> bool:
    return rig.consumer.committed(partition) == end


def test_changes_are_indexed_newest_wins_and_the_position_is_committed() -> None:
    rig = Rig()
    rig.consumer.add(
        record(P0, 0, event("a", 1)),
        record(P0, 1, event("b", 2)),
        record(P0, 2, event("a", 3)),
        record(P0, 3, event("b", 4, EventName.REMOVE)),
    )
    rig.consumer.stop_when = lambda: _all_settled(rig, P0, 4)
    rig.run()
    assert rig.search.docs == {("orders", "a"): (3, {"id": "a", "v": 3})}
    assert [len(b) for b in rig.search.bulks] == [2]  # coalesced to one change per document
    assert rig.consumer.committed(P0) == 4
    assert rig.consumer.closed
    assert rig.count("dynabridge_indexer_coalesced_total") == 2
    assert rig.count("dynabridge_indexer_documents_total", table="orders", result="deleted") == 1


def _fail_docs(docs: set[str], status: int = 429) -> Script:
    def answer(actions: Sequence[Action]) -> list[ItemResult]:
        return [
            ItemResult(status, "es_rejected_execution_exception", "queue full")
            if a.doc_id in docs
            else OK
            for a in actions
        ]

    return answer


def test_only_failed_items_are_retried_and_the_commit_waits_for_them() -> None:
    rig = Rig()
    rig.consumer.add(*(record(P0, i, event(doc, i + 1)) for i, doc in enumerate("abcd")))
    rig.search.script.append(_fail_docs({"b"}))
    commits_before_retry: list[int | None] = []

    def watch() -> bool:
        if len(rig.search.bulks) == 1:
            commits_before_retry.append(rig.consumer.committed(P0))
        return _all_settled(rig, P0, 4)

    rig.consumer.stop_when = watch
    rig.run()
    assert [[a.doc_id for a in bulk] for bulk in rig.search.bulks] == [["a", "b", "c", "d"], ["b"]]
    # While b (offset 1) was owed, nothing past offset 1 was committed.
    assert all(c is None or c <= 1 for c in commits_before_retry)
    assert rig.consumer.committed(P0) == 4
    assert rig.count("dynabridge_indexer_retries_total", table="orders") == 1


def test_outage_pauses_keeps_polling_probes_and_resumes_without_loss() -> None:
    rig = Rig(max_docs=2)
    rig.consumer.add(*(record(P0, i, event(f"d{i}", i + 1)) for i in range(6)))
    rig.search.down_until = rig.clock.now + 30.0
    max_commit_during_outage: list[int | None] = []

    def watch() -> bool:
        if rig.clock.now < rig.search.down_until:
            max_commit_during_outage.append(rig.consumer.committed(P0))
        return _all_settled(rig, P0, 6)

    rig.consumer.stop_when = watch
    rig.run()
    assert {doc for (_, doc) in rig.search.docs} == {f"d{i}" for i in range(6)}
    assert rig.consumer.consumes_while_paused > 20  # the group kept seeing us during 30 s
    assert rig.search.pings >= 3
    assert rig.consumer.resumed >= 1
    assert set(max_commit_during_outage) == {None}  # nothing was indexed, nothing committed
    assert rig.count("dynabridge_indexer_paused_seconds_total") >= 29.0


def test_records_fetched_before_the_pause_are_kept_not_dropped() -> None:
    rig = Rig(max_docs=1)
    rig.consumer.add(record(P0, 0, event("a", 1)))
    rig.search.down_until = rig.clock.now + 5.0
    # Already fetched by the client when the pause happened: delivered anyway, must be indexed.
    rig.consumer.before_consume.append(lambda c: None)
    late = [record(P0, 1, event("b", 2)), record(P0, 2, event("a", 3))]

    def inject(consumer: FakeConsumer) -> None:
        if consumer.paused:
            consumer.prefetched.extend(late)
        else:
            consumer.before_consume.append(inject)

    rig.consumer.before_consume.append(inject)
    rig.consumer.stop_when = lambda: _all_settled(rig, P0, 3)
    rig.run()
    assert rig.search.docs[("orders", "a")][0] == 3
    assert ("orders", "b") in rig.search.docs
    assert rig.consumer.committed(P0) == 3


def test_mapping_errors_go_to_the_dead_letter_topic_then_settle() -> None:
    rig = Rig()
    rig.consumer.add(
        record(P0, 0, event("a", 1)),
        record(P0, 1, event("bad", 2)),
        record(P0, 2, b"\xffgarbage"),
        record(P0, 3, event("c", 3)),
    )

    def answer(actions: Sequence[Action]) -> list[ItemResult]:
        return [
            ItemResult(400, "document_parsing_exception", "failed to parse field [v]")
            if a.doc_id == "bad"
            else OK
            for a in actions
        ]

    rig.search.script.append(answer)
    rig.consumer.stop_when = lambda: _all_settled(rig, P0, 4)
    rig.run()
    by_type = {letter.error_type: letter for letter in rig.dlq.letters}
    assert set(by_type) == {"document_parsing_exception", "undecodable"}
    mapping = by_type["document_parsing_exception"]
    assert (mapping.status, mapping.index, mapping.attempts) == (400, "orders", 1)
    assert mapping.record.offset == 1
    assert mapping.record.headers == (("h", b"1"),)
    assert by_type["undecodable"].record.value == b"\xffgarbage"
    assert rig.consumer.committed(P0) == 4
    assert (
        rig.count("dynabridge_indexer_documents_total", table="orders", result="dead_lettered") == 2
    )


def test_a_dead_letter_not_acknowledged_stops_without_committing_it() -> None:
    rig = Rig()
    rig.consumer.add(record(P0, 0, event("a", 1)), record(P0, 1, b"junk"))
    rig.dlq.fail = True
    with pytest.raises(IndexerFatal, match="dead-letter"):
        rig.run()
    assert rig.consumer.closed
    assert (rig.consumer.committed(P0) or 0) <= 1


def test_fatal_outcome_stops_with_one_line_and_commits_only_what_settled() -> None:
    rig = Rig()
    rig.consumer.add(*(record(P0, i, event(doc, i + 1)) for i, doc in enumerate("abc")))

    def answer(actions: Sequence[Action]) -> list[ItemResult]:
        return [
            ItemResult(403, "security_exception", "no privilege") if a.doc_id == "b" else OK
            for a in actions
        ]

    rig.search.script.append(answer)
    with pytest.raises(IndexerFatal) as caught:
        rig.run()
    assert "\n" not in str(caught.value)
    assert "403" in str(caught.value)
    assert rig.consumer.committed(P0) == 1  # a settled; b (offset 1) never passed
    assert rig.consumer.closed


def test_stop_finishes_the_open_batch_and_commits() -> None:
    rig = Rig()
    rig.consumer.add(record(P0, 0, event("a", 1)), record(P0, 1, event("b", 2)))
    rig.consumer.stop_when = lambda: rig.consumer.consume_calls >= 2
    rig.run()
    assert len(rig.search.docs) == 2
    assert rig.consumer.committed(P0) == 2
    assert rig.consumer.closed


def test_stop_during_an_outage_abandons_within_the_timeout_and_commits_what_settled() -> None:
    rig = Rig(max_docs=1)
    rig.consumer.add(record(P0, 0, event("a", 1)), record(P0, 1, event("b", 2)))
    rig.search.script.append(lambda actions: [OK for _ in actions])
    rig.consumer.stop_when = lambda: len(rig.search.bulks) >= 1 and rig.clock.now > 1001

    def go_down(consumer: FakeConsumer) -> None:
        if rig.search.bulks:
            rig.search.down_until = rig.clock.now + 3600
        else:
            consumer.before_consume.append(go_down)

    rig.consumer.before_consume.append(go_down)
    started = rig.clock.now
    rig.run()
    assert rig.clock.now - started < 3600
    assert rig.consumer.committed(P0) == 1  # a indexed, b abandoned (read again next time)
    assert rig.consumer.closed


def test_revoke_commits_settled_offsets_and_drops_the_partitions_pending_changes() -> None:
    rig = Rig(partitions=(P0, P1))
    rig.consumer.add(record(P0, 0, event("a", 1)), record(P1, 0, event("b", 1)))
    rig.search.script.append(_fail_docs({"b"}))
    revoked = False

    def watch() -> bool:
        nonlocal revoked
        if len(rig.search.bulks) == 1 and not revoked:
            revoked = True
            rig.consumer.revoke(P1)
        return revoked and _all_settled(rig, P0, 1)

    rig.consumer.stop_when = watch
    rig.run()
    # a settled and committed on revoke or after; b belongs to P1's next owner: never retried here.
    assert rig.consumer.committed(P0) == 1
    assert rig.consumer.committed(P1) is None
    assert [[a.doc_id for a in bulk] for bulk in rig.search.bulks] == [["a", "b"]]
    assert rig.consumer.resumed >= 1


def test_the_next_batch_is_read_while_a_bulk_is_in_flight_but_sent_only_after_it_settles() -> None:
    rig = Rig(max_docs=2)
    started, release = threading.Event(), threading.Event()
    seen_while_in_flight: list[tuple[int, int]] = []

    def slow(actions: Sequence[Action]) -> list[ItemResult]:
        started.set()
        assert release.wait(10)
        return [OK for _ in actions]

    def referee() -> None:
        assert started.wait(10)
        deadline = time.monotonic() + 10
        while rig.consumer.queues[P0] and time.monotonic() < deadline:
            time.sleep(0.01)
        # Everything was read while the first bulk was in flight; no second bulk went out.
        seen_while_in_flight.append((len(rig.consumer.queues[P0]), len(rig.search.bulks)))
        release.set()

    rig.search.script.append(slow)
    rig.consumer.add(*(record(P0, i, event(f"d{i}", i + 1)) for i in range(4)))
    rig.consumer.stop_when = lambda: _all_settled(rig, P0, 4)
    rig.consumer.deadline = float("inf")
    threading.Thread(target=referee, daemon=True).start()
    worker = Worker(
        rig.worker._config,
        rig.consumer,
        rig.search,
        rig.dlq,
        rig.metrics,
        Heartbeat(60.0),
        rig.consumer.stop,
        decode=decode,
    )  # the default submit: a real helper thread for the bulk
    worker.run()
    assert seen_while_in_flight == [(0, 1)]
    assert [len(bulk) for bulk in rig.search.bulks] == [2, 2]
    assert rig.consumer.committed(P0) == 4


def test_revoke_during_a_bulk_waits_for_it_and_commits_what_it_settled() -> None:
    rig = Rig(partitions=(P0, P1))
    started, release = threading.Event(), threading.Event()

    def slow(actions: Sequence[Action]) -> list[ItemResult]:
        started.set()
        assert release.wait(10)
        return [OK for _ in actions]

    def revoke_when_in_flight(consumer: FakeConsumer) -> None:
        if not started.is_set():
            consumer.before_consume.append(revoke_when_in_flight)
            return
        threading.Timer(0.2, release.set).start()  # the engine answers a little later
        consumer.revoke(P1)  # returns only once the in-flight bulk settled and P1 committed

    rig.search.script.append(slow)
    rig.consumer.add(record(P0, 0, event("a", 1)), record(P1, 0, event("b", 1)))
    rig.consumer.before_consume.append(revoke_when_in_flight)
    rig.consumer.stop_when = lambda: _all_settled(rig, P0, 1)
    rig.consumer.deadline = float("inf")
    worker = Worker(
        rig.worker._config,
        rig.consumer,
        rig.search,
        rig.dlq,
        rig.metrics,
        Heartbeat(60.0),
        rig.consumer.stop,
        decode=decode,
    )
    worker.run()
    assert rig.consumer.committed(P1) == 1  # committed on revoke, before P1 was given away
    assert rig.consumer.committed(P0) == 1
    assert len(rig.search.bulks) == 1


def test_malformed_images_on_the_trusted_decode_path_are_dead_lettered_not_dropped() -> None:
    """decode(validate=False) leaves image values to to_plain_json: a bad one is invalid_change."""
    rig = Rig(decode=partial(decode, validate=False))
    good = event("a", 1)
    rig.consumer.add(
        record(P0, 0, good),
        record(P0, 1, replace(event("b", 2), new_image={"v": {"N": "not a number"}})),
        record(P0, 2, replace(event("c", 3), new_image={"v": {"X": "1"}})),
        record(P0, 3, replace(event("d", 4), new_image={"v": {"S": "x", "N": "1"}})),
        record(P0, 4, event("e", 5)),
    )
    rig.consumer.stop_when = lambda: _all_settled(rig, P0, 5)
    rig.run()
    assert [(letter.record.offset, letter.error_type) for letter in rig.dlq.letters] == [
        (1, "invalid_change"),
        (2, "invalid_change"),
        (3, "invalid_change"),
    ]
    assert "malformed attribute v" in rig.dlq.letters[0].reason
    assert set(rig.search.docs) == {("orders", "a"), ("orders", "e")}
    assert rig.consumer.committed(P0) == 5


def test_a_refused_change_leaves_no_older_version_looking_current() -> None:
    rig = Rig()
    rig.consumer.add(record(P0, 0, event("a", 1)))
    rig.consumer.stop_when = lambda: _all_settled(rig, P0, 1)
    rig.run()
    assert ("orders", "a") in rig.search.docs, "the premise: an older version is indexed"

    rig = Rig(search=rig.search)  # a later run of the loop over the same engine
    rig.consumer.add(record(P0, 1, event("a", 2)), record(P0, 2, event("b", 3)))
    refused = ItemResult(400, "document_parsing_exception", "strict")
    rig.search.script.append(
        lambda actions: [refused if a.doc_id == "a" else rig.search.apply(a) for a in actions]
    )
    rig.consumer.stop_when = lambda: _all_settled(rig, P0, 3)
    rig.run()
    assert [letter.record.offset for letter in rig.dlq.letters] == [1]
    assert ("orders", "a") not in rig.search.docs, "the version before the refused one is gone"
    assert rig.search.tombstones[("orders", "a")][0] == 2, "deleted at the refused version"
    assert ("orders", "b") in rig.search.docs
    assert rig.consumer.committed(P0) == 3
    assert rig.count("dynabridge_indexer_documents_total", table="orders", result="deleted") == 0
    dead = rig.count("dynabridge_indexer_documents_total", table="orders", result="dead_lettered")
    assert dead == 1


def _flaky_registry(failures: int, error: Exception) -> Callable[[bytes], ChangeEvent]:
    """A decode whose registry look-ups fail ``failures`` times with ``error``, then work."""
    left = [failures]

    def decode_(value: bytes) -> ChangeEvent:
        if left[0] > 0:
            left[0] -= 1
            raise error
        return decode(value)

    return decode_


def test_an_unreachable_registry_pauses_and_retries_and_never_dead_letters() -> None:
    error = SchemaRegistryError("schema registry GET /schemas/ids/3 failed: refused")
    rig = Rig(decode=_flaky_registry(3, error))
    rig.consumer.add(*(record(P0, i, event(doc, i + 1)) for i, doc in enumerate("abc")))
    paused_while_waiting: list[bool] = []
    rig.consumer.before_consume.append(lambda c: paused_while_waiting.append(P0 in c.paused))
    rig.consumer.stop_when = lambda: _all_settled(rig, P0, 3)
    rig.run()
    assert rig.dlq.letters == []
    assert sorted(doc for _, doc in rig.search.docs) == ["a", "b", "c"]
    assert rig.consumer.committed(P0) == 3
    assert rig.consumer.consumes_while_paused > 0, "it kept polling while it waited"
    assert rig.clock.now >= 1000.0 + 0.5 + 1.0 + 2.0, "three backoffs (draw=1: their ceilings)"


def test_commits_never_pass_a_record_waiting_for_its_schema() -> None:
    error = SchemaRegistryError("schema registry GET /schemas/ids/3: HTTP 503", status=503)
    rig = Rig(decode=_flaky_registry(10**6, error))
    rig.consumer.add(*(record(P0, i, event(doc, i + 1)) for i, doc in enumerate("ab")))
    rig.consumer.deadline = rig.clock.now + 60.0
    rig.run()
    assert rig.dlq.letters == []
    assert rig.consumer.committed(P0) is None
    assert rig.search.docs == {}


@pytest.mark.parametrize(
    ("error", "raised", "message"),
    [
        (SchemaRegistryError("HTTP 401 Unauthorized", status=401), ConfigError, "credentials"),
        (UnknownSchema("unknown schema fingerprint 00ff"), IndexerFatal, "deploy an indexer"),
    ],
)
def test_a_registry_refusal_or_an_unknown_schema_stops_without_a_dead_letter(
    error: Exception, raised: type[Exception], message: str
) -> None:
    rig = Rig(decode=_flaky_registry(1, error))
    rig.consumer.add(record(P0, 0, event("a", 1)), record(P0, 1, event("b", 2)))
    with pytest.raises(raised, match=message):
        rig.run()
    assert rig.dlq.letters == []
    assert rig.consumer.committed(P0) is None
