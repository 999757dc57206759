"""Old tombstones purged, so deleted items do not accumulate for ever.

A managed index keeps a deleted item as a tombstone document at the delete's version: no stale
change can bring the item back however late it arrives (a backfill image, a replay from the
middle of the log). Tombstones older than ``search.tombstone_retention`` are deleted,
conditional on their versions, once per ``PURGE_INTERVAL_S``; a stale change that old is not
expected (keep the retention at least as long as the topics'). The purge is hygiene: a failure
is logged and retried at the next interval, never fatal.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

PURGE_INTERVAL_S = 3600.0


class Purgeable(Protocol):
    def purge_tombstones(self, older_than_ms: int, limit: int = 1000) -> int: ...


class TombstonePurger:
    """A daemon thread purging old tombstones every ``interval_s`` until :meth:`stop`."""

    def __init__(
        self,
        backend: Purgeable,
        retention_s: float,
        *,
        interval_s: float = PURGE_INTERVAL_S,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._backend = backend
        self._retention_s = retention_s
        self._interval_s = interval_s
        self._wall_clock = wall_clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tombstone-purger", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def purge_once(self) -> int:
        cutoff_ms = int((self._wall_clock() - self._retention_s) * 1000)
        purged = total = 0
        while True:
            purged = self._backend.purge_tombstones(cutoff_ms)
            total += purged
            if purged < 1000 or self._stop.is_set():
                return total

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            try:
                purged = self.purge_once()
            except Exception as error:  # noqa: BLE001 - hygiene: retried at the next interval
                log.warning(
                    "purging old tombstones failed, retrying in %.0fs: %s", self._interval_s, error
                )
                continue
            if purged:
                log.info("purged %d tombstone(s) older than the retention", purged)
