"""OpenSearch 2/3 (self-managed or Amazon OpenSearch Service) through ``opensearch-py``.

The only module importing ``opensearchpy``: every client error leaves it, translated once, as a
``consumers.search.errors`` exception. The server is checked to be OpenSearch before the first
request: Elasticsearch would accept some requests and refuse others.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Mapping
from typing import Any

import opensearchpy  # noqa: TID251 - the OpenSearch adapter
from opensearchpy.exceptions import (  # noqa: TID251 - the OpenSearch adapter
    SSLError,
    TransportError,
)

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

SUPPORTED_MAJORS = ("2", "3")


class OpenSearchClient:
    """:class:`~consumers.search.client.SearchClient` over ``opensearchpy.OpenSearch``."""

    engine = SearchBackend.OPENSEARCH

    def __init__(self, settings: SearchSettings, aws_region: str | None = None) -> None:
        if settings.api_key is not None:
            raise SearchError(
                "search.api_key is an Elasticsearch feature: for OpenSearch use "
                "search.username/password or search.aws_sigv4"
            )
        options = transport_options(settings)
        options["timeout"] = settings.request_timeout_s
        if settings.aws_sigv4:
            options["http_auth"] = aws_sigv4_auth(settings.aws_service, aws_region)
        elif (credentials := basic_auth(settings)) is not None:
            options["http_auth"] = credentials
        # Amazon OpenSearch Serverless answers no GET /: nothing to check the product with.
        self._verified = settings.aws_sigv4 and settings.aws_service == "aoss"
        self._verifying = threading.Lock()
        try:
            self._client = opensearchpy.OpenSearch(list(settings.hosts), **options)
        except (ValueError, opensearchpy.ImproperlyConfigured) as error:
            raise SearchError(f"search.hosts or TLS settings rejected: {error}") from None
        self._endpoint = ",".join(settings.hosts)
        self._auth = (
            "AWS SigV4 signing"
            if settings.aws_sigv4
            else f"basic auth of user {settings.username!r}"
            if settings.username is not None
            else "no credentials"
        )

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
        self._verify()
        query: dict[str, Any] = dict(params) if params else {}
        if timeout_s is not None:
            query["request_timeout"] = timeout_s  # read by the client itself, as a number
        try:
            response = self._client.transport.perform_request(
                method,
                path,
                params=query or None,
                headers=dict(headers) if headers else JSON_HEADERS,
                body=body if isinstance(body, bytes | None) else dict(body),
            )
        except TransportError as error:
            raise _translate(error, f"{method} {path}", self._endpoint, self._auth) from None
        return response if isinstance(response, Mapping) else {}

    def close(self) -> None:
        self._client.close()

    def _verify(self) -> None:
        """Refuse anything but OpenSearch 1-3, once."""
        if self._verified:
            return
        with self._verifying:
            if self._verified:
                return
            try:
                info = self._client.info()
            except TransportError as error:
                status = error.status_code
                if isinstance(status, int) and 400 <= status < 500 and status not in (401, 403):
                    raise SearchError(
                        f"search.hosts {self._hosts()} does not answer GET / like OpenSearch "
                        f"(HTTP {status} {error.error}); for Elasticsearch set "
                        "search.backend to elasticsearch",
                        status=status,
                    ) from None
                raise _translate(
                    error, "reading the server's version", self._endpoint, self._auth
                ) from None
            version = info.get("version", {}) if isinstance(info, Mapping) else {}
            number = str(version.get("number", "?"))
            if version.get("distribution") != "opensearch":
                raise SearchRefused(
                    f"search.hosts {self._hosts()} is not OpenSearch (version {number}, "
                    f"distribution {version.get('distribution')}); for Elasticsearch set "
                    "search.backend to elasticsearch"
                )
            if number.split(".")[0] not in SUPPORTED_MAJORS:
                raise SearchRefused(
                    f"search.hosts {self._hosts()} runs OpenSearch {number}: dynabridge "
                    f"supports OpenSearch {' and '.join(f'{m}.x' for m in SUPPORTED_MAJORS)} "
                    "(tested: 2.19, 3.8); upgrade the cluster or point search.hosts elsewhere"
                )
            self._verified = True

    def _hosts(self) -> str:
        return ",".join(str(host) for host in self._client.transport.hosts)


def aws_sigv4_auth(service: str, region: str | None) -> Any:
    """Request signing for Amazon OpenSearch Service (``es``) or Serverless (``aoss``)."""
    import boto3  # noqa: TID251 - the standard AWS credential chain, only when signing

    session = boto3.Session(region_name=region) if region else boto3.Session()
    credentials = session.get_credentials()
    if credentials is None:
        raise SearchError(
            "search.aws_sigv4 is on but no AWS credentials were found (environment, profile, "
            "web identity or instance role)"
        )
    if not session.region_name:
        raise SearchError("search.aws_sigv4 needs a region: set aws.region")
    return opensearchpy.Urllib3AWSV4SignerAuth(credentials, session.region_name, service)


def _error_type(error: TransportError) -> str | None:
    info = error.info
    if isinstance(info, Mapping) and isinstance(info.get("error"), Mapping):
        kind = info["error"].get("type")
        return str(kind) if kind is not None else None
    return str(error.error) if isinstance(error.error, str) else None


def _untrusted(error: SSLError) -> ssl.SSLCertVerificationError | None:
    """The certificate verification failure inside a TLS error, if that is what it is."""
    seen: set[int] = set()
    pending: list[object] = [error, error.info, *error.args]
    while pending:
        cause = pending.pop()
        if not isinstance(cause, BaseException) or id(cause) in seen:
            continue
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            return cause
        pending.extend([cause.__cause__, cause.__context__, getattr(cause, "reason", None)])
        pending.extend(cause.args)
    return None


def _translate(error: TransportError, doing: str, endpoint: str, auth: str) -> SearchFailure:
    """A client error as the project's own: what failed, and for SearchError what to fix."""
    if isinstance(error, SSLError) and (cause := _untrusted(error)) is not None:
        return SearchRefused(
            f"search engine {endpoint} (TLS): the server's certificate is not trusted "
            f"({cause.verify_message}): set search.ca_certs to the CA bundle that signed it"
        )
    status = error.status_code
    if not isinstance(status, int):  # "N/A": connection refused/reset, TLS, timeout
        return SearchUnavailable(f"{doing}: {type(error).__name__}: {error.error}")
    kind = _error_type(error)
    text = f"{doing}: HTTP {status} {error.error}"
    if status == 413:
        return RequestTooLarge(text, status=status, error_type=kind)
    if status == 429 or status >= 500:
        return SearchUnavailable(text, status=status, error_type=kind)
    if kind == "index_not_found_exception":
        return IndexNotFound(text, status=status, error_type=kind)
    if status == 401:
        return SearchRefused(
            f"search engine {endpoint} refused {auth} (HTTP 401): fix search.username / "
            "search.password (DYNABRIDGE_SEARCH__PASSWORD), or the AWS credentials",
            status=status,
            error_type=kind,
        )
    if status == 403:
        return SearchRefused(
            f"search engine {endpoint}: {auth} lacks a privilege for {doing} (HTTP 403): "
            "grant it (docs/configuration.md, search privileges), or map the AWS role",
            status=status,
            error_type=kind,
        )
    return SearchError(f"{text}: {error.info!r:.300}", status=status, error_type=kind)
