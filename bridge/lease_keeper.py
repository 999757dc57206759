"""The lease keeper: renews, takes and syncs leases on the clock, whatever the read loop does.

A GetRecords call may block longer than ``lease_duration_s``; renewals must not wait for it
(KCL renews on its own thread for the same reason). The keeper only times
:meth:`~bridge.coordinator.LeaseCoordinator.tick`; the coordinator's lock keeps it from racing
the worker's checkpoints. Its first error is latched and re-raised in the worker loop
(crash-only), and it never outlives :meth:`LeaseKeeper.stop`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

MAX_WAIT_S = 1.0
"""Longest nap between looks at the clock; the coordinator says when work is due."""
STOP_TIMEOUT_S = 10.0
"""Longest wait for a tick still inside a lease-table call at shutdown (part of the grace time a
stopping bridge needs, docs/deploy.md)."""


class Tickable(Protocol):
    def tick(self) -> None:
        """Do the lease work that is due by the clock."""

    def due_at(self) -> float:
        """When (the same clock) :meth:`tick` has something to do next."""


class LeaseKeeper:
    """A daemon thread running ``coordinator.tick()`` whenever it is due, until :meth:`stop`."""

    def __init__(
        self,
        coordinator: Tickable,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_wait_s: float = MAX_WAIT_S,
    ) -> None:
        self._coordinator = coordinator
        self._clock = clock
        self._max_wait_s = max_wait_s
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> None:
        """Stop ticking; returns once no tick runs (or after ``timeout_s``, logged)."""
        self._stop.set()
        if not self._thread.is_alive():
            return
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            # A lease-table call is still blocked; the coordinator, once released, ignores it.
            log.warning("lease keeper still inside a lease-table call after %.1fs", timeout_s)

    def raise_if_failed(self) -> None:
        """Re-raise, in the caller's thread, the error that stopped the keeper."""
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._coordinator.tick()
                wait_s = self._coordinator.due_at() - self._clock()
            except BaseException as error:  # any of them: latched, the worker loop raises it
                log.debug("lease keeper failed", exc_info=True)
                self._error = error
                return
            self._stop.wait(min(self._max_wait_s, max(0.0, wait_s)))
