"""What a bulk item's result means for its change: the explicit, overridable outcome table.

Invariant: no result is ever dropped silently. Every item ends DONE or STALE (settled), DLQ
(settled once the dead letter is acknowledged), RETRY (not settled), or FATAL (the process
stops, nothing past it is committed).

=====  ===============================================================  =======
order  result                                                           outcome
=====  ===============================================================  =======
1      ``overrides[error_type]``, then ``overrides[str(status)]``       as set
2      2xx                                                              DONE
3      a transient error type (rejected execution, circuit breaker,     RETRY
       unavailable shards, cluster block, timeouts), whatever status
4      409 (version conflict under external versioning)                 STALE
5      404 on a delete (already gone)                                   DONE
6      404 on an index op (its index vanished, auto-create off)         FATAL
7      0 (never reached the server), 408, 429, 5xx                      RETRY
8      401, 403 (authentication / authorization)                        FATAL
9      413 (one document larger than the request limit)                 DLQ
10     any other 4xx (mapping, parsing, illegal argument, ...)          DLQ
11     anything else (1xx, 3xx)                                         FATAL
=====  ===============================================================  =======
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from consumers.indexer.actions import ActionKind, ItemResult


class Outcome(enum.StrEnum):
    DONE = "done"
    STALE = "stale"
    """A newer (or the same) version is already indexed: settled, counted apart."""
    RETRY = "retry"
    DLQ = "dlq"
    FATAL = "fatal"


TRANSIENT_ERROR_TYPES = frozenset(
    {
        "es_rejected_execution_exception",  # write thread pool queue full (429)
        "circuit_breaking_exception",  # memory pressure (429)
        "unavailable_shards_exception",  # primary not yet assigned, e.g. right after create
        "no_shard_available_action_exception",
        "node_not_connected_exception",
        "node_disconnected_exception",
        "connect_transport_exception",
        "process_cluster_event_timeout_exception",
        "receive_timeout_transport_exception",
        "timeout_exception",
        # Disk flood stage marks indices read-only (403 in 7.x, 429 since 8); the engine lifts
        # the block by itself once disk frees up, so this is an outage, not a misconfiguration.
        "cluster_block_exception",
    }
)


def outcome(kind: ActionKind, result: ItemResult, overrides: Mapping[str, str] = {}) -> Outcome:
    """The outcome of one bulk item (the table in this module's docstring)."""
    if overrides:
        chosen = overrides.get(result.error_type or "") or overrides.get(str(result.status))
        if chosen is not None:
            return Outcome(chosen)
    status = result.status
    if 200 <= status < 300:
        return Outcome.DONE
    if result.error_type in TRANSIENT_ERROR_TYPES:
        return Outcome.RETRY
    if status == 409:
        return Outcome.STALE
    if status == 404:
        # A delete of what is not there is done; an index op can only get 404 when its index
        # vanished under us with auto-create off: restarting re-creates it (ensure_index).
        return Outcome.FATAL if kind is ActionKind.INDEX else Outcome.DONE
    if status in (0, 408, 429) or 500 <= status < 600:
        return Outcome.RETRY
    if status in (401, 403):
        # Credentials or privileges are wrong: retrying cannot help and a dead letter would
        # throw away a valid change; stop loudly so the operator fixes the config.
        return Outcome.FATAL
    if 400 <= status < 500:
        return Outcome.DLQ
    return Outcome.FATAL
