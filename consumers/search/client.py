"""What every caller sees of a search engine: :class:`SearchClient`, whichever engine it is.

``consumers.search.factory.connect`` builds one; the adapters (``elasticsearch``,
``opensearch``) implement it and translate their client's errors into
``consumers.search.errors``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from bridge.runtime.settings import SearchBackend, SearchSettings
from consumers.search.errors import SearchFailure

JSON_HEADERS = {"accept": "application/json", "content-type": "application/json"}


def transport_options(settings: SearchSettings) -> dict[str, Any]:
    """The client options both engines' Python clients name alike: TLS and retries.

    The caller owns retries (the indexer per item, with backoff): a client must not resend a
    whole bulk on 429/5xx behind its back. Another node is tried on connection errors.
    """
    options: dict[str, Any] = {
        "verify_certs": settings.verify_certs,
        "retry_on_status": (),
        "retry_on_timeout": False,
        "max_retries": len(settings.hosts) - 1,
    }
    if settings.ca_certs:
        options["ca_certs"] = settings.ca_certs
    return options


def basic_auth(settings: SearchSettings) -> tuple[str, str] | None:
    """``(search.username, search.password)`` when a username is set."""
    if settings.username is None:
        return None
    return settings.username, settings.password.get_secret_value() if settings.password else ""


class SearchClient(Protocol):
    """One engine over HTTP; raises only ``consumers.search.errors`` exceptions."""

    @property
    def engine(self) -> SearchBackend: ...

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
        """One request; the JSON answer (``{}`` for an empty one).

        ``body`` is JSON (a mapping) or raw bytes sent with ``headers``' content type.
        """

    def close(self) -> None: ...


def healthy(client: SearchClient, timeout_s: float = 5.0) -> bool:
    """True when the engine answers the cluster health API.

    The health API rather than ``GET /``: some distributions (the integ-test zip) ship without
    the root endpoint.
    """
    try:
        client.request("GET", "/_cluster/health", timeout_s=timeout_s)
    except SearchFailure:
        return False
    return True
