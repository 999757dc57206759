"""Per-lineage monotone versions: the order the indexer's external versioning relies on.

``version = max(epoch_seconds(ApproximateCreationDateTime) * 1_000_000, previous + 1)``, where
``previous`` is the version of the record before it in the same shard lineage (persisted with the
checkpoint, inherited by child shards). Versions never decrease within a lineage, and re-reading
from a checkpoint recomputes exactly the same versions.
"""

from __future__ import annotations

from bridge.contract.versions import VERSIONS_PER_SECOND

NO_VERSION = 0
"""The ``previous`` of the first record of a lineage root: any real version exceeds it."""

MAX_VERSION = 2**63 - 1
"""Elasticsearch's external version is a signed long."""


def epoch_seconds(approximate_creation_time_ms: int) -> int:
    """Whole seconds, rounded down as AWS rounds ApproximateCreationDateTime (moto gives ms)."""
    return approximate_creation_time_ms // 1000


def next_version(previous: int, approximate_creation_time_ms: int) -> int:
    """The version of the record that follows one versioned ``previous`` in its lineage."""
    version = max(epoch_seconds(approximate_creation_time_ms) * VERSIONS_PER_SECOND, previous + 1)
    if version > MAX_VERSION:
        raise OverflowError(f"version {version} does not fit a signed 64-bit long")
    return version
