"""The one way tests wait: poll a condition until it holds or a deadline passes.

Never a bare sleep as synchronisation: the interval is only how often the condition is asked.
"""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(
    condition: Callable[[], object], timeout_s: float, what: str, every_s: float = 0.2
) -> float:
    """Poll ``condition()`` until truthy; the seconds it took. AssertionError at the deadline."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(every_s)
    return time.monotonic() - started
