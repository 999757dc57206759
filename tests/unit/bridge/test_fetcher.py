"""The fetch stage: many shards at once, one call per shard, pages bounded, the loop in charge.

Stage-level tests run against both the threaded ``Fetcher`` and the ``InlineFetcher`` the
loop's other unit tests use, so the two keep the same budget semantics. Loop-level tests run
the real worker with the threaded stage, real time and fakes for the rest; they wait with
deadlines, never with sleeps.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bridge.fetcher import (
    DEFAULT_BYTES_PER_RECORD,
    MIN_PAGE_LIMIT,
    Completed,
    Fetcher,
    InlineFetcher,
    page_limit,
)
from bridge.metrics import BridgeMetrics
from bridge.reader import FetchRequest, IteratorRequest, IteratorType, Page
from bridge.runtime.health import Heartbeat
from bridge.runtime.settings import BridgeSettings
from bridge.worker import Worker
from tests.polling import wait_for
from tests.unit.bridge.test_worker import (
    ARN,
    FakeCoordinator,
    FakeKeeper,
    FakePublisher,
    lease,
    rec,
)

# -- page sizes ---------------------------------------------------------------------------------


def test_one_busy_shard_gets_the_configured_limit() -> None:
    assert page_limit(1000, 16 << 20, 1, 2048) == 1000


def test_many_busy_shards_share_the_byte_budget() -> None:
    assert page_limit(1000, 16 << 20, 64, 2048) == (16 << 20) // 64 // 2048 == 128


def test_a_share_never_falls_below_the_minimum_nor_above_the_configured_limit() -> None:
    assert page_limit(1000, 1 << 20, 4096, 4096) == MIN_PAGE_LIMIT
    assert page_limit(10, 1 << 20, 4096, 4096) == 10
    assert page_limit(1000, 1 << 30, 1, 10) == 1000


def test_an_unknown_record_size_counts_as_the_default() -> None:
    assert page_limit(1000, 1 << 20, 4, 0) == (1 << 20) // 4 // DEFAULT_BYTES_PER_RECORD


def test_a_caught_up_shard_asks_for_a_small_page_and_grows_it_as_records_flow() -> None:
    assert page_limit(1000, 16 << 20, 1, 2048, last_records=0) == MIN_PAGE_LIMIT
    assert page_limit(1000, 16 << 20, 1, 2048, last_records=1) == MIN_PAGE_LIMIT
    assert page_limit(1000, 16 << 20, 1, 2048, last_records=25) == 100
    assert page_limit(1000, 16 << 20, 1, 2048, last_records=100) == 400
    assert page_limit(1000, 16 << 20, 1, 2048, last_records=400) == 1000
    assert page_limit(1000, 16 << 20, 64, 2048, last_records=128) == 128, "the share still caps"
    assert page_limit(10, 16 << 20, 1, 2048, last_records=0) == 10, "never above configured"


def test_idle_polls_of_many_shards_leave_the_byte_budget_to_pages_with_records() -> None:
    budget, per_record = 16 << 20, 2048
    reserved = 64 * page_limit(1000, budget, 1, per_record, last_records=0) * per_record
    assert reserved < budget / 4


# -- the stage, threaded or inline ------------------------------------------------------------


class InstantStreams:
    """Answers every GetRecords at once with a page of ``wire_bytes``."""

    def __init__(self, wire_bytes: int = 100) -> None:
        self.wire_bytes = wire_bytes
        self.calls = 0

    def shard_iterator(self, stream_arn: str, shard_id: str, request: IteratorRequest) -> str:
        return shard_id

    def records(self, iterator: str, limit: int) -> Page:
        self.calls += 1
        return Page([], iterator, wire_bytes=self.wire_bytes)


def request(shard: str = "s") -> FetchRequest:
    return FetchRequest(ARN, shard, shard, IteratorRequest(IteratorType.TRIM_HORIZON), 100)


Stage = Fetcher | InlineFetcher


@pytest.fixture(params=["threaded", "inline"])
def make_stage(request: pytest.FixtureRequest) -> Iterator[Callable[..., Stage]]:
    made: list[Stage] = []

    def make(streams: Any, *, max_pages: int, max_bytes: int) -> Stage:
        stage: Stage
        if request.param == "threaded":
            stage = Fetcher(streams, threads=4, max_pages=max_pages, max_bytes=max_bytes)
        else:
            stage = InlineFetcher(streams, max_pages=max_pages, max_bytes=max_bytes)
        stage.start()
        made.append(stage)
        return stage

    yield make
    for stage in made:
        stage.close()


def collect(stage: Stage, count: int) -> list[Completed]:
    done: list[Completed] = []

    def enough() -> bool:
        done.extend(stage.completed())
        return len(done) >= count

    wait_for(enough, 10, f"{count} fetches to finish", every_s=0.01)
    return done


def test_the_page_count_bounds_fetching_until_the_loop_releases(
    make_stage: Callable[..., Stage],
) -> None:
    stage = make_stage(InstantStreams(), max_pages=3, max_bytes=1 << 30)
    for shard in "abc":
        assert stage.room()
        stage.submit(shard, request(shard), 100)
    assert not stage.room()
    done = collect(stage, 3)
    assert not stage.room(), "fetched but unpublished pages still count"
    stage.release(done[0])
    assert stage.room()
    assert stage.held() == (2, 200)


def test_the_bytes_of_arrived_pages_bound_fetching(make_stage: Callable[..., Stage]) -> None:
    stage = make_stage(InstantStreams(wire_bytes=600_000), max_pages=100, max_bytes=1_000_000)
    stage.submit("a", request("a"), 1)
    first = collect(stage, 1)
    assert stage.room()
    stage.submit("b", request("b"), 1)
    second = collect(stage, 1)
    assert stage.held() == (2, 1_200_000)
    assert not stage.room()
    stage.release(first[0])
    stage.release(second[0])
    assert stage.room()
    assert stage.held() == (0, 0)


def test_a_failure_outside_the_readers_errors_is_handed_over(
    make_stage: Callable[..., Stage],
) -> None:
    class Broken(InstantStreams):
        def records(self, iterator: str, limit: int) -> Page:
            raise RuntimeError("no such luck")

    stage = make_stage(Broken(), max_pages=10, max_bytes=1 << 20)
    stage.submit("a", request("a"), 1)
    (done,) = collect(stage, 1)
    assert done.fetched is None
    assert isinstance(done.fatal, RuntimeError)
    assert done.owner == "a"


def test_fetches_run_in_parallel_on_the_threaded_stage() -> None:
    barrier = threading.Barrier(4, timeout=10)

    class Meeting(InstantStreams):
        def records(self, iterator: str, limit: int) -> Page:
            barrier.wait()  # passes only once 4 calls are in flight together
            return super().records(iterator, limit)

    stage = Fetcher(Meeting(), threads=4, max_pages=10, max_bytes=1 << 20)
    stage.start()
    try:
        for shard in "abcd":
            stage.submit(shard, request(shard), 1)
        done = collect(stage, 4)
        assert all(d.fetched is not None and d.fetched.page is not None for d in done)
    finally:
        stage.close()


def test_one_fetch_at_a_time_stays_on_the_thread_that_went_idle_last() -> None:
    names: list[str] = []

    class Named(InstantStreams):
        def records(self, iterator: str, limit: int) -> Page:
            names.append(threading.current_thread().name)
            return super().records(iterator, limit)

    threads = 8
    stage = Fetcher(Named(), threads=threads, max_pages=10, max_bytes=1 << 20)
    stage.start()
    try:
        for _ in range(threads * 2):
            wait_for(lambda: len(stage._idle) == threads, 10, "every thread idle", every_s=0.001)
            stage.submit("a", request("a"), 1)
            for completed in collect(stage, 1):
                stage.release(completed)
        assert len(names) == threads * 2
        assert len(set(names[1:])) == 1, names  # woken in turn, they would rotate through all
    finally:
        stage.close()


# -- the loop with the threaded stage ---------------------------------------------------------


class ShardedStreams:
    """``pages`` records per shard, served in pages of ``page_size`` with a random latency;
    checks that no shard ever has two calls in flight and that shards are read in parallel."""

    def __init__(self, shards: int, records: int, page_size: int, seed: int = 1) -> None:
        self.shards = [f"shard-{s}" for s in range(shards)]
        self.records_per_shard = records
        self.page_size = page_size
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.in_flight: Counter[str] = Counter()
        self.max_per_shard = 0
        self.max_overall = 0
        self.calls: Counter[str] = Counter()
        self.gates: dict[str, threading.Event] = {}

    def shard_iterator(self, stream_arn: str, shard_id: str, request: IteratorRequest) -> str:
        return f"{shard_id}#0"

    def records(self, iterator: str, limit: int) -> Page:
        shard, start_text = iterator.split("#")
        start = int(start_text)
        with self.lock:
            self.in_flight[shard] += 1
            self.calls[shard] += 1
            self.max_per_shard = max(self.max_per_shard, self.in_flight[shard])
            self.max_overall = max(self.max_overall, sum(self.in_flight.values()))
            latency_s = self.rng.uniform(0.001, 0.01)
        try:
            gate = self.gates.get(shard)
            if gate is not None:
                gate.wait(30)
            time.sleep(latency_s)  # the endpoint's latency, not synchronisation
            end = min(self.records_per_shard, start + min(limit, self.page_size))
            base = (self.shards.index(shard) + 1) * 10_000
            return Page([rec(base + n) for n in range(start, end)], f"{shard}#{end}")
        finally:
            with self.lock:
                self.in_flight[shard] -= 1


def threaded_worker(
    coordinator: FakeCoordinator,
    streams: Any,
    publisher: FakePublisher,
    stop: threading.Event,
    *,
    threads: int = 4,
    max_pages: int = 64,
    **overrides: Any,
) -> tuple[Worker, Fetcher]:
    settings = BridgeSettings(
        tables=["orders"], worker_id="w1", idle_poll_min_s=0.01, idle_poll_max_s=0.02, **overrides
    )
    fetcher = Fetcher(streams, threads=threads, max_pages=max_pages, max_bytes=1 << 24)
    worker = Worker(
        coordinator,
        streams,
        publisher,
        BridgeMetrics(),
        Heartbeat(60.0),
        settings,
        stop,
        keeper=FakeKeeper(),
        fetcher=fetcher,
    )
    return worker, fetcher


def run_in_thread(worker: Worker) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            worker.run()
        except BaseException as error:  # noqa: BLE001 - handed to the test
            errors.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, errors


def test_shards_are_read_in_parallel_each_in_order_one_call_at_a_time() -> None:
    streams = ShardedStreams(shards=8, records=60, page_size=7)
    total = 8 * 60
    stop, publisher = threading.Event(), FakePublisher()

    def tick(turn: int) -> None:
        publisher.deliver_all()
        if len(publisher.sent) >= total:
            stop.set()

    leases = [lease(shard) for shard in streams.shards]
    coordinator = FakeCoordinator(leases, tick)
    worker, _ = threaded_worker(coordinator, streams, publisher, stop)
    thread, errors = run_in_thread(worker)
    thread.join(60)
    assert not thread.is_alive()
    assert errors == []
    by_shard: dict[str, list[Any]] = {}
    for sent in publisher.sent:
        by_shard.setdefault(sent.event.shard_id, []).append(sent.event)
    for shard, events in by_shard.items():
        base = (streams.shards.index(shard) + 1) * 10_000
        assert [e.sequence_number for e in events] == [f"{base + n:021d}" for n in range(60)]
        versions = [e.version for e in events]
        assert versions == sorted(set(versions)), f"{shard}: versions not strictly increasing"
    assert len(by_shard) == 8
    assert streams.max_per_shard == 1, "a shard had two GetRecords in flight"
    assert streams.max_overall > 1, "shards were never read at the same time"
    for shard in streams.shards:
        base = (streams.shards.index(shard) + 1) * 10_000
        assert coordinator.checkpoints(lease(shard).lease_key)[-1] == f"{base + 59:021d}"


def test_a_slow_kafka_stops_the_fetching_instead_of_piling_pages_up() -> None:
    streams = ShardedStreams(shards=8, records=10_000, page_size=10)
    stop, unblock = threading.Event(), threading.Event()
    blocked_at: list[int] = []

    class FullQueue(FakePublisher):
        def publish(self, event: Any, on_delivery: Callable[[str | None], None]) -> None:
            if len(self.sent) == 50 and not unblock.is_set():
                blocked_at.append(sum(streams.calls.values()))
                unblock.wait(30)  # what KafkaPublisher does while librdkafka's queue is full
            super().publish(event, on_delivery)

    publisher = FullQueue()

    def tick(turn: int) -> None:
        publisher.deliver_all()
        if len(publisher.sent) >= 400:
            stop.set()

    coordinator = FakeCoordinator([lease(s) for s in streams.shards], tick)
    worker, fetcher = threaded_worker(coordinator, streams, publisher, stop, max_pages=5)
    thread, errors = run_in_thread(worker)
    wait_for(lambda: blocked_at, 30, "the publisher to block")
    wait_for(lambda: fetcher.calls_in_flight() == 0, 30, "the fetches in flight to finish")
    calls = sum(streams.calls.values())
    assert calls - blocked_at[0] <= 5
    assert fetcher.held()[0] <= 5
    time.sleep(0.3)  # a window in which an unbounded stage would keep fetching
    assert sum(streams.calls.values()) == calls, "fetching went on while Kafka was full"
    unblock.set()
    thread.join(60)
    assert not thread.is_alive()
    assert errors == []
    assert len(publisher.sent) >= 400


def test_a_page_whose_lease_was_lost_during_the_fetch_is_never_published() -> None:
    streams = ShardedStreams(shards=2, records=5, page_size=5)
    gate = streams.gates["shard-1"] = threading.Event()
    stop, publisher = threading.Event(), FakePublisher()
    mine, gone = lease("shard-0"), lease("shard-1")

    def tick(turn: int) -> None:
        publisher.deliver_all()
        if streams.in_flight["shard-1"] and gone.lease_key in coordinator.held:
            coordinator.lose(gone.lease_key)  # while its GetRecords is in flight
            gate.set()

    coordinator = FakeCoordinator([mine, gone], tick)
    worker, fetcher = threaded_worker(coordinator, streams, publisher, stop)
    thread, errors = run_in_thread(worker)
    wait_for(lambda: gate.is_set() and fetcher.held() == (0, 0), 30, "the lost page's release")
    wait_for(lambda: len(publisher.sent) >= 5, 30, "shard-0's records")
    stop.set()
    thread.join(30)
    assert not thread.is_alive()
    assert errors == []
    assert {s.event.shard_id for s in publisher.sent} == {"shard-0"}
    assert coordinator.checkpoints(gone.lease_key) == []


def test_shutdown_does_not_wait_for_a_call_stuck_in_flight() -> None:
    streams = ShardedStreams(shards=1, records=5, page_size=5)
    gate = streams.gates["shard-0"] = threading.Event()
    stop, publisher = threading.Event(), FakePublisher()
    coordinator = FakeCoordinator([lease("shard-0")], lambda turn: None)
    worker, _fetcher = threaded_worker(coordinator, streams, publisher, stop)
    thread, errors = run_in_thread(worker)
    wait_for(lambda: streams.in_flight["shard-0"] == 1, 30, "the call to block")
    stop.set()
    thread.join(10)
    try:
        assert not thread.is_alive(), "shutdown waited for the blocked GetRecords"
        assert errors == []
        assert coordinator.calls[-1] == ("release_all",)
        assert publisher.sent == []
    finally:
        gate.set()


def test_a_fatal_fetch_error_stops_the_loop() -> None:
    class Failing(ShardedStreams):
        def records(self, iterator: str, limit: int) -> Page:
            raise RuntimeError("AccessDenied")

    stop, publisher = threading.Event(), FakePublisher()
    coordinator = FakeCoordinator([lease("shard-0")], lambda turn: None)
    worker, _ = threaded_worker(coordinator, Failing(1, 1, 1), publisher, stop)
    thread, errors = run_in_thread(worker)
    thread.join(30)
    assert not thread.is_alive()
    assert [str(e) for e in errors] == ["AccessDenied"]
    assert ("release_all",) not in coordinator.calls, "crash-only: leases expire instead"


def test_busy_shards_ask_for_their_share_of_the_byte_budget() -> None:
    streams = ShardedStreams(shards=4, records=2_000, page_size=1000)
    limits: list[int] = []
    original = streams.records

    def recording(iterator: str, limit: int) -> Page:
        limits.append(limit)
        return original(iterator, limit)

    streams.records = recording  # type: ignore[method-assign]
    stop, publisher = threading.Event(), FakePublisher()

    def tick(turn: int) -> None:
        publisher.deliver_all()
        if len(publisher.sent) >= 2_000:
            stop.set()

    coordinator = FakeCoordinator([lease(s) for s in streams.shards], tick)
    settings = BridgeSettings(tables=["orders"], worker_id="w1")
    budget = 1 << 20
    fetcher = Fetcher(streams, threads=4, max_pages=64, max_bytes=budget)
    worker = Worker(
        coordinator,
        streams,
        publisher,
        BridgeMetrics(),
        Heartbeat(60.0),
        settings,
        stop,
        keeper=FakeKeeper(),
        fetcher=fetcher,
    )
    thread, errors = run_in_thread(worker)
    thread.join(60)
    assert not thread.is_alive()
    assert errors == []
    # Four busy shards of records of unknown size: a quarter of the budget each.
    assert max(limits) == budget // 4 // DEFAULT_BYTES_PER_RECORD == 128
