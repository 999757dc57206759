"""Elasticsearch 8/9 through the ``elasticsearch`` client, speaking the server's own major.

The only module importing ``elasticsearch``: every client error leaves it, translated once, as
a ``consumers.search.errors`` exception.

Every request says which REST API major it speaks (``compatible-with=N`` in its media types),
and a server answers only its own major or the one before. The first request asks the server
its version (in the ``compatible-with=8`` dialect, which Elasticsearch 8 and 9 both accept)
and every later one speaks that major; a major outside ``SUPPORTED_MAJORS`` is refused with a
message naming the supported ones. The ``elasticsearch8`` distribution (a client of major 8,
imported as ``elasticsearch8``) cannot be installed next to ``elasticsearch`` 9.1+ (they need
``elastic-transport`` <9 and >=9.1), and this adapter uses only ``perform_request``, whose
only major-specific part is that header: so the one client serves both majors.
"""

from __future__ import annotations

import re
import ssl
import threading
from collections.abc import Mapping
from typing import Any

import elasticsearch  # noqa: TID251 - the Elasticsearch adapter
from elastic_transport import TlsError, TransportError

from bridge.runtime.settings import SearchBackend, SearchSettings
from consumers.search.client import JSON_HEADERS, basic_auth, transport_options
from consumers.search.errors import (
    IndexNotFound,
    RequestTooLarge,
    SearchError,
    SearchFailure,
    SearchRefused,
    SearchUnavailable,
)

_CLIENT_MAJOR = elasticsearch.__version__[0]
SUPPORTED_MAJORS = (8, 9)
_PROBE_MAJOR = 8
"""Elasticsearch 8 and 9 both accept requests in the major-8 dialect."""
_MEDIA_TYPE = re.compile(r"application/(json|x-ndjson)")


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
        self._endpoint = ",".join(settings.hosts)
        self._auth = (
            "API key (search.api_key)"
            if settings.api_key is not None
            else f"basic auth of user {settings.username!r}"
            if settings.username is not None
            else "no credentials"
        )
        self._major: int | None = None
        self._detecting = threading.Lock()

    @property
    def server_major(self) -> int:
        """The server's major version, asked once (the first request's job)."""
        if self._major is None:
            with self._detecting:
                if self._major is None:
                    self._major = self._detect_major()
        return self._major

    def _detect_major(self) -> int:
        number = self._version()
        major = int(number.split(".")[0]) if number[:1].isdigit() else 0
        if major not in SUPPORTED_MAJORS:
            raise SearchRefused(
                f"search.hosts {self._endpoint} runs Elasticsearch {number}: dynabridge "
                f"supports Elasticsearch {' and '.join(f'{m}.x' for m in SUPPORTED_MAJORS)} "
                "(tested: 8.19, 9.5); upgrade the cluster or point search.hosts elsewhere"
            )
        return major

    def _version(self) -> str:
        """The version number from ``GET /``, or from the local node's info where the root
        endpoint is missing (the integ-test distribution answers 405)."""
        for path in ("/", "/_nodes/_local?filter_path=nodes.*.version"):
            try:
                answer = self._perform("GET", path, None, None, _PROBE_MAJOR)
            except SearchError as error:
                if error.status in (404, 405):
                    continue
                raise
            if "version" in answer:
                return str(answer["version"].get("number", "?"))
            versions = [n.get("version") for n in answer.get("nodes", {}).values()]
            if versions:
                return str(versions[0])
        raise SearchError(f"search.hosts {self._endpoint}: cannot read the server's version")

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
        return self._perform(method, path, body, params, self.server_major, headers, timeout_s)

    def _perform(
        self,
        method: str,
        path: str,
        body: bytes | Mapping[str, Any] | None,
        params: Mapping[str, str] | None,
        major: int,
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
                headers=_speaking(dict(headers) if headers else dict(JSON_HEADERS), major),
                body=body if isinstance(body, bytes | None) else dict(body),
            )
        except (elasticsearch.ApiError, TransportError) as error:
            raise _translate(error, f"{method} {path}", self._endpoint, self._auth) from None
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


def _speaking(headers: dict[str, str], major: int) -> dict[str, str]:
    """Media types in the ``major`` dialect; the client itself would say its own major."""
    if major == _CLIENT_MAJOR:
        return headers
    dialect = rf"application/vnd.elasticsearch+\1; compatible-with={major}"
    return {
        name: _MEDIA_TYPE.sub(dialect, value)
        if name.lower() in ("accept", "content-type")
        else value
        for name, value in headers.items()
    }


def _untrusted(error: TlsError) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure inside a TLS error, if that is what it is."""
    seen: set[int] = set()
    pending: list[BaseException] = [error, *error.errors]
    while pending:
        cause = pending.pop()
        if id(cause) in seen:
            continue
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            return cause
        pending.extend(c for c in (cause.__cause__, cause.__context__) if c is not None)
        pending.extend(a for a in getattr(cause, "args", ()) if isinstance(a, BaseException))
        reason = getattr(cause, "reason", None)
        if isinstance(reason, BaseException):
            pending.append(reason)
    return None


def _translate(error: Exception, doing: str, endpoint: str, auth: str) -> SearchFailure:
    """A client error as the project's own: what failed, and for SearchError what to fix."""
    if isinstance(error, elasticsearch.UnsupportedProductError):
        return SearchError(
            f"{doing}: the server is not Elasticsearch ({error.message}); for OpenSearch set "
            "search.backend to opensearch"
        )
    if isinstance(error, TlsError) and (cause := _untrusted(error)) is not None:
        return SearchRefused(
            f"search engine {endpoint} (TLS): the server's certificate is not trusted "
            f"({cause.verify_message}): set search.ca_certs to the CA bundle that signed it"
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
    if status == 401:
        fix = (
            "fix search.api_key (DYNABRIDGE_SEARCH__API_KEY)"
            if auth.startswith("API key")
            else "fix search.username / search.password (DYNABRIDGE_SEARCH__PASSWORD)"
        )
        return SearchRefused(
            f"search engine {endpoint} refused {auth} (HTTP 401 {kind or ''}): {fix}",
            status=status,
            error_type=kind,
        )
    if status == 403:
        return SearchRefused(
            f"search engine {endpoint}: {auth} lacks a privilege for {doing} (HTTP 403 "
            f"{kind or ''}): grant it (docs/configuration.md, search privileges)",
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
