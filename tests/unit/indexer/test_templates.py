"""The managed mapping: under it no value is refused; the user's settings and mappings win."""

from __future__ import annotations

import pytest

from bridge.runtime.settings import ConfigError, SearchBackend, SearchSettings
from consumers.indexer.templates import (
    MAPPING_VERSION,
    index_body,
    index_template,
    is_managed,
    template_name,
)

ES, OS = SearchBackend.ELASTICSEARCH, SearchBackend.OPENSEARCH


def test_the_template_covers_the_index_and_its_generations() -> None:
    template = index_template("orders", SearchSettings(template_priority=300), ES)
    assert template_name("orders") == "dynabridge.orders"
    assert template["index_patterns"] == ["orders", "orders~*"]
    assert template["priority"] == 300
    assert template["composed_of"] == []


def test_nothing_is_indexed_at_natural_names_and_typed_fields_by_type() -> None:
    mappings = index_body(SearchSettings(), ES)["mappings"]
    assert mappings["dynamic"] is False
    assert mappings["_source"] == {"excludes": ["ddb"]}
    assert mappings["properties"]["ddb"]["dynamic"] is True
    by_path = {
        next(iter(rule.values()))["path_match"]: next(iter(rule.values()))["mapping"]["type"]
        for rule in mappings["dynamic_templates"]
    }
    assert by_path == {
        "ddb.*.S": "text",
        "ddb.*.N": "double",
        "ddb.*.BOOL": "boolean",
        "ddb.*.NULL": "boolean",
        "ddb.*.B": "keyword",
        "ddb.*.M": "flattened",
    }
    assert is_managed(mappings)
    assert not is_managed({"dynamic": True})
    assert not is_managed({"_meta": {"dynabridge": {"mapping": "typed-fields/0"}}})
    assert mappings["_meta"]["dynabridge"]["mapping"] == MAPPING_VERSION


def test_opensearch_gets_flat_object_and_no_elasticsearch_only_setting() -> None:
    body = index_body(SearchSettings(), OS)
    types = [
        next(iter(r.values()))["mapping"]["type"] for r in body["mappings"]["dynamic_templates"]
    ]
    assert "flat_object" in types
    assert "flattened" not in types
    assert "index.mapping.total_fields.ignore_dynamic_beyond_limit" not in body["settings"]
    es = index_body(SearchSettings(), ES)["settings"]
    assert es["index.mapping.total_fields.ignore_dynamic_beyond_limit"] is True


def test_user_settings_and_mappings_win_and_extend() -> None:
    settings = SearchSettings(
        index_settings={"index": {"number_of_shards": 3}, "refresh_interval": "5s"},
        index_mappings={
            "properties": {"qty": {"type": "long"}},
            "dynamic_templates": [{"mine": {"match": "x*", "mapping": {"type": "keyword"}}}],
        },
        gc_deletes="30m",
    )
    body = index_body(settings, ES)
    assert body["settings"]["index.number_of_shards"] == 3
    assert body["settings"]["index.refresh_interval"] == "5s"
    assert body["settings"]["index.gc_deletes"] == "30m"
    assert body["settings"]["index.auto_expand_replicas"] == "0-1"
    assert body["mappings"]["properties"]["qty"] == {"type": "long"}
    assert "ddb" in body["mappings"]["properties"], "the managed part stays"
    assert list(body["mappings"]["dynamic_templates"][0]) == ["mine"], "the user's match first"
    replicas = index_body(SearchSettings(index_settings={"number_of_replicas": 2}), ES)
    assert replicas["settings"]["index.number_of_replicas"] == 2
    assert "index.auto_expand_replicas" not in replicas["settings"]


def test_gc_deletes_has_one_home() -> None:
    with pytest.raises(ConfigError, match=r"search\.gc_deletes"):
        index_body(SearchSettings(index_settings={"index.gc_deletes": "5m"}), ES)


def test_date_attributes_get_a_date_field_under_their_source_name() -> None:
    settings = SearchSettings(date_attributes={"_at": "epoch_millis", "created": "date"})
    properties = index_body(settings, ES)["mappings"]["properties"]["ddb"]["properties"]
    assert properties["~_at"]["properties"]["date"]["format"] == "epoch_millis"
    assert properties["created"]["properties"]["date"]["ignore_malformed"] is True
