"""What can stop a backfill, as one tree; adapters translate client errors into these.

BackfillError                  cannot start or go on; the message names the fix
 ├── TableNotFound             no such DynamoDB table
 ├── StreamNotEnabled          the table has no stream: changes during the scan would be lost
 ├── BackfillRunning           another live run holds the table's claim
 ├── ClaimLost                 our claim was taken over (we were presumed dead): stop writing
 ├── TombstoneWindowTooShort   the index forgets deletes sooner than a stale image can arrive
 ├── ResumeMismatch            the persisted run cannot be continued as asked
 ├── ProgressUnavailable       the lease table is throttled or unreachable: transient
 └── ScanUnavailable           throttled, 5xx or unreachable: transient, back off and retry
      └── ScanThrottled        ProvisionedThroughputExceeded / ThrottlingException
"""

from __future__ import annotations


class BackfillError(Exception):
    """The backfill cannot start or go on; the message says what to fix."""


class TableNotFound(BackfillError):  # noqa: N818 - names the condition, like the bridge's
    pass


class StreamNotEnabled(BackfillError):  # noqa: N818
    pass


class BackfillRunning(BackfillError):  # noqa: N818
    pass


class ClaimLost(BackfillError):  # noqa: N818
    pass


class TombstoneWindowTooShort(BackfillError):  # noqa: N818
    pass


class ResumeMismatch(BackfillError):  # noqa: N818
    pass


class ProgressUnavailable(BackfillError):  # noqa: N818
    """The lease table (where progress lives) is throttled or unreachable: transient."""


class ScanUnavailable(BackfillError):  # noqa: N818
    """Transient: back off and retry the same request."""


class ScanThrottled(ScanUnavailable):
    """The table's read capacity (or the account's request rate) is exhausted."""
