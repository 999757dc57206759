"""The one small interface the indexer needs from a search engine, and the factory choosing it.

Exceptions (the adapters translate every client error into one of these)::

    Exception
     ├── SearchUnavailable   transport: refused/reset, timeout, whole-request 429/5xx -> retry
     ├── SearchError         misconfiguration: auth, wrong product/major, bad settings -> exit
     └── RequestTooLarge     whole-request 413; never leaves this module (the bulk is split)

Per-item failures are not exceptions: ``bulk`` returns them as :class:`ItemResult`. Managed
indices are created with ``index.gc_deletes`` from the settings before the first write to them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from bridge.settings import SearchBackend as BackendName
from bridge.settings import SearchSettings
from consumers.indexer.actions import Action, ItemResult
from consumers.indexer.bulk import BodyEncoder, MalformedResponse, results, too_large

log = logging.getLogger(__name__)


class SearchUnavailable(Exception):  # noqa: N818 - a condition to wait out, not a bug
    """The engine did not answer usefully; retry with backoff (the data is still owed)."""


class SearchError(Exception):
    """A misconfiguration retrying cannot fix; the message says what to change."""


class RequestTooLarge(Exception):  # noqa: N818 - the HTTP status's own name
    """The engine refused the whole request with 413."""


class SearchBackend(Protocol):
    def ensure_index(self, index: str) -> None:
        """Create ``index`` with the configured settings and mappings unless it exists."""

    def bulk(self, actions: Sequence[Action]) -> list[ItemResult]:
        """Send ``actions`` as one ``_bulk``; one result per action, in the same order.

        Indices not yet seen are ensured first. A 413 (request too large) is answered by
        splitting the request in halves; a single action still too large gets
        ``ItemResult(413, "request_entity_too_large", ...)``.
        """

    def ping(self) -> bool:
        """True when the engine answers; cheap enough to call while paused."""

    def close(self) -> None: ...


class Transport(Protocol):
    """What an adapter provides: three requests, client errors already translated."""

    def create_index(self, index: str, body: Mapping[str, Any]) -> bool:
        """Create ``index``; False when it already exists. Raises Search* exceptions."""

    def send_bulk(self, body: bytes) -> Mapping[str, Any]:
        """POST ``body`` to ``_bulk``; raises RequestTooLarge, SearchUnavailable, SearchError."""

    def healthy(self) -> bool: ...

    def close(self) -> None: ...


class IndexingBackend:
    """:class:`SearchBackend` over any :class:`Transport`: the logic both engines share."""

    def __init__(self, transport: Transport, settings: SearchSettings) -> None:
        self._transport = transport
        self._index_body = index_body(settings)
        self._ensured: set[str] = set()
        self._encoder = BodyEncoder()

    def ensure_index(self, index: str) -> None:
        if index in self._ensured:
            return
        if self._transport.create_index(index, self._index_body):
            log.info("created index %s", index)
        self._ensured.add(index)

    def bulk(self, actions: Sequence[Action]) -> list[ItemResult]:
        if not actions:
            return []
        for index in {action.index for action in actions} - self._ensured:
            self.ensure_index(index)
        try:
            response = self._transport.send_bulk(self._encoder.encode(actions))
        except RequestTooLarge as error:
            if len(actions) == 1:
                return [too_large(str(error))]
            half = len(actions) // 2
            log.warning("bulk of %d actions too large, splitting in halves", len(actions))
            return self.bulk(actions[:half]) + self.bulk(actions[half:])
        try:
            return results(response, len(actions))
        except MalformedResponse as error:
            # Every write is versioned, so sending the whole bulk again is harmless.
            raise SearchUnavailable(str(error)) from None

    def ping(self) -> bool:
        return self._transport.healthy()

    def close(self) -> None:
        self._transport.close()


def index_body(settings: SearchSettings) -> dict[str, Any]:
    """The create-index body: the user's settings and mappings, plus ``index.gc_deletes``.

    User settings are never overridden. ``index.gc_deletes`` belongs to ``search.gc_deletes``
    alone. Without a replica setting, ``index.auto_expand_replicas: 0-1`` keeps a single
    node green and gives a cluster the engines' usual one replica.
    """
    flat = _flatten(settings.index_settings, "")
    flat = {
        key if key.startswith("index.") else "index." + key: value for key, value in flat.items()
    }
    if "index.gc_deletes" in flat and str(flat["index.gc_deletes"]) != settings.gc_deletes:
        raise SearchError(
            "search.index_settings sets index.gc_deletes; set it with search.gc_deletes only"
        )
    flat["index.gc_deletes"] = settings.gc_deletes
    if "index.number_of_replicas" not in flat and "index.auto_expand_replicas" not in flat:
        flat["index.auto_expand_replicas"] = "0-1"
    body: dict[str, Any] = {"settings": flat}
    if settings.index_mappings:
        body["mappings"] = settings.index_mappings
    return body


def _flatten(tree: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


def build_backend(settings: SearchSettings, aws_region: str | None = None) -> SearchBackend:
    """The backend named by ``search.backend``; no request is made here.

    ``aws_region`` (``aws.region``) is used only to sign requests with ``search.aws_sigv4``.
    """
    if settings.backend is BackendName.OPENSEARCH:
        from consumers.indexer.search_opensearch import OpenSearchTransport

        return IndexingBackend(OpenSearchTransport(settings, aws_region), settings)
    from consumers.indexer.search_elasticsearch import ElasticsearchTransport

    return IndexingBackend(ElasticsearchTransport(settings), settings)
