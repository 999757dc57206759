"""The capacity budget and the throttling backoff of Scans: pure, driven by the caller's clock.

The bucket may go into debt: a Scan's cost (RCU or items) is known only after it returns, so
it is charged afterwards, and no new Scan starts until the debt is paid back.
"""

from __future__ import annotations

from dataclasses import dataclass

from bridge.runtime.backoff import Backoff


@dataclass(slots=True)
class TokenBucket:
    """``rate_per_s`` tokens a second, at most ``burst`` saved; ``rate_per_s`` None: unlimited."""

    rate_per_s: float | None
    burst: float
    tokens: float = 0.0
    updated_at: float | None = None

    def _refill(self, now: float) -> None:
        if self.rate_per_s is None:
            return
        if self.updated_at is None:
            self.tokens = self.burst
        else:
            elapsed = max(0.0, now - self.updated_at)
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate_per_s)
        self.updated_at = now

    def spend(self, cost: float, now: float) -> None:
        """Charge ``cost`` (consumed RCU, or items) for a request that already ran."""
        self._refill(now)
        self.tokens -= cost

    def wait_s(self, now: float) -> float:
        """How long until a new request may start (0: now)."""
        if self.rate_per_s is None:
            return 0.0
        self._refill(now)
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate_per_s


SCAN_BACKOFF = Backoff(initial_s=0.2, max_s=20.0)
"""Between throttled Scans of one segment (every segment is throttled by the same table at
once: the jitter keeps them from retrying in lockstep)."""
