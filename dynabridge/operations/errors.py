"""The one exception operator commands stop on: its message is the line the operator reads.

OperationError        a command cannot do what was asked (exit 1); names the input and the fix
 └── IndexMissing     the search index does not exist
"""

from __future__ import annotations


class OperationError(Exception):
    """A command cannot go on; the message names the bad input and what to do."""


class IndexMissing(OperationError):  # noqa: N818 - a state, named as the operator sees it
    """The search index does not exist (never written to, or deleted)."""
