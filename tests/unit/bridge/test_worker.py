"""The bridge loop with in-memory fakes: what it checkpoints, when, and how it stops."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest

from bridge.acks import DeliveryError
from bridge.contract.event import ChangeEvent
from bridge.leases import SHARD_END, TRIM_HORIZON, Lease
from bridge.metrics import BridgeMetrics
from bridge.reader import IteratorRequest, IteratorType, Page, TrimmedDataError
from bridge.runtime.health import Heartbeat
from bridge.runtime.settings import BridgeSettings, TrimmedPolicy
from bridge.worker import Worker

T0 = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)
ARN = "arn:aws:dynamodb:us-east-1:1:table/orders/stream/x"


def rec(seq: int) -> dict[str, Any]:
    return {
        "eventID": f"e{seq}",
        "eventName": "INSERT",
        "dynamodb": {
            "ApproximateCreationDateTime": T0,
            "Keys": {"pk": {"S": f"k{seq}"}},
            "NewImage": {"pk": {"S": f"k{seq}"}},
            "SequenceNumber": f"{seq:021d}",
        },
    }


def seq(n: int) -> str:
    return f"{n:021d}"


def lease(shard: str = "shard-1", checkpoint: str = TRIM_HORIZON, version: int = 0) -> Lease:
    return Lease(f"{ARN}#{shard}", "orders", ARN, shard, (), "w1", 1, checkpoint, version)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class FakeCoordinator:
    """Holds leases in memory; ``on_tick(turn)`` lets a test act at the start of each loop turn
    (the loop asks for the readable leases once per turn)."""

    def __init__(self, leases: list[Lease], on_tick: Callable[[int], None]) -> None:
        self.leases_by_key = {lease.lease_key: lease for lease in leases}
        self.on_tick = on_tick
        self.turn = 0
        self.calls: list[tuple[str, ...]] = []
        self.pending_lost: set[str] = set()
        self.held = set(self.leases_by_key)
        self.observed: list[tuple[str, int, int | None, bool]] = []

    def start(self) -> list[object]:
        return [object()]

    def readable(self) -> list[Lease]:
        self.turn += 1
        self.on_tick(self.turn)
        return [
            lease
            for key, lease in self.leases_by_key.items()
            if key in self.held and lease.checkpoint != SHARD_END
        ]

    def checkpoint(self, lease_key: str, sequence_number: str, last_version: int) -> bool:
        self.calls.append(("checkpoint", lease_key, sequence_number, str(last_version)))
        if lease_key not in self.held:
            return False
        lease = self.leases_by_key[lease_key]
        self.leases_by_key[lease_key] = replace(
            lease, checkpoint=sequence_number, last_version=last_version
        )
        return True

    def shard_end(self, lease_key: str, last_version: int) -> bool:
        self.calls.append(("shard_end", lease_key, str(last_version)))
        return self.checkpoint(lease_key, SHARD_END, last_version)

    def record_gap(self, lease_key: str, gap: str) -> bool:
        self.calls.append(("gap", lease_key, gap))
        return lease_key in self.held

    def lose(self, lease_key: str) -> None:
        self.held.discard(lease_key)
        self.pending_lost.add(lease_key)

    def lost(self) -> set[str]:
        lost, self.pending_lost = self.pending_lost, set()
        return lost

    def release_all(self) -> None:
        self.calls.append(("release_all",))
        self.held.clear()

    def leases(self) -> list[Lease]:
        return list(self.leases_by_key.values())

    def observe(
        self, lease_key: str, records: int, last_creation_ms: int | None, caught_up: bool
    ) -> None:
        self.observed.append((lease_key, records, last_creation_ms, caught_up))

    def drain(self) -> None:
        self.calls.append(("drain",))

    def workers(self) -> set[str]:
        return {"w1"}

    def checkpoints(self, lease_key: str) -> list[str]:
        return [c[2] for c in self.calls if c[0] == "checkpoint" and c[1] == lease_key]


class FakeKeeper:
    """Records its lifecycle into ``calls`` (pass the coordinator's to see the order)."""

    def __init__(self, calls: list[tuple[str, ...]] | None = None) -> None:
        self.calls = [] if calls is None else calls
        self.error: BaseException | None = None

    def start(self) -> None:
        self.calls.append(("keeper_start",))

    def stop(self, timeout_s: float = 10.0) -> None:
        self.calls.append(("keeper_stop",))

    def raise_if_failed(self) -> None:
        if self.error is not None:
            raise self.error


class FakeStreams:
    def __init__(self, pages: dict[str, list[Page | Exception]]) -> None:
        self.pages = pages
        self.requests: list[tuple[str, IteratorRequest]] = []

    def shard_iterator(self, stream_arn: str, shard_id: str, request: IteratorRequest) -> str:
        self.requests.append((shard_id, request))
        return shard_id

    def records(self, iterator: str, limit: int) -> Page:
        script = self.pages[iterator]
        step = script.pop(0) if script else Page([], iterator)
        if isinstance(step, Exception):
            raise step
        return step


@dataclass
class Sent:
    event: ChangeEvent
    on_delivery: Callable[[str | None], None]
    done: bool = False


class FakePublisher:
    """Kafka that acknowledges only when the test says so (or on flush, if allowed)."""

    def __init__(self, flush_delivers: bool = True) -> None:
        self.sent: list[Sent] = []
        self.flush_delivers = flush_delivers
        self.flushed = False

    def publish(self, event: ChangeEvent, on_delivery: Callable[[str | None], None]) -> None:
        self.sent.append(Sent(event, on_delivery))

    def deliver(self, index: int, error: str | None = None) -> None:
        item = self.sent[index]
        assert not item.done
        item.done = True
        item.on_delivery(error)

    def deliver_all(self) -> None:
        for i, item in enumerate(self.sent):
            if not item.done:
                self.deliver(i)

    def poll(self, timeout_s: float) -> None:
        return None

    def flush(self, timeout_s: float) -> int:
        self.flushed = True
        if self.flush_delivers:
            self.deliver_all()
        return sum(1 for item in self.sent if not item.done)


def make_worker(
    coordinator: FakeCoordinator,
    streams: FakeStreams,
    publisher: FakePublisher,
    stop: threading.Event,
    clock: FakeClock,
    keeper: FakeKeeper | None = None,
    **overrides: Any,
) -> tuple[Worker, BridgeMetrics]:
    settings = BridgeSettings(tables=["orders"], worker_id="w1", **overrides)
    metrics = BridgeMetrics()
    worker = Worker(
        coordinator,
        streams,
        publisher,
        metrics,
        Heartbeat(60.0, clock),
        settings,
        stop,
        keeper=keeper or FakeKeeper(),
        clock=clock,
        wall_clock=lambda: T0.timestamp() + 5,
        sleep=clock.sleep,
        rng=lambda: 0.5,
    )
    return worker, metrics


def test_checkpoint_never_passes_an_unacknowledged_record() -> None:
    stop, clock, publisher = threading.Event(), FakeClock(), FakePublisher(flush_delivers=False)
    key = lease().lease_key
    streams = FakeStreams({"shard-1": [Page([rec(1), rec(2), rec(3)], "shard-1")]})

    def script(turn: int) -> None:
        clock.now += 2.0  # every turn is past the checkpoint interval
        if turn == 3:
            publisher.deliver(2)  # record 3 acknowledged, 1 and 2 still in flight
        if turn == 5:
            publisher.deliver(0)
        if turn == 7:
            publisher.deliver(1)
        if turn == 9:
            stop.set()

    coordinator = FakeCoordinator([lease()], script)
    worker, metrics = make_worker(coordinator, streams, publisher, stop, clock)
    worker.run()
    assert coordinator.checkpoints(key) == [seq(1), seq(3)]
    assert metrics.records_published.labels("orders")._value.get() == 3
    assert coordinator.calls[-1] == ("release_all",)


def test_checkpoints_are_spaced_by_the_interval() -> None:
    stop, clock, publisher = threading.Event(), FakeClock(), FakePublisher()
    key = lease().lease_key
    streams = FakeStreams({"shard-1": [Page([rec(i)], "shard-1") for i in range(1, 11)]})

    def script(turn: int) -> None:
        clock.now += 0.25
        publisher.deliver_all()
        if turn == 12:
            stop.set()

    coordinator = FakeCoordinator([lease()], script)
    worker, _ = make_worker(coordinator, streams, publisher, stop, clock)
    worker.run()
    written = coordinator.checkpoints(key)
    assert 2 <= len(written) <= 4, written
    assert written[-1] == seq(10), "shutdown checkpoints the last acknowledged record"


def test_stop_flushes_checkpoints_everything_acknowledged_then_releases() -> None:
    stop, clock, publisher = threading.Event(), FakeClock(), FakePublisher()
    key = lease().lease_key
    streams = FakeStreams({"shard-1": [Page([rec(1), rec(2)], "shard-1")]})

    def script(turn: int) -> None:
        if turn == 2:
            stop.set()  # what SIGTERM does, with both records still in flight

    coordinator = FakeCoordinator([lease()], script)
    worker, _ = make_worker(coordinator, streams, publisher, stop, clock)
    worker.run()
    assert publisher.flushed
    assert coordinator.calls == [
        ("drain",),  # no lease taken while stopping
        ("checkpoint", key, seq(2), str(publisher.sent[1].event.version)),
        ("release_all",),
    ]


def test_stop_with_a_flush_timeout_checkpoints_only_the_acknowledged_prefix() -> None:
    stop, clock, publisher = threading.Event(), FakeClock(), FakePublisher(flush_delivers=False)
    key = lease().lease_key
    streams = FakeStreams({"shard-1": [Page([rec(1), rec(2), rec(3)], "shard-1")]})

    def script(turn: int) -> None:
        if turn == 2:
            publisher.deliver(0)
            publisher.deliver(2)
            stop.set()

    coordinator = FakeCoordinator([lease()], script)
    worker, _ = make_worker(coordinator, streams, publisher, stop, clock)
    worker.run()
    assert coordinator.checkpoints(key) == [seq(1)]
    assert coordinator.calls[-1] == ("release_all",)


def test_closed_shard_ends_only_after_its_last_page_is_acknowledged() -> None:
    stop, clock, publisher = threading.Event(), FakeClock(), FakePublisher()
    parent = lease(version=500)
    streams = FakeStreams({"shard-1": [Page([rec(1)], "shard-1"), Page([rec(2)], None)]})
    ended_at: list[int] = []

    def script(turn: int) -> None:
        if any(c[0] == "shard_end" for c in coordinator.calls) and not ended_at:
            ended_at.append(turn)
        if turn == 4:
            publisher.deliver_all()
        if turn == 8:
            stop.set()

    coordinator = FakeCoordinator([parent], script)
    worker, metrics = make_worker(coordinator, streams, publisher, stop, clock)
    worker.run()
    last_version = publisher.sent[-1].event.version
    assert ("shard_end", parent.lease_key, str(last_version)) in coordinator.calls
    assert ended_at == [5], "SHARD_END is written in the turn the acknowledgements arrive"
    assert metrics.shards_finished.labels("orders")._value.get() == 1


def test_a_lost_lease_is_never_checkpointed_again() -> None:
    stop, clock, publisher = threading.Event(), FakeClock(), FakePublisher()
    mine, gone = lease("shard-1"), lease("shard-2")
    streams = FakeStreams(
        {
            "shard-1": [Page([rec(1)], "shard-1")],
            "shard-2": [Page([rec(5)], "shard-2"), Page([rec(6)], "shard-2")],
        }
    )

    def script(turn: int) -> None:
        clock.now += 2.0
        if turn == 2:
            coordinator.lose(gone.lease_key)
            publisher.deliver_all()
        if turn == 4:
            stop.set()

    coordinator = FakeCoordinator([mine, gone], script)
    worker, _ = make_worker(coordinator, streams, publisher, stop, clock)
    worker.run()
    assert coordinator.checkpoints(gone.lease_key) == []
    assert coordinator.checkpoints(mine.lease_key) == [seq(1)]
    assert [e.event.sequence_number for e in publisher.sent].count(seq(6)) == 0


def test_a_delivery_failure_is_fatal_and_nothing_passes_it() -> None:
    stop, clock, publisher = threading.Event(), FakeClock(), FakePublisher()
    key = lease().lease_key
    streams = FakeStreams({"shard-1": [Page([rec(1), rec(2), rec(3)], "shard-1")]})

    def script(turn: int) -> None:
        clock.now += 2.0
        if turn == 2:
            publisher.deliver(0)
            publisher.deliver(1, "MSG_SIZE_TOO_LARGE: too big")
            publisher.deliver(2)

    coordinator = FakeCoordinator([lease()], script)
    worker, metrics = make_worker(coordinator, streams, publisher, stop, clock)
    with pytest.raises(DeliveryError, match="MSG_SIZE_TOO_LARGE"):
        worker.run()
    assert all(c != seq(2) and c != seq(3) for c in coordinator.checkpoints(key))
    assert metrics.produce_errors.labels("orders")._value.get() == 1
    assert ("release_all",) not in coordinator.calls, "crash-only: leases expire instead"


def test_trimmed_data_under_fail_stops_the_process_loudly(caplog: pytest.LogCaptureFixture) -> None:
    stop, clock, publisher = threading.Event(), FakeClock(), FakePublisher()
    streams = FakeStreams({"shard-1": [TrimmedDataError("TrimmedDataAccessException")]})
    coordinator = FakeCoordinator([lease(checkpoint=seq(7))], lambda turn: None)
    worker, metrics = make_worker(coordinator, streams, publisher, stop, clock)
    with pytest.raises(Exception, match="trimmed_policy=skip") as raised:
        worker.run()
    assert type(raised.value).__name__ == "TrimmedDataLostError"
    assert metrics.trimmed_gaps.labels("orders")._value.get() == 1
    assert any(r.levelname == "ERROR" and "shard-1" in r.getMessage() for r in caplog.records)


def test_trimmed_data_under_skip_records_the_gap_and_goes_on_from_trim_horizon() -> None:
    stop, clock, publisher = threading.Event(), FakeClock(), FakePublisher()
    key = lease().lease_key
    streams = FakeStreams({"shard-1": [TrimmedDataError("trimmed"), Page([rec(50)], "shard-1")]})

    def script(turn: int) -> None:
        publisher.deliver_all()
        if turn == 4:
            stop.set()

    coordinator = FakeCoordinator([lease(checkpoint=seq(7), version=70)], script)
    worker, metrics = make_worker(
        coordinator, streams, publisher, stop, clock, trimmed_policy=TrimmedPolicy.SKIP
    )
    worker.run()
    gaps = [c for c in coordinator.calls if c[0] == "gap"]
    assert len(gaps) == 1
    assert f"after checkpoint {seq(7)}" in gaps[0][2]
    assert streams.requests[-1][1].kind.value == "TRIM_HORIZON"
    assert coordinator.checkpoints(key)[-1] == seq(50)
    assert metrics.trimmed_gaps.labels("orders")._value.get() == 1


def test_a_lease_reappearing_resumes_after_its_checkpoint_with_its_version() -> None:
    stop, clock, publisher = threading.Event(), FakeClock(), FakePublisher()
    streams = FakeStreams({"shard-1": [Page([rec(8)], "shard-1")]})

    def script(turn: int) -> None:
        if turn == 2:
            stop.set()

    coordinator = FakeCoordinator(
        [lease(checkpoint=seq(7), version=1714564800 * 10**6 + 9)], script
    )
    worker, _ = make_worker(coordinator, streams, publisher, stop, clock)
    worker.run()
    assert streams.requests[0][1] == IteratorRequest(IteratorType.AFTER_SEQUENCE_NUMBER, seq(7))
    assert publisher.sent[0].event.version == 1714564800 * 10**6 + 10


def test_iterator_age_and_time_to_trim_are_reported_per_shard() -> None:
    stop, clock, publisher = threading.Event(), FakeClock(), FakePublisher()
    streams = FakeStreams({"shard-1": [Page([rec(1)], "shard-1")]})
    coordinator = FakeCoordinator([lease()], lambda turn: stop.set() if turn == 1 else None)
    worker, metrics = make_worker(coordinator, streams, publisher, stop, clock)
    worker.run()
    assert metrics.iterator_age_s.labels("orders", "shard-1")._value.get() == pytest.approx(5.0)
    assert metrics.time_to_trim_s.labels("orders", "shard-1")._value.get() == pytest.approx(
        86400 - 5.0
    )


def test_a_get_records_slower_than_half_the_lease_duration_is_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop, clock, publisher = threading.Event(), FakeClock(), FakePublisher()

    class SlowStreams(FakeStreams):
        def records(self, iterator: str, limit: int) -> Page:
            clock.now += 6.0  # lease_duration_s is 10
            return super().records(iterator, limit)

    def script(turn: int) -> None:
        if turn == 2:
            stop.set()

    coordinator = FakeCoordinator([lease()], script)
    worker, _ = make_worker(coordinator, SlowStreams({"shard-1": []}), publisher, stop, clock)
    worker.run()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("shard-1 took 6.0s" in message for message in warnings), warnings


class StaleView(FakeCoordinator):
    """Answers ``readable()`` from a view taken before the last writes (as lease snapshots do,
    refreshed by another thread): a finished lease still looks readable for a while."""

    def readable(self) -> list[Lease]:
        fresh = super().readable()
        stale = getattr(self, "_stale", None)
        self._stale = fresh
        return fresh if stale is None else stale + [f for f in fresh if f not in stale]


def test_a_finished_shard_is_never_read_again_from_a_stale_view() -> None:
    stop, clock, publisher = threading.Event(), FakeClock(), FakePublisher()
    parent = lease(version=500)
    streams = FakeStreams({"shard-1": [Page([rec(1)], "shard-1"), Page([rec(2)], None)]})

    def script(turn: int) -> None:
        publisher.deliver_all()
        if turn == 12:
            stop.set()

    coordinator = StaleView([parent], script)
    worker, _ = make_worker(coordinator, streams, publisher, stop, clock)
    worker.run()
    assert any(c[0] == "shard_end" for c in coordinator.calls)
    assert len(streams.requests) == 1, "the finished shard was read again from its checkpoint"
    assert [sent.event.sequence_number for sent in publisher.sent] == [seq(1), seq(2)]
