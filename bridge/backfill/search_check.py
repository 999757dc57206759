"""Search adapter for the backfill: read ``index.gc_deletes`` of the table's index, nothing else.

Errors leave this module as :class:`SearchCheckUnavailable` (the caller decides whether an
unverifiable setting stops the backfill); the client never retries.
"""

from __future__ import annotations

from typing import Any

from bridge.settings import SearchBackend, SearchSettings


class SearchCheckUnavailable(Exception):  # noqa: N818 - a condition, like SearchUnavailable
    """The engine could not be asked; the message says why."""


def index_gc_deletes(settings: SearchSettings, index: str) -> str | None:
    """The index's effective ``index.gc_deletes``; None when the index does not exist yet."""
    if settings.aws_sigv4:
        raise SearchCheckUnavailable("requests signed with search.aws_sigv4 are not checked here")
    try:
        if settings.backend is SearchBackend.OPENSEARCH:
            return _opensearch(settings, index)
        return _elasticsearch(settings, index)
    except SearchCheckUnavailable:
        raise
    except Exception as error:  # noqa: BLE001 - any client failure means "cannot verify"
        raise SearchCheckUnavailable(f"{type(error).__name__}: {error}") from None


def _auth(settings: SearchSettings) -> dict[str, Any]:
    options: dict[str, Any] = {"verify_certs": settings.verify_certs}
    if settings.ca_certs:
        options["ca_certs"] = settings.ca_certs
    return options


def _elasticsearch(settings: SearchSettings, index: str) -> str | None:
    import elasticsearch  # noqa: TID251 - the backfill's search adapter

    options = {**_auth(settings), "request_timeout": settings.request_timeout_s, "max_retries": 0}
    if settings.api_key is not None:
        options["api_key"] = settings.api_key.get_secret_value()
    elif settings.username is not None:
        password = settings.password.get_secret_value() if settings.password else ""
        options["basic_auth"] = (settings.username, password)
    with elasticsearch.Elasticsearch(list(settings.hosts), **options) as client:
        try:
            response = client.indices.get_settings(
                index=index, name="index.gc_deletes", include_defaults=True, flat_settings=True
            )
        except elasticsearch.NotFoundError:
            return None
        return _gc_deletes(dict(response), index)


def _opensearch(settings: SearchSettings, index: str) -> str | None:
    import opensearchpy  # noqa: TID251 - the backfill's search adapter

    options = {**_auth(settings), "timeout": settings.request_timeout_s, "max_retries": 0}
    if settings.username is not None:
        password = settings.password.get_secret_value() if settings.password else ""
        options["http_auth"] = (settings.username, password)
    client = opensearchpy.OpenSearch(list(settings.hosts), **options)
    try:
        response = client.indices.get_settings(
            index=index,
            name="index.gc_deletes",
            params={"include_defaults": "true", "flat_settings": "true"},
        )
    except opensearchpy.NotFoundError:
        return None
    finally:
        client.close()
    return _gc_deletes(dict(response), index)


def _gc_deletes(response: dict[str, Any], index: str) -> str:
    """The value from a flat ``_settings`` answer: the index's own, else the engine default."""
    for body in response.values():  # keyed by the concrete index (an alias resolves to it)
        for section in ("settings", "defaults"):
            value = body.get(section, {}).get("index.gc_deletes")
            if value is not None:
                return str(value)
    raise SearchCheckUnavailable(f"index {index}: no index.gc_deletes in the _settings answer")
