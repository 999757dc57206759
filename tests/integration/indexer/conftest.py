"""Fixtures of the indexer's integration tests: each engine, and a pipeline of unique names."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from bridge.contract import dlq_topic, topic_name
from consumers.indexer.documents import index_name
from tests.indices import drop_table_indices
from tests.integration.indexer.indexer_harness import Pipeline, create_topic, delete_topics

PARTITIONS = 3


@pytest.fixture(params=["elasticsearch", "opensearch"])
def engine(request: pytest.FixtureRequest) -> tuple[str, str]:
    fixture = "es_url" if request.param == "elasticsearch" else "opensearch_url"
    return request.param, request.getfixturevalue(fixture)


@pytest.fixture
def pipeline(
    kafka_bootstrap: str, engine: tuple[str, str], unique_name: Callable[[str], str]
) -> Iterator[Pipeline]:
    backend, url = engine
    table = unique_name("orders")
    topic = topic_name("it.", table)
    create_topic(kafka_bootstrap, topic, PARTITIONS)
    index = index_name("it-", table)
    yield Pipeline(kafka_bootstrap, backend, url, table, topic, unique_name("indexer"), index)
    delete_topics(kafka_bootstrap, [topic, dlq_topic(topic)])
    drop_table_indices(url, index)
