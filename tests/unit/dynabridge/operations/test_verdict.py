"""The trace verdict names the first stage the item's latest change has not passed."""

from __future__ import annotations

import dataclasses

from bridge.contract import EventName
from dynabridge.operations.verdict import Facts, KafkaChange, Stage, StreamChange, verdict

CHANGE = StreamChange("shard-1", "200", EventName.MODIFY, 77, 0, checkpoint="200", owner="w1")
RECORD = KafkaChange(offset=41, version=77, sequence_number="200", event_name="MODIFY")
SYNCED = Facts(
    table_document={"pk": "a", "v": 2},
    stream=CHANGE,
    kafka=RECORD,
    kafka_scanned=100,
    topic="ddb.t",
    partition=3,
    committed=42,
    end=42,
    index_version=77,
    index_document={"pk": "a", "v": 2},
    differing_fields=(),
)


def _stage(**changes: object) -> Stage:
    return verdict(dataclasses.replace(SYNCED, **changes)).stage  # type: ignore[arg-type]


def test_in_sync() -> None:
    assert verdict(SYNCED).stage is Stage.IN_SYNC


def test_unpublished_change_behind_the_checkpoint() -> None:
    ahead = dataclasses.replace(CHANGE, sequence_number="300")
    result = verdict(dataclasses.replace(SYNCED, stream=ahead))
    assert result.stage is Stage.NOT_PUBLISHED
    assert "checkpoint 200" in result.text
    assert "owner w1" in result.text
    assert _stage(stream=ahead, kafka=None) is Stage.NOT_PUBLISHED


def test_published_but_not_found_in_kafka() -> None:
    assert _stage(kafka=None) is Stage.NOT_IN_KAFKA


def test_a_later_record_of_the_key_covers_the_change() -> None:
    later = dataclasses.replace(RECORD, sequence_number="250", version=80)
    assert _stage(kafka=later, index_version=80) is Stage.IN_SYNC


def test_indexer_lag() -> None:
    result = verdict(dataclasses.replace(SYNCED, committed=30))
    assert result.stage is Stage.INDEXER_LAG
    assert "offset 41" in result.text
    assert "committed 30" in result.text
    assert _stage(committed=None) is Stage.INDEXER_LAG


def test_committed_but_not_indexed() -> None:
    assert _stage(index_version=70) is Stage.NOT_INDEXED
    assert _stage(index_document=None, index_version=None) is Stage.NOT_INDEXED
    assert _stage(table_document=None) is Stage.NOT_INDEXED  # deleted, still in the index


def test_deleted_everywhere_and_differing_documents() -> None:
    assert _stage(table_document=None, index_document=None, index_version=None) is Stage.IN_SYNC
    assert _stage(differing_fields=("v",)) is Stage.INDEX_DIFFERS
