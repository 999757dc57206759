"""The one exit-code table of every ``dynabridge`` command; each number has one meaning.

Operators script against these (docs/operations.md lists them with the commands that use them).
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    OK = 0
    """Done: a clean stop, an equal verify, an item in sync, every segment backfilled."""
    FATAL = 1
    """A fatal error stopped the command or process (crash-only: a rerun or restart resumes)."""
    CONFIG = 2
    """Bad configuration or input: the message names the key or option and the fix."""
    UNAVAILABLE = 3
    """A service (DynamoDB, Kafka, the search engine, the registry) could not be reached or read."""
    DIFFERENT = 4
    """A check found a difference: verify unequal, trace stuck, status listing a problem."""
    REFUSED = 5
    """Refused to protect data: a live consumer group, a running backfill, an unsafe setup."""
    STOPPED = 6
    """Stopped by a signal before finishing (a rerun resumes)."""
