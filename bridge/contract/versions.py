"""Versions of snapshot (backfill) events: older than any stream change from around the scan.

Stream versions are ``max(epoch_s(ApproximateCreationDateTime) * 1_000_000, previous + 1)``
per shard lineage (the bridge computes them); a snapshot version sits 300 s before the
scan started, so any stream change from around or after the scan wins over the scanned image.
"""

from __future__ import annotations

VERSIONS_PER_SECOND = 1_000_000
SNAPSHOT_LEAD_S = 300


def snapshot_version(scan_start_epoch_s: int) -> int:
    """The version every item read by a scan that started at ``scan_start_epoch_s`` carries."""
    return (scan_start_epoch_s - SNAPSHOT_LEAD_S) * VERSIONS_PER_SECOND
