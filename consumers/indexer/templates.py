"""The managed mapping, as the index template the indexer installs for each table's index.

Under it every legal item is accepted (docs/indexer.md, "Mapping"): ``_source`` holds the item
at its own names and the engine indexes none of them (``dynamic: false``); the typed fields
under ``ddb`` (``consumers.indexer.typed_fields``) are mapped by dynamic templates keyed on the
leaf's DynamoDB type, so no two values can ever ask one field for two types. The user's
``search.index_settings`` and ``search.index_mappings`` are merged over it and win; the marker
in ``_meta`` tells the indexer an index is managed (typed fields go into its documents).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from bridge.runtime.settings import ConfigError, SearchBackend, SearchSettings
from consumers.indexer.names import source_name
from consumers.indexer.typed_fields import MAX_KEYWORD_CHARS, ROOT, shadow_key

MAPPING_VERSION = "typed-fields/1"
"""Written into every managed index's ``_meta.dynabridge.mapping``."""
GENERATION_SEPARATOR = "~"
"""``<alias>~<generation>``: the concrete indices of a table (no table name contains ``~``)."""
TOMBSTONE = "~deleted"
"""The one field of a tombstone document: ``{"~deleted": {"at": <epoch ms>}}``. No ``_source``
name can be it (top-level names starting with ``~`` are renamed)."""
TOMBSTONE_AT = f"{TOMBSTONE}.at"
ALIAS_FILTER: dict[str, Any] = {"bool": {"must_not": [{"exists": {"field": TOMBSTONE_AT}}]}}
"""Searches through a table's alias never see tombstones."""
MAP_DEPTH_LIMIT = 64
"""Depth limit of the keyword-indexed ``M`` fields: DynamoDB nests at most 32 levels."""
TOTAL_FIELDS_LIMIT = 10_000
"""The engines' default (1,000) is a few hundred attributes with typed fields."""


class TemplateError(ConfigError):
    """The configured settings or mappings cannot be merged with the managed ones."""


def template_name(index: str) -> str:
    return f"dynabridge.{index}"


def generation_name(alias: str, generation: int) -> str:
    """The concrete index of ``alias``'s ``generation``-th build: ``orders~000002``."""
    return f"{alias}{GENERATION_SEPARATOR}{generation:06d}"


def generation_of(alias: str, index: str) -> int | None:
    """The generation number of concrete ``index`` of ``alias``; None if it is not one."""
    prefix = alias + GENERATION_SEPARATOR
    if not index.startswith(prefix) or not index[len(prefix) :].isdigit():
        return None
    return int(index[len(prefix) :])


def alias_body(alias: str) -> dict[str, Any]:
    """The alias of a table's write index: where the indexer writes and searches go."""
    return {alias: {"is_write_index": True, "filter": ALIAS_FILTER}}


def index_template(index: str, settings: SearchSettings, engine: SearchBackend) -> dict[str, Any]:
    """The composable index template of ``index`` (and of its generations ``index~*``)."""
    return {
        "index_patterns": [index, index + GENERATION_SEPARATOR + "*"],
        "priority": settings.template_priority,
        "composed_of": list(settings.template_composed_of),
        "template": index_body(settings, engine),
        "_meta": {"managed_by": "dynabridge", "mapping": MAPPING_VERSION},
    }


def index_body(settings: SearchSettings, engine: SearchBackend) -> dict[str, Any]:
    """Settings and mappings of a managed index (the template's, or a create-index body)."""
    return {
        "settings": _settings(settings, engine),
        "mappings": _merged(_mappings(settings, engine), settings.index_mappings),
    }


def is_managed(mappings: Mapping[str, Any]) -> bool:
    """Whether an index's mappings (``GET <index>/_mapping``) carry the managed marker."""
    meta = mappings.get("_meta")
    if not isinstance(meta, Mapping):
        return False
    ours = meta.get("dynabridge")
    return isinstance(ours, Mapping) and ours.get("mapping") == MAPPING_VERSION


def _settings(settings: SearchSettings, engine: SearchBackend) -> dict[str, Any]:
    """The user's index settings, flattened, over the managed defaults.

    ``index.gc_deletes`` belongs to ``search.gc_deletes`` alone. Without a replica setting,
    ``index.auto_expand_replicas: 0-1`` keeps a single node green and gives a cluster the
    engines' usual one replica.
    """
    user = {
        key if key.startswith("index.") else "index." + key: value
        for key, value in _flatten(settings.index_settings, "").items()
    }
    if "index.gc_deletes" in user and str(user["index.gc_deletes"]) != settings.gc_deletes:
        raise TemplateError(
            "search.index_settings sets index.gc_deletes; set it with search.gc_deletes only"
        )
    flat: dict[str, Any] = {
        "index.gc_deletes": settings.gc_deletes,
        "index.mapping.total_fields.limit": TOTAL_FIELDS_LIMIT,
        "index.mapping.depth.limit": max(20, settings.typed_depth + 4),
    }
    if engine is SearchBackend.ELASTICSEARCH:
        # Fields past the limit are left out of the index (listed in _ignored) instead of
        # refusing the document: an attribute whose keys are data cannot reject an item.
        flat["index.mapping.total_fields.ignore_dynamic_beyond_limit"] = True
    if "index.number_of_replicas" not in user and "index.auto_expand_replicas" not in user:
        flat["index.auto_expand_replicas"] = "0-1"
    flat.update(user)
    return flat


def _mappings(settings: SearchSettings, engine: SearchBackend) -> dict[str, Any]:
    keyword = {"type": "keyword", "ignore_above": settings.keyword_ignore_above}
    if engine is SearchBackend.ELASTICSEARCH:
        maps: dict[str, Any] = {
            "type": "flattened",
            "depth_limit": MAP_DEPTH_LIMIT,
            "ignore_above": MAX_KEYWORD_CHARS,
        }
    else:
        maps = {"type": "flat_object"}
    leaves = {
        "S": {"type": "text", "fields": {"keyword": keyword}},
        "N": {"type": "double", "ignore_malformed": True},
        "BOOL": {"type": "boolean"},
        "NULL": {"type": "boolean"},
        "B": {"type": "keyword", "ignore_above": MAX_KEYWORD_CHARS},
        "M": maps,
    }
    dates = {
        shadow_key(source_name(attribute)): {
            "properties": {"date": {"type": "date", "format": fmt, "ignore_malformed": True}}
        }
        for attribute, fmt in sorted(settings.date_attributes.items())
    }
    return {
        "dynamic": False,
        "_meta": {"dynabridge": {"mapping": MAPPING_VERSION, "typed_depth": settings.typed_depth}},
        "_source": {"excludes": [ROOT]},
        "properties": {
            ROOT: {"type": "object", "dynamic": True, "properties": dates},
            TOMBSTONE: {"properties": {"at": {"type": "date", "format": "epoch_millis"}}},
        },
        "dynamic_templates": [
            {f"ddb_{kind}": {"path_match": f"{ROOT}.*.{kind}", "mapping": mapping}}
            for kind, mapping in leaves.items()
        ],
    }


def _merged(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` deep-merged over ``base``; lists (dynamic_templates) are appended to."""
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        current = merged.get(key)
        if isinstance(current, Mapping) and isinstance(value, Mapping):
            merged[key] = _merged(current, value)
        elif isinstance(current, list) and isinstance(value, list):
            merged[key] = [*value, *current]  # the user's dynamic templates match first
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _flatten(tree: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat
