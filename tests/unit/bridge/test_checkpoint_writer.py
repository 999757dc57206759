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
    coordinator: FakeCoordinator, streams: Any, publisher: FakePublisher, stop: threading.Event
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
        keeper=FakeKeeper(),
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
