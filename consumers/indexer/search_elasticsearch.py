"""Elasticsearch 8/9 through the ``elasticsearch`` client (its major must equal the server's).

The only module importing ``elasticsearch``: every client error leaves it as SearchUnavailable,
SearchError or RequestTooLarge. The client never retries by itself; the indexer decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import elasticsearch  # noqa: TID251 - the Elasticsearch adapter
from elastic_transport import TransportError

from bridge.settings import SearchSettings
from consumers.indexer.bulk import CONTENT_TYPE, RESPONSE_FILTER
from consumers.indexer.search import RequestTooLarge, SearchError, SearchUnavailable

_BULK_HEADERS = {"accept": "application/json", "content-type": CONTENT_TYPE}
_PING_TIMEOUT_S = 5.0
_CLIENT_MAJOR = elasticsearch.__version__[0]


class ElasticsearchTransport:
    def __init__(self, settings: SearchSettings) -> None:
        if settings.aws_sigv4:
            raise SearchError(
                "search.aws_sigv4 signs for Amazon OpenSearch Service: set search.backend to "
                "opensearch, or turn search.aws_sigv4 off"
            )
        options: dict[str, Any] = {
            "request_timeout": settings.request_timeout_s,
            "verify_certs": settings.verify_certs,
            # The indexer owns retries (per item, with backoff): the client must not resend a
            # whole bulk on 429/5xx behind its back. Another node is tried on connection errors.
            "retry_on_status": (),
            "retry_on_timeout": False,
            "max_retries": len(settings.hosts) - 1,
        }
        if settings.ca_certs:
            options["ca_certs"] = settings.ca_certs
        if settings.api_key is not None:
            options["api_key"] = settings.api_key.get_secret_value()
        elif settings.username is not None:
            password = settings.password.get_secret_value() if settings.password else ""
            options["basic_auth"] = (settings.username, password)
        try:
            self._client = elasticsearch.Elasticsearch(list(settings.hosts), **options)
        except ValueError as error:  # the client validates hosts and TLS options here
            raise SearchError(f"search.hosts or TLS settings rejected: {error}") from None

    def create_index(self, index: str, body: Mapping[str, Any]) -> bool:
        try:
            self._client.indices.create(
                index=index, settings=body["settings"], mappings=body.get("mappings")
            )
        except elasticsearch.ApiError as error:
            if _error_type(error) == "resource_already_exists_exception":
                return False
            raise _translate(error, f"creating index {index}") from None
        except TransportError as error:
            raise _translate(error, f"creating index {index}") from None
        return True

    def send_bulk(self, body: bytes) -> Mapping[str, Any]:
        try:
            response = self._client.perform_request(
                "POST",
                "/_bulk",
                params=RESPONSE_FILTER,
                headers=_BULK_HEADERS,
                body=body,
                endpoint_id="bulk",
            )
        except (elasticsearch.ApiError, TransportError) as error:
            raise _translate(error, "bulk") from None
        return response.body  # type: ignore[no-any-return]

    def healthy(self) -> bool:
        # The cluster health API rather than HEAD /: some distributions (the integ-test zip)
        # ship without the root endpoint.
        try:
            self._client.options(request_timeout=_PING_TIMEOUT_S).cluster.health()
        except (elasticsearch.ApiError, TransportError):
            return False
        return True

    def close(self) -> None:
        self._client.close()


def _error_type(error: elasticsearch.ApiError) -> str | None:
    body = error.body
    if isinstance(body, Mapping) and isinstance(body.get("error"), Mapping):
        kind = body["error"].get("type")
        return str(kind) if kind is not None else None
    return None


def _translate(error: Exception, doing: str) -> Exception:
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
        return RequestTooLarge(text)
    if status == 429 or status >= 500:
        return SearchUnavailable(text)
    if status in (401, 403):
        return SearchError(f"{text}; check search.username/password or search.api_key and roles")
    if status == 406 or kind == "media_type_header_exception":
        # The client sends "compatible-with=<its major>": OpenSearch answers 406, an
        # Elasticsearch of another major 400 media_type_header_exception.
        return SearchError(
            f"{text}; the server is not Elasticsearch {_CLIENT_MAJOR}: for OpenSearch set "
            "search.backend to opensearch, for another Elasticsearch major install the "
            "elasticsearch client of that major"
        )
    return SearchError(text)
