"""Checkpoint writes off the loop: the loop decides every checkpoint, a thread writes it.

A checkpoint is a conditional write to the lease table (tens of milliseconds on a busy table);
one per shard per second for 64 shards kept the loop busy writing instead of reading. The loop
still decides what is written (a shard's acknowledged position, or SHARD_END of a drained,
fully acknowledged shard) and alone applies the outcomes to its readers. Per shard at most one
write is waiting or in flight (the loop asks again once the outcome is back, so positions
coalesce). A write queued before its lease was lost is refused by the coordinator, which
checks under its own lock that it still holds the lease: it can never checkpoint a lost lease.
"""

from __future__ import annotations

import enum
import threading
from collections import deque
from dataclasses import dataclass
from typing import Protocol

from bridge.leases import LeaseTableUnavailable


class Kind(enum.Enum):
    CHECKPOINT = "checkpoint"
    SHARD_END = "SHARD_END"


@dataclass(frozen=True, slots=True)
class Write:
    lease_key: str
    table: str
    kind: Kind
    sequence_number: str
    """The checkpoint (``SHARD_END`` for a finished shard)."""
    version: int


@dataclass(frozen=True, slots=True)
class Outcome:
    write: Write
    written: bool
    """False: refused, the lease is no longer ours (or, with ``unavailable``, not written)."""
    unavailable: str | None = None
    """The lease table could not be reached: the loop asks again later."""
    fatal: BaseException | None = None
    """Anything else: the loop raises it (crash-only)."""


class CheckpointTarget(Protocol):
    """The coordinator's writes (``bridge.coordinator.LeaseCoordinator``)."""

    def checkpoint(self, lease_key: str, sequence_number: str, last_version: int) -> bool: ...
    def shard_end(self, lease_key: str, last_version: int) -> bool: ...


def write(target: CheckpointTarget, request: Write) -> Outcome:
    """One write and its outcome; lease-table outages and failures are returned, not raised."""
    try:
        if request.kind is Kind.SHARD_END:
            written = target.shard_end(request.lease_key, request.version)
        else:
            written = target.checkpoint(request.lease_key, request.sequence_number, request.version)
    except LeaseTableUnavailable as error:
        return Outcome(request, False, unavailable=str(error))
    except Exception as error:  # noqa: BLE001 - handed to the loop, which raises it
        return Outcome(request, False, fatal=error)
    return Outcome(request, written)


class CheckpointWriter:
    """Writes on a daemon thread of its own; the loop submits and collects outcomes."""

    def __init__(self, target: CheckpointTarget) -> None:
        self._target = target
        self._lock = threading.Lock()
        self._work_ready = threading.Condition(self._lock)
        self._done = threading.Condition(self._lock)
        self._queue: deque[Write] = deque()
        self._busy: set[str] = set()
        """Shards with a write waiting or in flight."""
        self._outcomes: list[Outcome] = []
        self._closed = False
        self._thread = threading.Thread(target=self._work, name="checkpoints", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def pending(self, lease_key: str) -> bool:
        with self._lock:
            return lease_key in self._busy

    def submit(self, request: Write) -> None:
        """Queue a write; the caller checked that the shard has none pending."""
        with self._lock:
            if self._closed:
                return
            self._busy.add(request.lease_key)
            self._queue.append(request)
            self._work_ready.notify()

    def outcomes(self) -> list[Outcome]:
        with self._lock:
            done, self._outcomes = self._outcomes, []
            return done

    def idle(self, timeout_s: float) -> bool:
        """Wait until nothing is waiting or in flight (or ``timeout_s`` passes)."""
        with self._lock:
            return self._done.wait_for(lambda: not self._busy, timeout_s)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._queue.clear()
            self._work_ready.notify_all()

    def _work(self) -> None:
        while True:
            with self._lock:
                self._work_ready.wait_for(lambda: self._queue or self._closed)
                if self._closed:
                    return
                request = self._queue.popleft()
            outcome = write(self._target, request)
            with self._lock:
                self._outcomes.append(outcome)
                self._busy.discard(request.lease_key)
                self._done.notify_all()


class InlineCheckpointWriter:
    """The same without a thread: a write happens when submitted (tests, shutdown)."""

    def __init__(self, target: CheckpointTarget) -> None:
        self._target = target
        self._outcomes: list[Outcome] = []

    def start(self) -> None:
        return None

    def pending(self, lease_key: str) -> bool:
        return False

    def submit(self, request: Write) -> None:
        self._outcomes.append(write(self._target, request))

    def outcomes(self) -> list[Outcome]:
        done, self._outcomes = self._outcomes, []
        return done

    def idle(self, timeout_s: float) -> bool:
        return True

    def close(self) -> None:
        return None
