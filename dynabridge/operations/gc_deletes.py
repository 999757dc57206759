"""Read how long a table's index remembers deletes, for backfill's safety check: for ever
(until purged) in a managed index, whose deletes are tombstone documents; ``index.gc_deletes``
in any other.

Goes through the one search client (``consumers.search.client``): the same auth, TLS and SigV4
as the indexer. Failures leave as :class:`SearchCheckUnavailable`; the caller decides whether
an unverifiable setting stops the backfill.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from bridge.runtime.settings import SearchSettings
from consumers.indexer.templates import is_managed
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


def keeps_tombstones(
    settings: SearchSettings, index: str, aws_region: str | None = None
) -> bool | None:
    """Whether ``index`` (an alias: its write index) has the managed mapping, so its deletes are
    tombstone documents; None when it does not exist yet (the indexer will create a managed
    one, unless ``search.index_mappings`` or a template says otherwise)."""
    try:
        client = connect(settings, aws_region)
    except SearchFailure as error:
        raise SearchCheckUnavailable(str(error)) from None
    try:
        response = client.request("GET", f"/{quote(index, safe='')}/_mapping")
    except IndexNotFound:
        return None
    except SearchFailure as error:
        raise SearchCheckUnavailable(str(error)) from None
    finally:
        client.close()
    return any(is_managed(body.get("mappings", {})) for body in response.values())


def _gc_deletes(response: Mapping[str, Any], index: str) -> str:
    """The value from a flat ``_settings`` answer: the index's own, else the engine default."""
    for body in response.values():  # keyed by the concrete index (an alias resolves to it)
        for section in ("settings", "defaults"):
            value = body.get(section, {}).get("index.gc_deletes")
            if value is not None:
                return str(value)
    raise SearchCheckUnavailable(f"index {index}: no index.gc_deletes in the _settings answer")
