"""Checkpoint writes off the loop, and lease snapshots: the loop never waits on the lease table,
and neither changes what is checkpointed or when a lost lease stops being read."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pytest

from bridge.checkpoint_writer import (
    CheckpointWriter,
    InlineCheckpointWriter,
    Kind,
    Write,
    write,
)
from bridge.lease_snapshots import LeaseSnapshots
from bridge.leases import LeaseTableUnavailable
from bridge.metrics import BridgeMetrics
from bridge.runtime.health import Heartbeat
from bridge.runtime.settings import BridgeSettings
from bridge.worker import Worker
from tests.polling import wait_for
from tests.unit.bridge.test_fetcher import ShardedStreams, run_in_thread
from tests.unit.bridge.test_worker import FakeCoordinator, FakeKeeper, FakePublisher, lease


def checkpoint(key: str = "k", sequence: str = "1", version: int = 1) -> Write:
    return Write(key, "orders", Kind.CHECKPOINT, sequence, version)


class Target:
    def __init__(self, answer: bool | Exception = True) -> None:
        self.answer = answer
        self.calls: list[tuple[str, ...]] = []
        self.gate: threading.Event | None = None

    def checkpoint(self, lease_key: str, sequence_number: str, last_version: int) -> bool:
        self.calls.append(("checkpoint", lease_key, sequence_number))
        if self.gate is not None:
            self.gate.wait(30)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer

    def shard_end(self, lease_key: str, last_version: int) -> bool:
        self.calls.append(("shard_end", lease_key))
        return self.checkpoint(lease_key, "SHARD_END", last_version)


@pytest.mark.parametrize(
    ("answer", "written", "unavailable", "fatal"),
    [
        (True, True, False, False),
        (False, False, False, False),
        (LeaseTableUnavailable("throttled"), False, True, False),
        (RuntimeError("bug"), False, False, True),
    ],
)
def test_a_write_becomes_an_outcome(
    answer: bool | Exception, written: bool, unavailable: bool, fatal: bool
) -> None:
    outcome = write(Target(answer), checkpoint())
    assert outcome.written is written
    assert (outcome.unavailable is not None) is unavailable
    assert (outcome.fatal is not None) is fatal


def test_the_threaded_writer_reports_each_write_and_is_pending_meanwhile() -> None:
    target = Target()
    target.gate = threading.Event()
    writer = CheckpointWriter(target)
    writer.start()
    try:
        writer.submit(checkpoint("a", "5"))
        assert writer.pending("a")
        assert not writer.pending("b")
        assert not writer.idle(0.05)
        target.gate.set()
        assert writer.idle(10)
        (outcome,) = writer.outcomes()
        assert outcome.write.sequence_number == "5"
        assert outcome.written
        assert not writer.pending("a")
        assert writer.outcomes() == []
    finally:
        writer.close()


def test_the_inline_writer_writes_at_once() -> None:
    target = Target()
    writer = InlineCheckpointWriter(target)
    writer.submit(Write("a", "orders", Kind.SHARD_END, "SHARD_END", 9))
    assert target.calls[0] == ("shard_end", "a")
    assert [o.written for o in writer.outcomes()] == [True]


# -- the loop with both stages --------------------------------------------------------------


class SlowCoordinator(FakeCoordinator):
    """A coordinator whose lease-table calls block while ``gate`` is closed, as the real one
    does while its lock is held across a round of renewals."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = threading.Event()
        self.gate.set()
        self.lock = threading.Lock()

    def readable(self) -> list[Any]:
        self.gate.wait(30)
        with self.lock:
            return super().readable()

    def checkpoint(self, lease_key: str, sequence_number: str, last_version: int) -> bool:
        self.gate.wait(30)
        with self.lock:
            return super().checkpoint(lease_key, sequence_number, last_version)

    def lost(self) -> set[str]:
        with self.lock:
            return super().lost()


def worker_with_stages(
    coordinator: FakeCoordinator,
    streams: Any,
    publisher: FakePublisher,
    stop: threading.Event,
    keeper: FakeKeeper | None = None,
) -> Worker:
    from bridge.fetcher import Fetcher

    settings = BridgeSettings(
        tables=["orders"], worker_id="w1", idle_poll_min_s=0.01, idle_poll_max_s=0.02
    )
    return Worker(
        coordinator,
        streams,
        publisher,
        BridgeMetrics(),
        Heartbeat(60.0),
        settings,
        stop,
        keeper=keeper or FakeKeeper(),
        fetcher=Fetcher(streams, threads=4, max_pages=64, max_bytes=1 << 24),
        checkpoints=CheckpointWriter(coordinator),
        lease_snapshots=LeaseSnapshots(coordinator, every_s=0.01),
        checkpoint_interval_s=0.05,
    )


def test_the_loop_keeps_publishing_while_the_lease_table_is_stuck() -> None:
    streams = ShardedStreams(shards=2, records=400, page_size=10)
    stop, publisher = threading.Event(), FakePublisher()
    coordinator = SlowCoordinator([lease(s) for s in streams.shards], lambda turn: None)
    worker = worker_with_stages(coordinator, streams, publisher, stop)
    thread, errors = run_in_thread(worker)
    try:

        def checkpointed() -> bool:
            publisher.deliver_all()
            return bool(coordinator.checkpoints(lease("shard-0").lease_key))

        wait_for(checkpointed, 30, "a checkpoint", every_s=0.01)
        coordinator.gate.clear()  # renewals hold the lock: no query, no write gets through
        stuck_at = len(publisher.sent)

        def flowing() -> bool:
            publisher.deliver_all()
            return len(publisher.sent) >= stuck_at + 200

        wait_for(flowing, 30, "records published while the lease table is stuck", every_s=0.01)
    finally:
        coordinator.gate.set()
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert errors == []
    assert coordinator.calls[-1] == ("release_all",)


def test_a_lost_lease_is_dropped_from_a_snapshot_and_never_checkpointed_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="bridge.worker")
    streams = ShardedStreams(shards=2, records=100_000, page_size=10)
    stop, publisher = threading.Event(), FakePublisher()
    coordinator = SlowCoordinator([lease(s) for s in streams.shards], lambda turn: None)
    gone = lease("shard-1").lease_key
    worker = worker_with_stages(coordinator, streams, publisher, stop)
    thread, errors = run_in_thread(worker)
    try:

        def checkpointed() -> bool:
            publisher.deliver_all()
            return bool(coordinator.checkpoints(gone))

        wait_for(checkpointed, 30, "a checkpoint of shard-1", every_s=0.01)
        with coordinator.lock:
            coordinator.lose(gone)
            row_at_loss = coordinator.leases_by_key[gone].checkpoint
        wait_for(lambda: "shard shard-1: lease lost" in caplog.text, 30, "shard-1 dropped", 0.01)
        calls_then = streams.calls["shard-1"]

        def others_flow() -> bool:
            publisher.deliver_all()
            return streams.calls["shard-0"] > streams.calls["shard-1"] + 20

        wait_for(others_flow, 30, "shard-0 read on", every_s=0.01)
    finally:
        stop.set()
        thread.join(30)
    assert errors == []
    assert streams.calls["shard-1"] <= calls_then + 1, "the lost shard was read on"
    assert coordinator.leases_by_key[gone].checkpoint == row_at_loss, "checkpointed after loss"


def test_shutdown_waits_for_a_write_in_flight_before_the_final_checkpoint() -> None:
    streams = ShardedStreams(shards=1, records=50, page_size=10)
    stop, publisher = threading.Event(), FakePublisher()
    coordinator = SlowCoordinator([lease("shard-0")], lambda turn: None)
    key = lease("shard-0").lease_key
    worker = worker_with_stages(coordinator, streams, publisher, stop)
    thread, errors = run_in_thread(worker)

    def first_checkpoint() -> bool:
        publisher.deliver_all()
        return bool(coordinator.checkpoints(key))

    wait_for(first_checkpoint, 30, "a first checkpoint", every_s=0.01)
    coordinator.gate.clear()  # the next write blocks in flight
    wait_for(lambda: len(publisher.sent) >= 50, 30, "every record published")
    publisher.deliver_all()
    stop.set()
    coordinator.gate.set()
    thread.join(30)
    assert not thread.is_alive()
    assert errors == []
    written = coordinator.checkpoints(key)
    assert written == sorted(written), "a checkpoint went backwards"
    assert written[-1] == f"{10_000 + 49:021d}"


def test_snapshots_answer_without_waiting_and_keep_lost_leases_until_taken() -> None:
    coordinator = SlowCoordinator([lease("shard-0"), lease("shard-1")], lambda turn: None)
    snapshots = LeaseSnapshots(coordinator, every_s=0.01)
    snapshots.start()
    try:
        assert len(snapshots.readable()) == 2
        with coordinator.lock:
            coordinator.lose(lease("shard-1").lease_key)
        wait_for(lambda: len(snapshots.readable()) == 1, 10, "the loss in a snapshot", 0.01)
        coordinator.gate.clear()  # the coordinator is stuck: the last answer still stands
        assert len(snapshots.readable()) == 1
        assert snapshots.lost() == {lease("shard-1").lease_key}
        assert snapshots.lost() == set()
    finally:
        coordinator.gate.set()
        snapshots.stop()


def test_a_failing_snapshot_is_raised_in_the_loop() -> None:
    class Broken(FakeCoordinator):
        def readable(self) -> list[Any]:
            if self.turn > 2:
                raise RuntimeError("lineage bug")
            return super().readable()

    snapshots = LeaseSnapshots(Broken([lease()], lambda turn: None), every_s=0.01)
    snapshots.start()
    try:

        def raised() -> bool:
            try:
                snapshots.readable()
            except RuntimeError:
                return True
            return False

        wait_for(raised, 10, "the error", 0.01)
    finally:
        snapshots.stop()


class TurnCounter(FakeKeeper):
    """Counts the loop's turns (it asks the keeper for failures once per turn)."""

    def __init__(self) -> None:
        super().__init__()
        self.turns = 0

    def raise_if_failed(self) -> None:
        self.turns += 1


class StaleViews(FakeCoordinator):
    """Writes wait while ``writes`` is closed; ``hidden`` leases are not readable; an armed
    ``readable()`` answers with the state it found, but only after ``release``: a snapshot taken
    before a write and handed to the loop after it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lock = threading.Lock()
        self.writes = threading.Event()
        self.writes.set()
        self.blocked = 0  # writes waiting for ``writes``
        self.hidden: set[str] = set()
        self.arm, self.captured, self.release = (threading.Event() for _ in range(3))
        self.later = threading.Event()  # while closed, later answers wait
        self.later.set()

    def readable(self) -> list[Any]:
        self.later.wait(30)
        armed = self.arm.is_set()  # before the answer: it shows everything done before arming
        with self.lock:
            answer = [row for row in super().readable() if row.lease_key not in self.hidden]
        if armed:
            self.arm.clear()
            self.captured.set()
            self.release.wait(30)
        return answer

    def checkpoint(self, lease_key: str, sequence_number: str, last_version: int) -> bool:
        if not self.writes.is_set():
            with self.lock:
                self.blocked += 1
            self.writes.wait(30)
        with self.lock:
            return super().checkpoint(lease_key, sequence_number, last_version)


def test_a_shard_read_again_starts_from_the_loops_own_last_checkpoint(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A lease no longer readable for a moment (a parent row seen unfinished) with its last
    checkpoint in flight, then readable again in a snapshot taken before that checkpoint landed:
    the reader is made from a later snapshot, never from the older checkpoint (its next
    checkpoint would go backwards: the coordinator refuses that as a bug, a fatal error)."""
    caplog.set_level(logging.INFO, logger="bridge.worker")
    streams = ShardedStreams(shards=1, records=100_000, page_size=10)
    stop, publisher = threading.Event(), FakePublisher()
    coordinator = StaleViews([lease("shard-0")], lambda turn: None)
    key = lease("shard-0").lease_key
    keeper = TurnCounter()
    worker = worker_with_stages(coordinator, streams, publisher, stop, keeper)
    thread, errors = run_in_thread(worker)
    try:

        def checkpointed() -> bool:
            publisher.deliver_all()
            return bool(coordinator.checkpoints(key))

        wait_for(checkpointed, 30, "a first checkpoint", every_s=0.01)
        coordinator.writes.clear()

        def in_flight() -> bool:
            publisher.deliver_all()
            with coordinator.lock:
                return coordinator.blocked > 0

        wait_for(in_flight, 30, "a checkpoint in flight", every_s=0.01)
        with coordinator.lock:
            before = coordinator.leases_by_key[key].checkpoint
            coordinator.hidden.add(key)
        wait_for(lambda: "no longer readable" in caplog.text, 30, "the reader dropped", 0.01)
        with coordinator.lock:
            coordinator.hidden.clear()  # the loop waits for the write's outcome first
        coordinator.arm.set()
        wait_for(coordinator.captured.is_set, 30, "a view with the older checkpoint", 0.01)
        coordinator.writes.set()
        wait_for(lambda: key not in worker._writing, 30, "the write's outcome in the loop", 0.01)
        with coordinator.lock:
            landed = coordinator.leases_by_key[key].checkpoint
        coordinator.later.clear()  # the older view stands for a while, as behind a slow lock
        coordinator.release.set()
        turns = keeper.turns
        wait_for(lambda: keeper.turns > turns + 20, 30, "the loop turning on the older view", 0.01)
        coordinator.later.set()
        starts = f"reading orders shard shard-0 from {landed}"
        wait_for(lambda: starts in caplog.text, 30, "the shard read again", every_s=0.01)
    finally:
        coordinator.writes.set()
        coordinator.release.set()
        coordinator.later.set()
        stop.set()
        thread.join(30)
    assert errors == []
    assert landed != before
    assert f"reading orders shard shard-0 from {before}" not in caplog.text
