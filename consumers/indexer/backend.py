"""The one small interface the indexer needs from a search engine, over either engine's client.

Client errors arrive as ``consumers.search.errors`` exceptions: SearchUnavailable (retry) and
SearchError (exit) leave this module; RequestTooLarge never does (the bulk is split in halves).
Per-item failures are not exceptions: ``bulk`` returns them as :class:`ItemResult`. Managed
indices are created with ``index.gc_deletes`` from the settings before the first write to them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import quote

from bridge.runtime.settings import SearchSettings
from consumers.indexer.actions import Action, ItemResult
from consumers.indexer.bulk import (
    CONTENT_TYPE,
    RESPONSE_FILTER,
    BodyEncoder,
    MalformedResponse,
    results,
    too_large,
)
from consumers.search.client import SearchClient, healthy
from consumers.search.errors import RequestTooLarge, SearchError, SearchUnavailable
from consumers.search.factory import connect

__all__ = ["IndexingBackend", "SearchBackend", "SearchError", "SearchUnavailable", "build_backend"]

_BULK_HEADERS = {"accept": "application/json", "content-type": CONTENT_TYPE}
_ALREADY_EXISTS = "resource_already_exists_exception"

log = logging.getLogger(__name__)


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


class IndexingBackend:
    """:class:`SearchBackend` over either engine's client: the logic both engines share."""

    def __init__(self, client: SearchClient, settings: SearchSettings) -> None:
        self._client = client
        self._index_body = index_body(settings)
        self._ensured: set[str] = set()
        self._encoder = BodyEncoder()

    def ensure_index(self, index: str) -> None:
        if index in self._ensured:
            return
        try:
            self._client.request("PUT", f"/{quote(index, safe='')}", body=self._index_body)
        except SearchError as error:
            if error.error_type != _ALREADY_EXISTS:
                raise
        else:
            log.info("created index %s", index)
        self._ensured.add(index)

    def bulk(self, actions: Sequence[Action]) -> list[ItemResult]:
        if not actions:
            return []
        for index in {action.index for action in actions} - self._ensured:
            self.ensure_index(index)
        try:
            response = self._client.request(
                "POST",
                "/_bulk",
                body=self._encoder.encode(actions),
                params=RESPONSE_FILTER,
                headers=_BULK_HEADERS,
            )
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
        return healthy(self._client)

    def close(self) -> None:
        self._client.close()


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
    return IndexingBackend(connect(settings, aws_region), settings)
