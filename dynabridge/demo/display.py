"""What the demo shows while it runs: one status line per second on stderr.

``written`` counts writes returned by DynamoDB; ``in Kafka`` the bridge's acknowledged records;
``indexed`` the indexer's settled changes; ``visible`` the changes a GET already shows.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Snapshot:
    elapsed_s: float
    written: int
    total: int
    in_kafka: float | None
    indexed: float | None
    visible: int


def status_line(snapshot: Snapshot) -> str:
    rate = snapshot.written / snapshot.elapsed_s if snapshot.elapsed_s > 0 else 0.0
    return (
        f"{snapshot.elapsed_s:5.1f} s  written {snapshot.written}/{snapshot.total} "
        f"({rate:.0f}/s)  in Kafka {_count(snapshot.in_kafka)}  "
        f"indexed {_count(snapshot.indexed)}  visible {snapshot.visible}"
    )


def _count(value: float | None) -> str:
    return "?" if value is None else str(int(value))


class Ticker:
    """Calls ``show(line())`` every ``interval_s`` on its own thread until :meth:`stop`."""

    def __init__(
        self, line: Callable[[], str], show: Callable[[str], None], interval_s: float = 1.0
    ) -> None:
        self._line = line
        self._show = show
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-display", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._show(self._line())

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            self._show(self._line())
