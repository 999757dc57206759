"""The read side of a search index, for operator commands: count, ``_mget``, and every ``_id``.

Reads only; works on the integ-test distributions (core search, mget and scroll). Search errors
become :class:`~dynabridge.operations.errors.OperationError` here (a missing index:
:class:`~dynabridge.operations.errors.IndexMissing`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from bridge.runtime.settings import SearchSettings
from consumers.indexer.templates import ALIAS_FILTER, TOMBSTONE
from consumers.search.client import SearchClient
from consumers.search.errors import IndexNotFound, SearchFailure, SearchRefused, SearchUnavailable
from consumers.search.factory import connect
from dynabridge.operations.errors import IndexMissing, OperationError

SCROLL_KEEPALIVE = "1m"
MGET_BATCH = 500


@dataclass(frozen=True, slots=True)
class StoredDocument:
    doc_id: str
    version: int
    """``_version``: the change event's version under external versioning."""
    source: dict[str, Any]


def build_reader(settings: SearchSettings, aws_region: str | None = None) -> IndexReader:
    """A reader for ``search.backend``; no request is made here."""
    try:
        return IndexReader(connect(settings, aws_region))
    except SearchFailure as error:
        raise OperationError(str(error)) from None


class IndexReader:
    def __init__(self, client: SearchClient) -> None:
        self._client = client

    def _request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> Mapping[str, Any]:
        try:
            return self._client.request(method, path, body=body)
        except IndexNotFound as error:
            raise IndexMissing(str(error)) from None
        except SearchUnavailable as error:
            raise OperationError(f"{error} (is search.hosts reachable?)") from None
        except SearchRefused:
            raise  # a ConfigError: exit 2 with its own message
        except SearchFailure as error:
            raise OperationError(str(error)) from None

    def count(self, index: str) -> int:
        """Searchable documents, tombstones left out (refreshed ones: up to
        ``refresh_interval`` behind)."""
        body = {"query": ALIAS_FILTER}
        return int(self._request("POST", f"/{_path(index)}/_count", body)["count"])

    def documents(self, index: str, ids: Sequence[str]) -> dict[str, StoredDocument]:
        """The documents among ``ids`` the index holds (real time, no refresh needed); a
        tombstone (a deleted item's version, kept) is not a document."""
        found: dict[str, StoredDocument] = {}
        for start in range(0, len(ids), MGET_BATCH):
            body = {"ids": list(ids[start : start + MGET_BATCH])}
            response = self._request("POST", f"/{_path(index)}/_mget", body)
            for doc in response.get("docs", []):
                if "error" in doc:
                    raise _doc_error(index, doc["error"])
                source = doc.get("_source") or {}
                if doc.get("found") and TOMBSTONE not in source:
                    found[doc["_id"]] = StoredDocument(doc["_id"], int(doc["_version"]), source)
        return found

    def mappings(self, index: str) -> Mapping[str, Any] | None:
        """The mappings of ``index`` (an alias: of the index it names); None if it is missing."""
        try:
            answer = self._request("GET", f"/{_path(index)}/_mapping")
        except IndexMissing:
            return None
        for body in answer.values():
            found = body.get("mappings") if isinstance(body, Mapping) else None
            return found if isinstance(found, Mapping) else {}
        return None

    def document(self, index: str, doc_id: str) -> StoredDocument | None:
        return self.documents(index, [doc_id]).get(doc_id)

    def ids(self, index: str, page_size: int = 1000) -> Iterator[str]:
        """Every ``_id`` in the index, by scroll in index order (``_doc``), sources left out."""
        body = {"size": page_size, "_source": False, "sort": ["_doc"], "query": ALIAS_FILTER}
        page = self._request("POST", f"/{_path(index)}/_search?scroll={SCROLL_KEEPALIVE}", body)
        scroll_id = page.get("_scroll_id")
        try:
            while hits := page.get("hits", {}).get("hits", []):
                yield from (hit["_id"] for hit in hits)
                page = self._request(
                    "POST", "/_search/scroll", {"scroll": SCROLL_KEEPALIVE, "scroll_id": scroll_id}
                )
                scroll_id = page.get("_scroll_id", scroll_id)
        finally:
            if scroll_id:
                self._clear(scroll_id)

    def _clear(self, scroll_id: str) -> None:
        # Best effort: an uncleared scroll expires by itself after SCROLL_KEEPALIVE.
        with contextlib.suppress(OperationError):
            self._request("DELETE", "/_search/scroll", {"scroll_id": [scroll_id]})

    def close(self) -> None:
        self._client.close()


def _path(index: str) -> str:
    return quote(index, safe="")


def _doc_error(index: str, error: Mapping[str, Any]) -> OperationError:
    if error.get("type") == "index_not_found_exception":
        return IndexMissing(f"index {index} does not exist")
    return OperationError(f"reading index {index}: {error.get('type')}: {error.get('reason')}")
