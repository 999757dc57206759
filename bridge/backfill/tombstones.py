"""How long the index must remember a delete so that no scanned image resurrects the item.

A stale image of an item (read by the scan before the item was deleted) follows the item's
REMOVE in its partition by at most ``scan_timeout_s + max_hold_s + delivery_timeout_s`` of
Kafka time: the image was read before the delete happened, so the REMOVE cannot be appended
earlier than the read; the read happened at most the request's read timeout before the
response, the backfill produces an image within ``max_hold_s`` of the response (else it reads
the page again), and librdkafka gives up on it ``delivery_timeout_s`` after producing it. The index
refuses the image (409) while the REMOVE's tombstone lives, ``index.gc_deletes``; what is
left over is the indexer's allowance to pause between the two records.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNITS_S = {
    "d": 86400.0,
    "h": 3600.0,
    "m": 60.0,
    "s": 1.0,
    "ms": 1e-3,
    "micros": 1e-6,
    "nanos": 1e-9,
}
_TIME_VALUE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(d|h|m|s|ms|micros|nanos)\s*")
ENGINE_DEFAULT_GC_DELETES = "60s"


def time_value_s(text: str) -> float:
    """An Elasticsearch/OpenSearch time value (``"1h"``, ``"60s"``, ``"0"``) in seconds."""
    if text.strip() in {"0", "-1"}:
        return 0.0
    match = _TIME_VALUE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a time value like 60s, 15m or 1h")
    return float(match.group(1)) * _UNITS_S[match.group(2)]


@dataclass(frozen=True, slots=True)
class Window:
    """The parts of the tombstone window the backfill needs, in seconds."""

    scan_timeout_s: float = 20.0
    """botocore's read timeout of a Scan (``bridge.aws.TABLES_READ_TIMEOUT_S``)."""
    max_hold_s: float = 60.0
    """A page's images are produced within this of its response, or the page is read again."""
    delivery_timeout_s: float = 120.0
    """librdkafka's message.timeout.ms for the backfill producer."""
    indexer_allowance_s: float = 300.0
    """How long the indexer may stall between a REMOVE and the image right after it."""

    @property
    def required_s(self) -> float:
        return (
            self.scan_timeout_s
            + self.max_hold_s
            + self.delivery_timeout_s
            + self.indexer_allowance_s
        )


def problem(index: str, gc_deletes: str, window: Window) -> str | None:
    """Why ``gc_deletes`` on ``index`` is too short for the backfill, or None."""
    try:
        seconds = time_value_s(gc_deletes)
    except ValueError as error:
        return f"index {index}: cannot read index.gc_deletes: {error}"
    if seconds >= window.required_s:
        return None
    minutes = window.required_s / 60
    return (
        f"index {index} keeps delete tombstones for index.gc_deletes={gc_deletes}, but the "
        f"backfill needs at least {minutes:g}m: a scanned image of an item deleted during the "
        "scan could otherwise resurrect it. Raise it (a dynamic setting): "
        f'PUT {index}/_settings {{"index.gc_deletes": "1h"}}, and set search.gc_deletes for '
        "indices the indexer creates"
    )
