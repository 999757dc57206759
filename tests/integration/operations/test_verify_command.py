"""`dynabridge verify` against moto and a real search engine: missing, extra and different
documents are found and listed, and the exit status is 0 only when the index equals the table."""

from __future__ import annotations

import json

import pytest

from bridge.contract import ChangeEvent, EventName, Item
from bridge.runtime.exits import ExitCode

from .ops_pipeline import Pipeline


def _event(pipeline: Pipeline, image: Item, version: int) -> ChangeEvent:
    keys = {"pk": image["pk"], "sk": image["sk"]}
    return ChangeEvent(
        table=pipeline.table,
        event_name=EventName.INSERT,
        event_id=f"e{version}",
        stream_arn="arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x",
        shard_id="shardId-1",
        sequence_number=str(version),
        approximate_creation_time_ms=1_700_000_000_000,
        version=version,
        keys=keys,
        new_image=image,
        old_image=None,
    )


def _items() -> list[Item]:
    return [
        {
            "pk": {"S": f"user-{n}"},
            "sk": {"N": str(n)},
            "name": {"S": f"name {n}"},
            "tags": {"SS": ["b", "a"]},
            "price": {"N": "19.99"},
            "nested": {"M": {"ok": {"BOOL": True}, "list": {"L": [{"N": "1"}, {"NULL": True}]}}},
        }
        for n in range(5)
    ]


@pytest.fixture(params=["elasticsearch", "opensearch"])
def search(request: pytest.FixtureRequest) -> tuple[str, str]:
    fixture = "es_url" if request.param == "elasticsearch" else "opensearch_url"
    return request.param, request.getfixturevalue(fixture)


def test_verify_reports_each_kind_of_difference_then_equal(pipeline: Pipeline) -> None:
    items = _items()
    for item in items:
        pipeline.put(item)
    changed = {**items[1], "name": {"S": "stale name"}}
    extra: Item = {"pk": {"S": "ghost"}, "sk": {"N": "99"}, "name": {"S": "gone"}}
    # items[0] equal, items[1] different, items[2] missing, 3 and 4 equal, plus one extra.
    indexed = [items[0], changed, items[3], items[4], extra]
    pipeline.index_events([_event(pipeline, image, 10 + i) for i, image in enumerate(indexed)])
    pipeline.refresh()

    result = pipeline.run("verify", "--table", pipeline.table, "--json", "--quiet")
    assert result.exit_code == ExitCode.DIFFERENT, result.output
    report = json.loads(result.stdout)
    assert report["differences"] == {"missing": 1, "extra": 1, "different": 1, "dead_lettered": 0}
    assert report["table_items"] == 5
    assert report["equal_documents"] == 3
    examples = {(e["kind"], e["id"]): e["fields"] for e in report["examples"]}
    assert examples == {
        ("missing", "user-2|2"): [],
        ("different", "user-1|1"): ["name"],
        ("extra", "ghost|99"): [],
    }

    pipeline.index_events([_event(pipeline, items[1], 30), _event(pipeline, items[2], 31)])
    pipeline.delete_document("ghost|99")
    pipeline.refresh()
    equal = pipeline.run("verify", "--table", pipeline.table)
    assert equal.exit_code == 0, equal.output
    assert "EQUAL" in equal.stdout
    assert "scanned 5 of" in equal.stderr


def test_verify_of_a_table_without_index_lists_every_item_missing(pipeline: Pipeline) -> None:
    for item in _items()[:2]:
        pipeline.put(item)
    result = pipeline.run("verify", "--table", pipeline.table, "--sample", "1", "--quiet")
    assert result.exit_code == ExitCode.DIFFERENT
    assert "missing 2" in result.stdout
    assert "missing (first 1, 1 more)" in result.stdout
