"""Elasticsearch 8/9 through the ``elasticsearch`` client (its major must equal the server's).

The only module importing ``elasticsearch``: every client error leaves it, translated once, as
a ``consumers.search.errors`` exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import elasticsearch  # noqa: TID251 - the Elasticsearch adapter
from elastic_transport import TransportError

from bridge.runtime.settings import SearchBackend, SearchSettings
from consumers.search.client import JSON_HEADERS, basic_auth, transport_options
from consumers.search.errors import (
    IndexNotFound,
    RequestTooLarge,
    SearchError,
    SearchFailure,
    SearchUnavailable,
)

_CLIENT_MAJOR = elasticsearch.__version__[0]


class ElasticsearchClient:
    """:class:`~consumers.search.client.SearchClient` over ``elasticsearch.Elasticsearch``."""

    engine = SearchBackend.ELASTICSEARCH

    def __init__(self, settings: SearchSettings) -> None:
        if settings.aws_sigv4:
            raise SearchError(
                "search.aws_sigv4 signs for Amazon OpenSearch Service: set search.backend to "
                "opensearch, or turn search.aws_sigv4 off"
            )
        options = transport_options(settings)
        options["request_timeout"] = settings.request_timeout_s
        if settings.api_key is not None:
            options["api_key"] = settings.api_key.get_secret_value()
        elif (credentials := basic_auth(settings)) is not None:
            options["basic_auth"] = credentials
        try:
            self._client = elasticsearch.Elasticsearch(list(settings.hosts), **options)
        except ValueError as error:  # the client validates hosts and TLS options here
            raise SearchError(f"search.hosts or TLS settings rejected: {error}") from None

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> Mapping[str, Any]:
        client = (
            self._client if timeout_s is None else self._client.options(request_timeout=timeout_s)
        )
        try:
            response = client.perform_request(
                method,
                path,
                params=dict(params) if params else None,
                headers=dict(headers) if headers else JSON_HEADERS,
                body=body if isinstance(body, bytes | None) else dict(body),
            )
        except (elasticsearch.ApiError, TransportError) as error:
            raise _translate(error, f"{method} {path}") from None
        answer = response.body
        return answer if isinstance(answer, Mapping) else {}

    def close(self) -> None:
        self._client.close()


def _error_type(error: elasticsearch.ApiError) -> str | None:
    body = error.body
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        kind = body["error"].get("type")
        return str(kind) if kind is not None else None
    return None


def _translate(error: Exception, doing: str) -> SearchFailure:
    """A client error as the project's own: what failed, and for SearchError what to fix."""
    if isinstance(error, elasticsearch.UnsupportedProductError):
        return SearchError(
            f"{doing}: the server is not Elasticsearch ({error.message}); for OpenSearch set "
            "search.backend to opensearch"
        )
    if isinstance(error, TransportError):  # connection refused/reset, TLS, timeout
        return SearchUnavailable(f"{doing}: {type(error).__name__}: {error.message}")
    assert isinstance(error, elasticsearch.ApiError)
    status, kind = error.status_code, _error_type(error)
    text = f"{doing}: HTTP {status} {kind or ''}: {error.message}"
    if status == 413:
        return RequestTooLarge(text, status=status, error_type=kind)
    if status == 429 or status >= 500:
        return SearchUnavailable(text, status=status, error_type=kind)
    if kind == "index_not_found_exception":
        return IndexNotFound(text, status=status, error_type=kind)
    if status in (401, 403):
        return SearchError(
            f"{text}; check search.username/password or search.api_key and roles",
            status=status,
            error_type=kind,
        )
    if status == 406 or kind == "media_type_header_exception":
        # The client sends "compatible-with=<its major>": OpenSearch answers 406, an
        # Elasticsearch of another major 400 media_type_header_exception.
        return SearchError(
            f"{text}; the server is not Elasticsearch {_CLIENT_MAJOR}: for OpenSearch set "
            "search.backend to opensearch, for another Elasticsearch major install the "
            "elasticsearch client of that major",
            status=status,
            error_type=kind,
        )
    return SearchError(text, status=status, error_type=kind)
