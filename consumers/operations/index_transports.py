"""JSON requests to Elasticsearch or OpenSearch for the read side (:class:`IndexReader`).

The only operations module importing ``elasticsearch``/``opensearchpy``; client errors leave it
as :class:`IndexMissing` (404 index_not_found) or :class:`OperationError` naming what to fix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import elasticsearch  # noqa: TID251 - the read-side search adapter
import opensearchpy  # noqa: TID251 - the read-side search adapter
from elastic_transport import TransportError

from bridge.settings import SearchBackend as BackendName
from bridge.settings import SearchSettings
from consumers.operations.errors import IndexMissing, OperationError
from consumers.operations.index_reader import IndexReader

_HEADERS = {"accept": "application/json", "content-type": "application/json"}
_AUTH_HINT = "check search.username/password, search.api_key or search.aws_sigv4"


def build_reader(settings: SearchSettings, aws_region: str | None = None) -> IndexReader:
    """A reader for ``search.backend``; no request is made here."""
    if settings.backend is BackendName.OPENSEARCH:
        return IndexReader(OpenSearchRequests(settings, aws_region))
    return IndexReader(ElasticsearchRequests(settings))


def _common(settings: SearchSettings) -> dict[str, Any]:
    options: dict[str, Any] = {"verify_certs": settings.verify_certs}
    if settings.ca_certs:
        options["ca_certs"] = settings.ca_certs
    return options


class ElasticsearchRequests:
    def __init__(self, settings: SearchSettings) -> None:
        options = _common(settings)
        options["request_timeout"] = settings.request_timeout_s
        if settings.api_key is not None:
            options["api_key"] = settings.api_key.get_secret_value()
        elif settings.username is not None:
            password = settings.password.get_secret_value() if settings.password else ""
            options["basic_auth"] = (settings.username, password)
        try:
            self._client = elasticsearch.Elasticsearch(list(settings.hosts), **options)
        except ValueError as error:
            raise OperationError(f"search.hosts or TLS settings rejected: {error}") from None

    def request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> Mapping[str, Any]:
        try:
            response = self._client.perform_request(
                method, path, headers=_HEADERS, body=None if body is None else dict(body)
            )
        except elasticsearch.ApiError as error:
            info = error.body if isinstance(error.body, Mapping) else {}
            raise _translate(error.status_code, info, path) from None
        except TransportError as error:
            raise OperationError(
                f"{method} {path}: {type(error).__name__}: {error.message} (is search.hosts "
                "reachable?)"
            ) from None
        return response.body  # type: ignore[no-any-return]

    def close(self) -> None:
        self._client.close()


class OpenSearchRequests:
    def __init__(self, settings: SearchSettings, aws_region: str | None) -> None:
        options = _common(settings)
        options["timeout"] = settings.request_timeout_s
        if settings.aws_sigv4:
            from consumers.indexer.search_opensearch import aws_sigv4_auth

            options["http_auth"] = aws_sigv4_auth(settings.aws_service, aws_region)
        elif settings.username is not None:
            password = settings.password.get_secret_value() if settings.password else ""
            options["http_auth"] = (settings.username, password)
        try:
            self._client = opensearchpy.OpenSearch(list(settings.hosts), **options)
        except (ValueError, opensearchpy.ImproperlyConfigured) as error:
            raise OperationError(f"search.hosts or TLS settings rejected: {error}") from None

    def request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> Mapping[str, Any]:
        try:
            response = self._client.transport.perform_request(
                method, path, body=None if body is None else dict(body)
            )
        except opensearchpy.TransportError as error:
            status = error.status_code
            if not isinstance(status, int):  # connection refused/reset, TLS, timeout
                raise OperationError(
                    f"{method} {path}: {error.error} (is search.hosts reachable?)"
                ) from None
            info = error.info if isinstance(error.info, Mapping) else {}
            raise _translate(status, info, path) from None
        if not isinstance(response, Mapping):
            raise OperationError(f"{method} {path}: unexpected answer {response!r:.200}")
        return response

    def close(self) -> None:
        self._client.close()


def _translate(status: int, body: Mapping[str, Any], path: str) -> OperationError:
    error = body.get("error")
    kind = error.get("type") if isinstance(error, Mapping) else error
    reason = error.get("reason") if isinstance(error, Mapping) else ""
    if kind == "index_not_found_exception":
        return IndexMissing(f"{path}: {reason}")
    if status in (401, 403):
        return OperationError(f"{path}: HTTP {status} {kind}: {_AUTH_HINT}")
    return OperationError(f"{path}: HTTP {status} {kind}: {reason}")
