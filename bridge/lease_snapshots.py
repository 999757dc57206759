"""Snapshots of the coordinator's leases, taken off the loop, so the loop never waits on the
lease table.

The coordinator holds its lock across lease-table calls (renewals, Scans, takes: seconds, with
many leases on a slow table); asked from the loop, every turn would wait for them. A thread
asks instead, every ``every_s``, and the loop reads the latest answer without waiting.
Invariant: the view is only ever behind the coordinator, never ahead of it: a lease is
readable here only after the coordinator said so, a lost lease is reported to the loop by the
first refresh after the loss, and meanwhile the coordinator itself refuses every write to it.
Behind can mean seconds (the coordinator's lock is held across slow lease-table calls): a loop
that wrote a lease asks :meth:`mark` and :meth:`taken_since` whether the view has seen it yet.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar

log = logging.getLogger(__name__)

REFRESH_S = 0.05
"""How often a snapshot is taken: the loop drops a lost lease about this long after the
coordinator knows (longer while the coordinator's lock is held)."""

LeaseT = TypeVar("LeaseT", covariant=True)


class LeaseSource(Protocol[LeaseT]):
    """The coordinator's queries (``bridge.coordinator.LeaseCoordinator``)."""

    def readable(self) -> Sequence[LeaseT]: ...
    def lost(self) -> set[str]: ...
    def leases(self) -> Sequence[LeaseT]: ...


class LeaseSnapshots(Generic[LeaseT]):
    """The coordinator's answers as of the last refresh; lost leases pile up until taken."""

    def __init__(self, source: LeaseSource[LeaseT], every_s: float = REFRESH_S) -> None:
        self._source = source
        self._every_s = every_s
        self._lock = threading.Lock()
        self._readable: Sequence[LeaseT] = ()
        self._leases: Sequence[LeaseT] = ()
        self._lost: set[str] = set()
        self._begun = 0  # refreshes begun
        self._taken = -1  # which one the current view came from
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-view", daemon=True)

    def start(self) -> None:
        self.refresh()  # the first turn starts from the coordinator's own answer
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def refresh(self) -> None:
        """Ask the coordinator now (waits for its lock)."""
        with self._lock:
            begun = self._begun
            self._begun += 1
        lost = self._source.lost()
        readable = self._source.readable()
        leases = self._source.leases()
        with self._lock:
            # Lost first: a lease lost and taken back in between must still be reported lost.
            self._lost |= lost
            if begun > self._taken:  # never replaced by an older answer finishing later
                self._readable = readable
                self._leases = leases
                self._taken = begun

    def mark(self) -> int:
        """A mark for :meth:`taken_since`: call it once the coordinator has done a write."""
        with self._lock:
            return self._begun

    def taken_since(self, mark: int) -> bool:
        """Whether the current view was asked for after :meth:`mark` returned ``mark``: it
        shows every write the coordinator had done by then."""
        with self._lock:
            return self._taken >= mark

    def readable(self) -> Sequence[LeaseT]:
        self._raise_if_failed()
        with self._lock:
            return self._readable

    def lost(self) -> set[str]:
        with self._lock:
            lost, self._lost = self._lost, set()
            return lost

    def leases(self) -> Sequence[LeaseT]:
        with self._lock:
            return self._leases

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            try:
                self.refresh()
            except Exception as error:  # noqa: BLE001 - raised in the loop at its next turn
                self._error = error
                return
