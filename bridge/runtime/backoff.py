"""Backoff between retries, for every retry loop of both processes: exponential, capped, with
full jitter.

Full jitter (a uniform draw in ``[0, min(cap, initial * 2**(attempt - 1))]``, AWS Architecture
Blog "Exponential Backoff And Jitter"): every worker, segment and replica sees the same
throttle or outage at the same moment; equal delays would send their retries back in lock-step
to meet the overloaded service again together, while full jitter spreads them over the window.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Backoff:
    initial_s: float
    max_s: float

    def ceiling(self, attempt: int) -> float:
        """Upper bound of the delay before retry number ``attempt`` (1 = first retry)."""
        exponent = min(max(attempt - 1, 0), 62)  # 2**62 already dwarfs any cap; avoids overflow
        return min(self.max_s, self.initial_s * 2.0**exponent)

    def delay(self, attempt: int, draw: Callable[[], float]) -> float:
        """A delay in ``[0, ceiling(attempt)]``; ``draw`` returns a uniform float in [0, 1)."""
        return draw() * self.ceiling(attempt)
