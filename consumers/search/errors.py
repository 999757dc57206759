"""What talking to a search engine can fail with; the engine adapters raise nothing else.

SearchFailure                 carries the HTTP ``status`` and the engine's ``error_type``, if any
 ├── SearchUnavailable        transport: refused/reset, timeout, whole-request 429/5xx -> retry
 ├── SearchError              misconfiguration: auth, wrong product or major, bad request -> exit
 │    ├── IndexNotFound       404 index_not_found_exception (the caller decides what it means)
 │    └── SearchRefused       credentials or certificate refused, the server's certificate not
 │                            trusted, an engine or major we do not support: also a
 │                            ``ConfigError`` (exit 2), whoever meets it
 └── RequestTooLarge          whole-request 413 (the indexer splits the bulk)

Callers branch on the class and on ``error_type``, never on message text.
"""

from __future__ import annotations

from bridge.runtime.settings import ConfigError


class SearchFailure(Exception):  # noqa: N818 - the root of the tree, named like its leaves
    """A request to the engine failed; the message says what failed and what to fix."""

    def __init__(self, message: str, *, status: int | None = None, error_type: str | None = None):
        super().__init__(message)
        self.status = status
        self.error_type = error_type


class SearchUnavailable(SearchFailure):
    """The engine did not answer usefully; retry with backoff (the data is still owed)."""


class SearchError(SearchFailure):
    """A misconfiguration retrying cannot fix; the message says what to change."""


class IndexNotFound(SearchError):  # noqa: N818 - the engine's own condition
    """The index (or alias) does not exist."""


class RequestTooLarge(SearchFailure):
    """The engine refused the whole request with 413."""


class SearchRefused(SearchError, ConfigError):  # noqa: N818 - the engine's answer
    """Only a configuration change helps: the message names the endpoint, the mechanism and
    the setting to fix, never a secret."""
