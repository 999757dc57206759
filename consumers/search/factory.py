"""The one way into a search engine: :func:`connect` builds the client for ``search.backend``.

Every caller (the indexer, the operator commands, backfill's checks) gets the same auth
(basic, API key, AWS SigV4), TLS, timeouts and error translation. The engine's own client
never retries by itself: whoever calls decides (the indexer per bulk item, with backoff).
Only the chosen engine's client library is imported.
"""

from __future__ import annotations

from bridge.runtime.settings import SearchBackend, SearchSettings
from consumers.search.client import SearchClient


def connect(settings: SearchSettings, aws_region: str | None = None) -> SearchClient:
    """The client for ``search.backend``; no request is made here.

    ``aws_region`` (``aws.region``) is used only to sign requests with ``search.aws_sigv4``.
    """
    if settings.backend is SearchBackend.OPENSEARCH:
        from consumers.search.opensearch import OpenSearchClient

        return OpenSearchClient(settings, aws_region)
    from consumers.search.elasticsearch import ElasticsearchClient

    return ElasticsearchClient(settings)
