"""Read ``index.gc_deletes`` of a table's index, for backfill's safety check.

Goes through the one search client (``consumers.search.client``): the same auth, TLS and SigV4
as the indexer. Failures leave as :class:`SearchCheckUnavailable`; the caller decides whether
an unverifiable setting stops the backfill.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from bridge.runtime.settings import SearchSettings
from consumers.search.errors import IndexNotFound, SearchFailure
from consumers.search.factory import connect


class SearchCheckUnavailable(Exception):  # noqa: N818 - a condition, like SearchUnavailable
    """The engine could not be asked; the message says why."""


def index_gc_deletes(
    settings: SearchSettings, index: str, aws_region: str | None = None
) -> str | None:
    """The index's effective ``index.gc_deletes``; None when the index does not exist yet."""
    try:
        client = connect(settings, aws_region)
    except SearchFailure as error:
        raise SearchCheckUnavailable(str(error)) from None
    try:
        response = client.request(
            "GET",
            f"/{quote(index, safe='')}/_settings/index.gc_deletes",
            params={"include_defaults": "true", "flat_settings": "true"},
        )
    except IndexNotFound:
        return None
    except SearchFailure as error:
        raise SearchCheckUnavailable(str(error)) from None
    finally:
        client.close()
    return _gc_deletes(response, index)


def _gc_deletes(response: Mapping[str, Any], index: str) -> str:
    """The value from a flat ``_settings`` answer: the index's own, else the engine default."""
    for body in response.values():  # keyed by the concrete index (an alias resolves to it)
        for section in ("settings", "defaults"):
            value = body.get(section, {}).get("index.gc_deletes")
            if value is not None:
                return str(value)
    raise SearchCheckUnavailable(f"index {index}: no index.gc_deletes in the _settings answer")
