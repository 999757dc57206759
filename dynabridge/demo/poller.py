"""The visibility poller: real-time multi-GETs of every document still pending, as fast as it can.

One request answers for up to ``BATCH`` ids; each answer is stamped when it arrives, so a
latency is an upper bound by at most one request's duration (reported as the poll cycle).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from dynabridge.demo.visibility import VisibilityTracker
from dynabridge.demo.workload import REV
from dynabridge.operations.errors import IndexMissing, OperationError
from dynabridge.operations.index_reader import StoredDocument

log = logging.getLogger(__name__)

BATCH = 500
IDLE_S = 0.002
MIN_CYCLE_S = 0.01
"""At most 100 polls a second: the poller must not load the engine (and the machine) it measures."""
ERROR_PAUSE_S = 0.2


class DocumentReader(Protocol):
    def documents(self, index: str, ids: Sequence[str]) -> dict[str, StoredDocument]: ...


class VisibilityPoller:
    def __init__(
        self,
        reader: DocumentReader,
        index: str,
        tracker: VisibilityTracker,
        stop: threading.Event,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._index = index
        self._tracker = tracker
        self._stop = stop
        self._clock = clock
        self.requests = 0
        self.request_s = 0.0
        self._thread = threading.Thread(target=self._run, name="visibility-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)

    @property
    def mean_request_ms(self) -> float:
        return self.request_s / self.requests * 1000 if self.requests else 0.0

    def _run(self) -> None:
        while not self._stop.is_set():
            ids = self._tracker.pending_ids()
            if not ids:
                self._stop.wait(IDLE_S)
                continue
            cycle_started = self._clock()
            for start in range(0, len(ids), BATCH):
                if not self._poll(ids[start : start + BATCH]):
                    self._stop.wait(ERROR_PAUSE_S)
                    break
            self._stop.wait(MIN_CYCLE_S - (self._clock() - cycle_started))

    def _poll(self, ids: list[str]) -> bool:
        sent = self._clock()
        try:
            found = self._reader.documents(self._index, ids)
        except IndexMissing:
            return False  # the indexer has not created it yet
        except OperationError as error:
            # e.g. no shard available yet right after the index is created: try again shortly.
            log.debug("polling %s: %s", self._index, error)
            return False
        now = self._clock()
        self.requests += 1
        self.request_s += now - sent
        for doc_id in ids:
            document = found.get(doc_id)
            self._tracker.observe(doc_id, None if document is None else _rev(document), now)
        return True


def _rev(document: StoredDocument) -> int:
    value = document.source.get(REV)
    return value if isinstance(value, int) else -1  # present, though not written by us
