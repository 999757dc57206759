"""OpenSearch 2/3 (self-managed or Amazon OpenSearch Service) through ``opensearch-py``.

The only module importing ``opensearchpy``: every client error leaves it as SearchUnavailable,
SearchError or RequestTooLarge. The client never retries by itself; the indexer decides.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import opensearchpy  # noqa: TID251 - the OpenSearch adapter
from opensearchpy.exceptions import TransportError  # noqa: TID251 - the OpenSearch adapter

from bridge.settings import SearchSettings
from consumers.indexer.bulk import CONTENT_TYPE, RESPONSE_FILTER
from consumers.indexer.search import RequestTooLarge, SearchError, SearchUnavailable

_BULK_HEADERS = {"accept": "application/json", "content-type": CONTENT_TYPE}
_PING_TIMEOUT_S = 5.0
_SUPPORTED_MAJORS = frozenset({"1", "2", "3"})


class OpenSearchTransport:
    def __init__(self, settings: SearchSettings, aws_region: str | None = None) -> None:
        if settings.api_key is not None:
            raise SearchError(
                "search.api_key is an Elasticsearch feature: for OpenSearch use "
                "search.username/password or search.aws_sigv4"
            )
        options: dict[str, Any] = {
            "timeout": settings.request_timeout_s,
            "verify_certs": settings.verify_certs,
            # The indexer owns retries (per item, with backoff): the client must not resend a
            # whole bulk on 429/5xx behind its back. Another node is tried on connection errors.
            "retry_on_status": (),
            "retry_on_timeout": False,
            "max_retries": len(settings.hosts) - 1,
        }
        if settings.ca_certs:
            options["ca_certs"] = settings.ca_certs
        if settings.aws_sigv4:
            options["http_auth"] = aws_sigv4_auth(settings.aws_service, aws_region)
        elif settings.username is not None:
            password = settings.password.get_secret_value() if settings.password else ""
            options["http_auth"] = (settings.username, password)
        # Amazon OpenSearch Serverless answers no GET /: nothing to check the product with.
        self._verified = settings.aws_sigv4 and settings.aws_service == "aoss"
        try:
            self._client = opensearchpy.OpenSearch(list(settings.hosts), **options)
        except (ValueError, opensearchpy.ImproperlyConfigured) as error:
            raise SearchError(f"search.hosts or TLS settings rejected: {error}") from None

    def create_index(self, index: str, body: Mapping[str, Any]) -> bool:
        self._verify()
        try:
            self._client.indices.create(index=index, body=dict(body))
        except TransportError as error:
            if error.error == "resource_already_exists_exception":
                return False
            raise _translate(error, f"creating index {index}") from None
        return True

    def send_bulk(self, body: bytes) -> Mapping[str, Any]:
        try:
            response = self._client.transport.perform_request(
                "POST", "/_bulk", params=RESPONSE_FILTER, headers=_BULK_HEADERS, body=body
            )
        except TransportError as error:
            raise _translate(error, "bulk") from None
        if not isinstance(response, Mapping):
            raise SearchUnavailable(f"bulk: unexpected response {response!r:.200}")
        return response

    def healthy(self) -> bool:
        try:
            self._client.cluster.health(params={"request_timeout": _PING_TIMEOUT_S})
        except TransportError:
            return False
        return True

    def close(self) -> None:
        self._client.close()

    def _verify(self) -> None:
        """Refuse anything but OpenSearch, once: Elasticsearch would accept some requests."""
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
                    "search.backend to elasticsearch"
                ) from None
            raise _translate(error, "reading the server's version") from None
        version = info.get("version", {}) if isinstance(info, Mapping) else {}
        number = str(version.get("number", "?"))
        if version.get("distribution") != "opensearch" or number[:1] not in _SUPPORTED_MAJORS:
            raise SearchError(
                f"search.hosts {self._hosts()} is not OpenSearch 1-3 (version {number}, "
                f"distribution {version.get('distribution')}); for Elasticsearch set "
                "search.backend to elasticsearch"
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


def _translate(error: TransportError, doing: str) -> Exception:
    """A client error as the project's own: what failed, and for SearchError what to fix."""
    status = error.status_code
    if not isinstance(status, int):  # "N/A": connection refused/reset, TLS, timeout
        return SearchUnavailable(f"{doing}: {type(error).__name__}: {error.error}")
    text = f"{doing}: HTTP {status} {error.error}"
    if status == 413:
        return RequestTooLarge(text)
    if status == 429 or status >= 500:
        return SearchUnavailable(text)
    if status in (401, 403):
        return SearchError(
            f"{text}; check search.username/password or the AWS role, and its privileges"
        )
    return SearchError(f"{text}: {error.info!r:.300}")
