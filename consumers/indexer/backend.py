"""The one small interface the indexer needs from a search engine, over either engine's client.

Client errors arrive as ``consumers.search.errors`` exceptions: SearchUnavailable (retry) and
SearchError (exit) leave this module; RequestTooLarge never does (the bulk is split in halves).
Per-item failures are not exceptions: ``bulk`` returns them as :class:`ItemResult`. Managed
indices are created with ``index.gc_deletes`` from the settings before the first write to them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol
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
from consumers.indexer.templates import index_body, index_template, is_managed, template_name
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
    """:class:`SearchBackend` over either engine's client: the logic both engines share.

    Before the first write to an index it installs the index's template (the managed mapping,
    ``consumers.indexer.templates``), creates the index if missing, and reads its mapping:
    documents carry their typed fields only into managed indices, so an index created before
    (or by someone else) keeps receiving plain documents it can take.
    """

    def __init__(self, client: SearchClient, settings: SearchSettings) -> None:
        self._client = client
        self._settings = settings
        self._index_body = index_body(settings, client.engine)  # refuses bad settings early
        self._ensured: set[str] = set()
        self._typed: set[str] = set()
        self._encoder = BodyEncoder()

    def ensure_index(self, index: str) -> None:
        if index in self._ensured:
            return
        path = f"/{quote(index, safe='')}"
        if self._settings.index_templates:
            template = index_template(index, self._settings, self._client.engine)
            self._client.request(
                "PUT", f"/_index_template/{quote(template_name(index), safe='')}", body=template
            )
        try:
            self._client.request(
                "PUT", path, body={} if self._settings.index_templates else self._index_body
            )
        except SearchError as error:
            if error.error_type != _ALREADY_EXISTS:
                raise
        else:
            log.info("created index %s", index)
        answer = self._client.request("GET", f"{path}/_mapping")
        if any(is_managed(body.get("mappings", {})) for body in answer.values()):
            self._typed.add(index)
        else:
            log.warning(
                "index %s was not created with dynabridge's mapping (it existed before, or a "
                "template of higher priority applies): documents go in as plain JSON without "
                "typed fields, so items of mixed types may be refused; rebuild it with "
                "`dynabridge reindex` (docs/indexer.md, Mapping)",
                index,
            )
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
                body=self._encoder.encode(actions, self._typed),
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


def build_backend(settings: SearchSettings, aws_region: str | None = None) -> SearchBackend:
    """The backend named by ``search.backend``; no request is made here.

    ``aws_region`` (``aws.region``) is used only to sign requests with ``search.aws_sigv4``.
    """
    return IndexingBackend(connect(settings, aws_region), settings)
