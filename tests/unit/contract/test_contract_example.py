"""The example consumer in docs/ decodes what the bridge encodes, with no dynabridge import."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

import bridge.contract
from bridge.contract import ChangeEvent, Encoder, EventName, Origin, dumps_item

DOCS = Path(__file__).resolve().parents[3] / "docs"
EXAMPLE = DOCS / "examples" / "consume.py"
AVSC = Path(bridge.contract.__file__).parent / "change_event.avsc"

EVENT = ChangeEvent(
    table="users",
    event_name=EventName.REMOVE,
    event_id="e-1",
    stream_arn="",
    shard_id="",
    sequence_number="",
    approximate_creation_time_ms=1_700_000_000_000,
    version=1_699_999_700_000_000,
    keys={"id": {"B": b"\x01\x02"}},
    new_image=None,
    old_image={"id": {"B": b"\x01\x02"}, "n": {"N": "1E+100"}, "tags": {"NS": ["1", "2"]}},
    ttl_delete=True,
    origin=Origin.SNAPSHOT,
)


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("dynabridge_example_consume", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_example_imports_nothing_from_dynabridge() -> None:
    tree = ast.parse(EXAMPLE.read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (
            node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
        )
    }
    assert imported <= {"io", "json", "sys", "typing", "fastavro", "confluent_kafka"}


def test_the_example_decodes_what_the_encoder_writes(example: ModuleType) -> None:
    schema, fingerprint = example.load_schema(str(AVSC))
    event = example.decode(Encoder().encode(EVENT), schema, fingerprint)
    assert event["event_name"] == "REMOVE"
    assert event["version"] == EVENT.version
    assert event["ttl_delete"] is True
    assert event["origin"] == "SNAPSHOT"
    assert event["new_image"] is None
    assert event["keys"] == {"id": {"B": "AQI="}}
    assert event["old_image"] == {
        "id": {"B": "AQI="},
        "n": {"N": "1E+100"},
        "tags": {"NS": ["1", "2"]},
    }


def test_the_example_refuses_foreign_values(example: ModuleType) -> None:
    schema, fingerprint = example.load_schema(str(AVSC))
    with pytest.raises(ValueError, match="not a change event"):
        example.decode(b"\x00\x00\x00\x00\x01" + Encoder().encode(EVENT)[10:], schema, fingerprint)


def test_the_doc_embeds_the_example_and_the_schema_verbatim() -> None:
    doc = (DOCS / "topic-contract.md").read_text()
    blocks = re.findall(r"```(\w+)\n(.*?)```", doc, flags=re.DOTALL)
    assert ("python", EXAMPLE.read_text()) in blocks
    assert ("json", AVSC.read_text()) in blocks


def test_the_docs_key_example_is_what_kafka_key_writes() -> None:
    doc = (DOCS / "topic-contract.md").read_text()
    assert dumps_item({"pk": {"S": "order#1"}, "sk": {"N": "10"}}) in doc


def test_the_doc_states_the_current_fingerprint() -> None:
    doc = (DOCS / "topic-contract.md").read_text()
    assert f"`{bridge.contract.FINGERPRINT.hex()}`" in doc
