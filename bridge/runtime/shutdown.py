"""SIGTERM/SIGINT -> a stop event owned by one process run (never a global flag).

The loop checks the event between turns, finishes its turn, flushes, commits/checkpoints and
returns; a second signal while stopping exits at once (the restart resumes from the last
checkpoint or commit, so nothing is lost).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from types import FrameType

log = logging.getLogger(__name__)


def install_stop_signals(stop: threading.Event) -> None:
    """Route SIGTERM and SIGINT to ``stop``; call from the main thread."""

    def handle(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            log.warning("second %s while stopping: exiting now", signal.Signals(signum).name)
            os._exit(128 + signum)
        log.info("received %s: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
