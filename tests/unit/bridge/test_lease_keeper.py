"""The lease keeper: leases stay renewed while GetRecords blocks, without racing checkpoints.

Threads are synchronised with events and conditions polled against deadlines, never with sleeps.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from bridge.coordinator import LeaseCoordinator
from bridge.lease_keeper import LeaseKeeper
from bridge.leases import Lease, LeaseTableError
from bridge.metrics import BridgeMetrics
from bridge.reader import IteratorRequest, Page
from bridge.runtime.health import Heartbeat
from bridge.runtime.settings import BridgeSettings
from bridge.worker import Worker
from tests.polling import wait_for
from tests.unit.bridge.fakes import ARN, MemoryStore, Streams, open_shard
from tests.unit.bridge.test_worker import FakeCoordinator, FakeKeeper, FakePublisher, lease

DEADLINE_S = 10.0
SETTINGS = BridgeSettings(
    tables=["t"],
    worker_id="w1",
    lease_duration_s=10,
    lease_renew_interval_s=3,
    lease_take_interval_s=5,
    shard_sync_interval_s=10,
)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    wait_for(condition, DEADLINE_S, what, every_s=0.001)


class Clock:
    """A clock the test moves; read from several threads (a float read is atomic)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class AtomicStore(MemoryStore):
    """Compare-and-set as atomic as DynamoDB's, with a thread switch just before it, so that two
    unsynchronised writers of one lease would collide; counts accepted writes per thread."""

    def __init__(self) -> None:
        super().__init__()
        self._cas = threading.Lock()
        self.writes: dict[str, int] = {}

    def replace(self, old: Lease, new: Lease) -> bool:
        time.sleep(0)  # yield the GIL: widen any race in the caller
        with self._cas:
            accepted = super().replace(old, new)
        if accepted:
            name = threading.current_thread().name
            self.writes[name] = self.writes.get(name, 0) + 1
        return accepted

    def leases(self) -> list[Lease]:
        time.sleep(0)
        with self._cas:
            return super().leases()


class BlockingStreams:
    """GetRecords blocks on the first call until released (a slow source), then pages empty."""

    def __init__(self) -> None:
        self.blocked = threading.Event()
        self.release = threading.Event()

    def shard_iterator(self, stream_arn: str, shard_id: str, request: IteratorRequest) -> str:
        return shard_id

    def records(self, iterator: str, limit: int) -> Page:
        if not self.blocked.is_set():
            self.blocked.set()
            assert self.release.wait(DEADLINE_S), "the test never released the read"
        return Page([], iterator)


@pytest.fixture
def fast_switching() -> Iterator[None]:
    previous = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(previous)


def make_coordinator(
    store: MemoryStore, clock: Callable[[], float], worker: str = "w1", **changes: object
) -> LeaseCoordinator:
    return LeaseCoordinator(
        store,
        Streams(open_shard("a"), open_shard("b")),
        worker_id=worker,
        tables=["t"],
        settings=SETTINGS.model_copy(update=changes),
        clock=clock,
    )


def run_in_thread(target: Callable[[], None]) -> tuple[threading.Thread, list[BaseException]]:
    errors: list[BaseException] = []

    def guarded() -> None:
        try:
            target()
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            errors.append(error)

    thread = threading.Thread(target=guarded, daemon=True)
    thread.start()
    return thread, errors


def test_leases_stay_renewed_while_get_records_blocks_past_the_lease_duration() -> None:
    store, clock, streams = AtomicStore(), Clock(), BlockingStreams()
    mine = make_coordinator(store, clock)
    other = make_coordinator(store, clock, "w2", max_leases_to_steal=0)  # takes expired only
    mine.start()
    other.start()
    stop = threading.Event()
    worker = Worker(
        mine,
        streams,
        FakePublisher(),
        BridgeMetrics(),
        Heartbeat(600.0, clock),
        SETTINGS,
        stop,
        keeper=LeaseKeeper(mine, clock=clock, max_wait_s=0.001),
        clock=clock,
        sleep=lambda seconds: None,
    )
    thread, errors = run_in_thread(worker.run)
    wait_until(streams.blocked.is_set, "the worker to block in GetRecords")
    counters = {key: row.counter for key, row in store.rows.items()}

    for _ in range(3 * int(SETTINGS.lease_duration_s)):  # the read blocks 30 s by our clock
        clock.now += 1.0
        wait_until(lambda: mine.due_at() > clock.now, "the keeper to catch up with the clock")
        other.tick()  # another worker watching the table must never see the leases expire

    assert {row.owner for row in store.rows.values()} == {"w1"}
    renewals = [store.rows[key].counter - counters[key] for key in counters]
    assert min(renewals) >= 9, renewals  # one per lease_renew_interval_s (3 s) over 30 s
    assert sorted(lease.shard_id for lease in mine.readable()) == ["a", "b"]
    assert other.readable() == []
    streams.release.set()
    stop.set()
    thread.join(DEADLINE_S)
    assert not thread.is_alive()
    assert errors == []
    assert {row.owner for row in store.rows.values()} == {None}  # released on shutdown


@pytest.mark.usefixtures("fast_switching")
def test_concurrent_checkpoints_and_keeper_writes_never_lose_a_lease() -> None:
    store = AtomicStore()
    hammer = SETTINGS.model_copy(
        update={
            "lease_renew_interval_s": 0.0005,
            "lease_take_interval_s": 0.0005,
            "shard_sync_interval_s": 0.002,
        }
    )
    coord = LeaseCoordinator(
        store,
        Streams(open_shard("a"), open_shard("b")),
        worker_id="w1",
        tables=["t"],
        settings=hammer,
    )
    coord.start()
    coord.tick()
    assert len(coord.readable()) == 2
    keeper = LeaseKeeper(coord, max_wait_s=0.0)
    keeper.start()
    checkpoints, deadline = 0, time.monotonic() + DEADLINE_S
    try:
        while checkpoints < 300 or store.writes.get("lease-keeper", 0) < 300:
            assert time.monotonic() < deadline, (checkpoints, store.writes)
            checkpoints += 1
            for shard in "ab":
                assert coord.checkpoint(f"{ARN}#{shard}", str(1000 + checkpoints), checkpoints)
            if checkpoints % 50 == 0:
                assert coord.record_gap(f"{ARN}#a", f"gap {checkpoints}")
            assert coord.lost() == set()
            assert len(coord.readable()) == 2
    finally:
        keeper.stop()
    keeper.raise_if_failed()
    assert store.by_shard("a").checkpoint == str(1000 + checkpoints)
    assert store.by_shard("b").last_version == checkpoints
    assert {row.owner for row in store.rows.values()} == {"w1"}
    # Every accepted write of either thread moved the counter by one; nothing was refused.
    total_writes = sum(store.writes.values())
    assert sum(row.counter for row in store.rows.values()) == total_writes


class FailingCoordinator:
    def __init__(self, error: Exception) -> None:
        self.error = error
        self.ticks = 0

    def tick(self) -> None:
        self.ticks += 1
        if self.ticks == 3:
            raise self.error

    def due_at(self) -> float:
        return 0.0


def test_a_fatal_keeper_error_stops_the_worker_with_that_error_and_no_release() -> None:
    gone = LeaseTableError("lease table 'leases': ResourceNotFoundException")
    keeper = LeaseKeeper(FailingCoordinator(gone), max_wait_s=0.0)
    stop, streams = threading.Event(), BlockingStreams()
    streams.release.set()
    coordinator = FakeCoordinator([lease()], lambda turn: None)
    worker = Worker(
        coordinator,
        streams,
        FakePublisher(),
        BridgeMetrics(),
        Heartbeat(600.0),
        SETTINGS,
        stop,
        keeper=keeper,
        sleep=lambda seconds: None,
    )
    thread, errors = run_in_thread(worker.run)
    thread.join(DEADLINE_S)
    assert not thread.is_alive(), "the worker kept running after the keeper died"
    assert errors == [gone]  # run_bridge turns any error out of run() into exit code 1
    assert ("release_all",) not in coordinator.calls  # crash-only: the leases expire
    assert not keeper._thread.is_alive()


def test_shutdown_stops_the_keeper_after_the_final_checkpoints_and_before_release() -> None:
    clock, stop, publisher = Clock(), threading.Event(), FakePublisher()
    streams = BlockingStreams()
    streams.release.set()

    def script(turn: int) -> None:
        if turn == 2:
            stop.set()

    coordinator = FakeCoordinator([lease()], script)
    worker = Worker(
        coordinator,
        streams,
        publisher,
        BridgeMetrics(),
        Heartbeat(600.0, clock),
        SETTINGS,
        stop,
        keeper=FakeKeeper(coordinator.calls),
        clock=clock,
        sleep=lambda seconds: None,
    )
    worker.run()
    names = [call[0] for call in coordinator.calls]
    assert names[0] == "keeper_start"
    assert names.index("keeper_stop") == names.index("release_all") - 1


class CountingTicks:
    def __init__(self, coordinator: LeaseCoordinator) -> None:
        self.coordinator = coordinator
        self.ticks = 0

    def tick(self) -> None:
        self.coordinator.tick()
        self.ticks += 1

    def due_at(self) -> float:
        return self.coordinator.due_at()


def test_after_release_the_keeper_renews_and_takes_nothing() -> None:
    store, clock = AtomicStore(), Clock()
    coord = make_coordinator(store, clock)
    coord.start()
    coord.tick()
    coord.release_all()
    before = dict(store.rows)
    counting = CountingTicks(coord)
    keeper = LeaseKeeper(counting, clock=clock, max_wait_s=0.0)
    clock.now += 60  # renew, take and sync all due: a late keeper tick must do none of them
    keeper.start()
    wait_until(lambda: counting.ticks >= 3, "keeper ticks")
    keeper.stop()
    keeper.raise_if_failed()
    assert store.rows == before
    assert {row.owner for row in store.rows.values()} == {None}


def test_a_lease_table_outage_does_not_make_the_keeper_spin() -> None:
    store, clock = AtomicStore(), Clock()
    coord = make_coordinator(store, clock)
    coord.start()
    coord.tick()
    store.unavailable = True
    clock.now += SETTINGS.shard_sync_interval_s  # renew, sync and take round all due
    coord.tick()
    assert coord.due_at() > clock.now  # the keeper waits before scanning again
    coord.release_all()
    assert coord.due_at() == float("inf")
