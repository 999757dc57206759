"""Several bulks in flight: different documents go out together, one document's changes never do,
and no commit passes a change that has not settled, whatever order the bulks finish in."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from consumers.indexer.actions import Action, ItemResult
from consumers.indexer.batching import Batch, Entry
from consumers.indexer.inflight import InFlightDocuments
from consumers.indexer.records import Partition
from tests.polling import wait_for
from tests.unit.indexer.fakes import (
    P0,
    P1,
    DeferredBulks,
    FakeClock,
    FakeConsumer,
    FakeSearch,
    event,
    record,
)
from tests.unit.indexer.test_worker import Rig


def _docs(bulk: Sequence[Action]) -> list[str]:
    return [action.doc_id for action in bulk]


def test_bulks_of_different_documents_are_in_flight_together_and_commit_waits_for_the_oldest() -> (
    None
):
    bulks = DeferredBulks()
    rig = Rig(max_docs=2, in_flight=2, submit=bulks)
    rig.consumer.add(*(record(P0, i, event(doc, i + 1)) for i, doc in enumerate("abcd")))
    finished_second_at: list[float] = []

    def engine(consumer: FakeConsumer) -> None:
        if len(bulks.pending) == 2 and not finished_second_at:
            bulks.finish(1)  # the newer bulk answers first
            finished_second_at.append(rig.clock.now)
        elif finished_second_at and rig.clock.now > finished_second_at[0] + 3.0:
            # Three commit intervals went by with offsets 2-3 settled and 0-1 not.
            assert consumer.commits == []
            bulks.finish()
            return
        consumer.before_consume.append(engine)

    rig.consumer.before_consume.append(engine)
    rig.consumer.stop_when = lambda: rig.consumer.committed(P0) == 4
    rig.run()
    assert bulks.most_in_flight == 2
    assert [_docs(bulk) for bulk in rig.search.bulks] == [["c", "d"], ["a", "b"]]
    assert rig.consumer.commits == [{P0: 4}]  # never a position past the unsettled a, b
    assert sorted(rig.search.docs) == [("orders", doc) for doc in "abcd"]


def test_with_a_bulk_in_flight_only_a_full_batch_goes_out_beside_it() -> None:
    bulks = DeferredBulks()
    rig = Rig(max_docs=3, in_flight=2, submit=bulks)
    rig.consumer.add(*(record(P0, i, event(doc, i + 1)) for i, doc in enumerate("abcd")))
    seen: list[tuple[float, int]] = []

    def engine(consumer: FakeConsumer) -> None:
        seen.append((rig.clock.now, len(bulks.pending)))
        waited = rig.clock.now - seen[0][0]
        if len(seen) == 1 or waited < 1.0:
            consumer.before_consume.append(engine)  # [d] lingers far past linger_s (0.05 s)
        elif not consumer.queues[P0] and len(bulks.pending) == 1:
            consumer.add(*(record(P0, i, event(doc, i + 1)) for i, doc in enumerate("ef", 4)))
            consumer.before_consume.append(engine)
        elif len(bulks.pending) == 2:
            while bulks.pending:
                bulks.finish()
        else:
            consumer.before_consume.append(engine)

    rig.consumer.before_consume.append(engine)
    rig.consumer.stop_when = lambda: rig.consumer.committed(P0) == 6
    rig.run()
    assert max(pending for at, pending in seen if at < seen[0][0] + 1.0) == 1
    assert [_docs(bulk) for bulk in rig.search.bulks] == [["a", "b", "c"], ["d", "e", "f"]]


def test_a_partial_batch_goes_out_after_its_linger_once_nothing_is_in_flight() -> None:
    bulks = DeferredBulks()
    rig = Rig(max_docs=3, in_flight=2, submit=bulks)
    rig.consumer.add(*(record(P0, i, event(doc, i + 1)) for i, doc in enumerate("abcd")))
    finished_at: list[float] = []

    def engine(consumer: FakeConsumer) -> None:
        if bulks.pending and not finished_at:
            bulks.finish()  # [a b c] answers; [d] is alone now
            finished_at.append(rig.clock.now)
        elif bulks.pending:
            bulks.finish()
            return
        consumer.before_consume.append(engine)

    rig.consumer.before_consume.append(engine)
    rig.consumer.stop_when = lambda: rig.consumer.committed(P0) == 4
    rig.run()
    assert [_docs(bulk) for bulk in rig.search.bulks] == [["a", "b", "c"], ["d"]]


class Engine:
    """Runs a script against the worker from its own thread: the engine's answers arriving,
    time passing (``advance``), and conditions to wait for between them."""

    def __init__(self, bulks: DeferredBulks, clock: FakeClock, script: list[Step]) -> None:
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(bulks, clock, script))
        self._thread.daemon = True
        self._thread.start()

    def _run(self, bulks: DeferredBulks, clock: FakeClock, script: list[Step]) -> None:
        try:
            for step, argument in script:
                if step == "wait":
                    condition, what = argument
                    wait_for(condition, 30, what, every_s=0.01)
                elif step == "advance":
                    clock.now += argument
                else:
                    bulks.finish(argument)
        except BaseException as error:  # noqa: BLE001 - handed to the test's thread
            self.errors.append(error)

    def join(self) -> None:
        self._thread.join(30)
        if self.errors:
            raise self.errors[0]


Step = tuple[str, Any]
"""("wait", (condition, what)), ("advance", seconds) or ("finish", position)."""


def _run(rig: Rig, engine: Engine | None = None, timeout_s: float = 60.0) -> None:
    """``rig.run()`` on a thread of its own: a worker that hangs fails the test, not the suite
    (with the engine script's own error, when it failed first)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            rig.run()
        except BaseException as error:  # noqa: BLE001 - handed to the test's thread
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if engine is not None:
        engine.join()
    assert not thread.is_alive(), f"the worker did not stop within {timeout_s:g}s"
    if errors:
        raise errors[0]


def test_a_change_waits_while_an_older_change_of_its_document_is_in_flight() -> None:
    bulks = DeferredBulks()
    rig = Rig(max_docs=2, in_flight=2, submit=bulks, poll_timeout_s=0.01)
    # Batches [a@1 b@2] [a@3 c@4] [d@5 e@6]: the second holds a, in flight in the first.
    docs = ["a", "b", "a", "c", "d", "e"]
    rig.consumer.add(*(record(P0, i, event(doc, i + 1)) for i, doc in enumerate(docs)))
    rig.consumer.stop_when = lambda: rig.consumer.committed(P0) == 6
    rig.consumer.deadline = float("inf")
    observed: list[int] = []

    def blocked() -> bool:
        # The loop read [a@3 c@4], closed that batch, and stopped reading: it is waiting.
        return len(rig.consumer.queues[P0]) == 2 and bool(rig.worker._ready)

    def still_one_in_flight() -> bool:
        observed.append(len(bulks.pending))
        return len(observed) >= 20  # the loop turned meanwhile (it waits 10 ms per turn)

    engine = Engine(
        bulks,
        rig.clock,
        [
            ("wait", (blocked, "the second batch to wait")),
            ("wait", (still_one_in_flight, "a few turns of the loop")),
            ("finish", 0),
            ("wait", (lambda: len(bulks.pending) == 2, "the two waiting batches to go out")),
            ("finish", 1),  # the third batch answers before the second: any order is safe
            ("finish", 0),
        ],
    )
    _run(rig, engine)
    assert set(observed) == {1}  # [a@3 c@4] never went out while [a@1 b@2] was in flight
    assert [_docs(bulk) for bulk in rig.search.bulks] == [["a", "b"], ["d", "e"], ["a", "c"]]
    assert rig.search.docs[("orders", "a")][0] == 3
    assert rig.count("dynabridge_indexer_documents_total", table="orders", result="stale") == 0


def test_a_document_waiting_for_a_retry_holds_its_next_change_back() -> None:
    bulks = DeferredBulks()
    rig = Rig(max_docs=2, in_flight=2, submit=bulks, poll_timeout_s=0.01)
    refused: list[str] = []

    def first_refuses_a(actions: Sequence[Action]) -> list[ItemResult]:
        refused.extend(a.doc_id for a in actions if a.doc_id == "a")
        return [
            ItemResult(429, "es_rejected_execution_exception", "queue full")
            if a.doc_id == "a"
            else rig.search.apply(a)
            for a in actions
        ]

    rig.search.script.append(first_refuses_a)
    docs = ["a", "b", "c", "d", "a", "e"]  # [a@1 b@2] [c@3 d@4] [a@5 e@6]
    rig.consumer.add(*(record(P0, i, event(doc, i + 1)) for i, doc in enumerate(docs)))
    rig.consumer.stop_when = lambda: rig.consumer.committed(P0) == 6
    rig.consumer.deadline = float("inf")
    engine = Engine(
        bulks,
        rig.clock,
        [
            ("wait", (lambda: len(bulks.pending) == 2, "two bulks in flight")),
            ("finish", 0),  # a@1 refused with 429: retried alone after a backoff
            ("wait", (lambda: rig.consumer.paused, "consumption paused for the retry")),
            ("advance", 1.0),  # the backoff is over
            ("wait", (lambda: len(bulks.pending) == 2, "the retry of a@1")),
            ("finish", 1),  # a@1 indexed
            ("wait", (lambda: len(bulks.pending) == 2, "[a@5 e@6] after the retry")),
            ("finish", 0),
            ("finish", 0),
        ],
    )
    _run(rig, engine)
    sent = [_docs(bulk) for bulk in rig.search.bulks]
    assert sent[:2] == [["a", "b"], ["a"]]  # the retry went out before a's next change
    assert sent.index(["a", "e"]) > sent.index(["a"])
    assert refused == ["a"]
    assert rig.search.docs[("orders", "a")][0] == 5
    assert rig.consumer.committed(P0) == 6
    assert rig.count("dynabridge_indexer_documents_total", table="orders", result="stale") == 0


def test_the_delete_after_a_dead_letter_holds_the_documents_next_change_back() -> None:
    bulks = DeferredBulks()
    rig = Rig(max_docs=2, in_flight=3, submit=bulks, poll_timeout_s=0.01)

    def refuse_a(actions: Sequence[Action]) -> list[ItemResult]:
        return [
            ItemResult(400, "document_parsing_exception", "failed to parse field [v]")
            if a.doc_id == "a"
            else rig.search.apply(a)
            for a in actions
        ]

    rig.search.script.append(refuse_a)
    docs = ["a", "b", "c", "d", "f", "g", "a", "e"]  # [a@1 b@2] [c@3 d@4] [f@5 g@6] [a@7 e@8]
    rig.consumer.add(*(record(P0, i, event(doc, i + 1)) for i, doc in enumerate(docs)))
    rig.consumer.stop_when = lambda: rig.consumer.committed(P0) == 8
    rig.consumer.deadline = float("inf")
    observed: list[int] = []

    def a_few_turns_later() -> bool:
        observed.append(len(bulks.pending))
        return len(observed) >= 20

    engine = Engine(
        bulks,
        rig.clock,
        [
            ("wait", (lambda: len(bulks.pending) == 3, "three bulks in flight")),
            ("finish", 0),  # a@1 refused: its dead letter, then the delete at its version
            ("wait", (lambda: len(bulks.pending) == 3, "the delete of the refused version")),
            ("finish", 0),  # [c@3 d@4]: room for one more, but [a@7 e@8] holds a
            ("wait", (a_few_turns_later, "a few turns of the loop")),
            ("finish", 1),  # the delete: now [a@7 e@8] may go
            ("wait", (lambda: len(bulks.pending) == 2, "[a@7 e@8] after the delete")),
            ("finish", 0),
            ("finish", 0),
        ],
    )
    _run(rig, engine)
    assert set(observed) == {2}  # [a@7 e@8] stayed back while a's delete was in flight
    sent = [_docs(bulk) for bulk in rig.search.bulks]
    assert sent == [["a", "b"], ["c", "d"], ["a"], ["f", "g"], ["a", "e"]]
    assert [(letter.record.offset, letter.error_type) for letter in rig.dlq.letters] == [
        (0, "document_parsing_exception")
    ]
    assert rig.search.docs[("orders", "a")][0] == 7
    assert rig.consumer.committed(P0) == 8
    assert rig.count("dynabridge_indexer_documents_total", table="orders", result="stale") == 0


def test_revoke_waits_only_for_the_bulks_holding_the_revoked_partition() -> None:
    bulks = DeferredBulks()
    rig = Rig(partitions=(P0, P1), max_docs=1, in_flight=2, submit=bulks, poll_timeout_s=0.01)
    rig.consumer.add(record(P0, 0, event("a", 1)), record(P1, 0, event("b", 1)))
    rig.consumer.deadline = float("inf")
    revoked: list[dict[object, int | None]] = []
    lock = threading.Lock()

    def revoke_when_both_in_flight(consumer: FakeConsumer) -> None:
        if len(bulks.pending) < 2:
            consumer.before_consume.append(revoke_when_both_in_flight)
            return
        # The engine answers P1's bulk a little later, from its own thread; P0's stays open
        # (a revoke that waited for it too would be released, late, by the second timer).
        threading.Timer(0.2, bulks.finish, args=(1,)).start()
        threading.Timer(5.0, finish_p0).start()
        consumer.revoke(P1)  # returns once P1's bulk settled and its position was committed
        with lock:
            revoked.append(
                {
                    "pending": len(bulks.pending),
                    P0: consumer.committed(P0),
                    P1: consumer.committed(P1),
                }
            )
        finish_p0()

    def finish_p0() -> None:
        with lock:
            if bulks.pending:
                bulks.finish(0)

    rig.consumer.before_consume.append(revoke_when_both_in_flight)
    rig.consumer.stop_when = lambda: rig.consumer.committed(P0) == 1
    rig.run()
    # P0's bulk was still in flight (not awaited), and not committed early.
    assert revoked == [{"pending": 1, P0: None, P1: 1}]
    assert rig.consumer.committed(P0) == 1


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.integers(0, 1), st.sampled_from("abc")), min_size=1, max_size=24),
    st.lists(st.integers(0, 3), min_size=1, max_size=40),
    st.integers(1, 3),
    st.integers(1, 4),
    st.sets(st.integers(1, 24), max_size=6),
)
def test_any_finishing_order_keeps_each_documents_order_and_never_commits_past_a_gap(
    changes: list[tuple[int, str]],
    picks: list[int],
    in_flight: int,
    max_docs: int,
    refused_once: set[int],
) -> None:
    """Random changes (documents repeat) on two partitions, random bulk sizes, bulks finishing
    in a random order, some items refused once with 429 (retried): the oracle is the engine's
    own state at every commit, and no write ever arriving older than what it holds."""
    partitions = (P0, P1)
    versions: dict[Partition, list[tuple[str, int]]] = {P0: [], P1: []}

    class Busy429(FakeSearch):
        def apply(self, action: Action) -> ItemResult:
            if action.version in refused_once:
                refused_once.discard(action.version)
                return ItemResult(429, "es_rejected_execution_exception", "queue full")
            return super().apply(action)

    class CheckedConsumer(FakeConsumer):
        def commit(self, offsets: dict[Partition, int]) -> None:  # type: ignore[override]
            for partition, position in offsets.items():
                for doc, version in versions[partition][:position]:
                    stored = rig.search.docs.get(("orders", doc), (0, None))[0]
                    assert stored >= version, f"{partition}: {position} passes {doc}@{version}"
            super().commit(offsets)

    bulks = DeferredBulks()
    clock = FakeClock()
    rig = Rig(
        partitions=partitions,
        max_docs=max_docs,
        search=Busy429(clock),
        in_flight=in_flight,
        submit=bulks,
        consumer=CheckedConsumer,
        poll_timeout_s=0.005,
    )
    for version, (number, doc) in enumerate(changes, start=1):
        partition = partitions[number]
        name = f"{doc}{number}"  # one key, one partition: as the bridge's partitioner does
        offset = len(versions[partition])
        versions[partition].append((name, version))
        rig.consumer.add(record(partition, offset, event(name, version)))
    ends = {p: len(versions[p]) for p in partitions}
    rig.consumer.stop_when = lambda: all(
        rig.consumer.committed(p) == end for p, end in ends.items() if end
    )
    rig.consumer.deadline = float("inf")
    done = threading.Event()

    def engine() -> None:
        turn = 0
        while not done.is_set():
            if bulks.pending:
                bulks.finish(picks[turn % len(picks)] % len(bulks.pending))
                turn += 1
            clock.now += 0.05  # retries come due
            done.wait(0.001)

    thread = threading.Thread(target=engine, daemon=True)
    thread.start()
    try:
        _run(rig)
    finally:
        done.set()
        thread.join(10)
    assert bulks.most_in_flight <= in_flight
    newest = {name: version for p in partitions for name, version in versions[p]}
    assert {doc: rig.search.docs[("orders", doc)][0] for doc in newest} == newest
    # Each document's changes reached the engine in order: none was ever refused as stale.
    assert rig.count("dynabridge_indexer_documents_total", table="orders", result="stale") == 0


def _entry(partition: Partition, doc: str) -> Entry[str]:
    return Entry(partition, 0, "orders", doc, 1, 10, payload=doc)


def test_in_flight_documents_hold_until_released() -> None:
    busy = InFlightDocuments()
    first = Batch((_entry(P0, "a"), _entry(P0, "b")), 20, 0)
    assert busy.free(first)
    busy.hold(first)
    assert not busy.free(Batch((_entry(P0, "c"), _entry(P0, "a")), 20, 0))
    assert busy.free(Batch((_entry(P0, "c"), _entry(P1, "a")), 20, 0))  # another partition
    busy.hold(first)  # sent again (a retry): nothing new held
    assert len(busy) == 2
    busy.release(_entry(P0, "a"))
    assert busy.free(Batch((_entry(P0, "a"),), 10, 0))
    busy.release_all([_entry(P0, "b"), _entry(P0, "zz")])
    assert len(busy) == 0
