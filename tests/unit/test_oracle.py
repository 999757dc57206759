"""The tests' oracle (tests/oracle.py, written from docs/indexer.md) and the indexer agree.

When this fails, either the indexer or the documentation is wrong: the e2e suites compare the
index with the oracle, never with the indexer's own conversion.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given

from bridge.contract import Item
from consumers.indexer.documents import doc_id, source_document
from tests.oracle import expected_id, expected_source
from tests.unit.contract.contract_strategies import items, primary_keys


@given(items)
def test_documents_follow_the_documented_rules(item: Item) -> None:
    assert source_document(item) == expected_source(item)


@given(primary_keys)
def test_ids_follow_the_documented_rules(keys: Item) -> None:
    assert doc_id(keys) == expected_id(keys)


def test_the_documented_examples() -> None:
    examples: list[tuple[dict[str, Any], str]] = [
        ({"pk": {"S": "user-42"}}, "user-42"),
        ({"pk": {"S": "order"}, "sk": {"N": "7"}}, "order|7"),
        ({"pk": {"S": "a|b"}, "sk": {"S": "c"}}, "a%7Cb|c"),
        ({"pk": {"B": b"\xff\xfe"}}, "__4="),
        ({"pk": {"N": "1.0"}}, "1"),
    ]
    for keys, wanted in examples:
        assert expected_id(keys) == wanted
    numbers = {"1E+3": 1000, "0.1": 0.1, "9007199254740993": "9007199254740993",
               "1E+22": "10000000000000000000000", "-0": 0,
               "0.1234567890123456789": "0.1234567890123456789"}  # fmt: skip
    for text, wanted_number in numbers.items():
        assert expected_source({"n": {"N": text}}) == {"n": wanted_number}
