"""A pipeline built by hand for the operator commands: a moto table with a stream, a topic
holding contract-encoded events, an index holding documents, a lease row, a group commit.

Nothing here runs the bridge or the indexer: each test sets up exactly the state it checks.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from confluent_kafka.admin import AdminClient  # noqa: TID251 - tests build real clients

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient


from bridge.runtime.settings import SearchBackend as BackendName
from tests.tables import create_pk_sk_table

from .ops_pipeline import Pipeline


@pytest.fixture(params=["elasticsearch"])
def search(request: pytest.FixtureRequest) -> tuple[str, str]:
    fixture = "es_url" if request.param == "elasticsearch" else "opensearch_url"
    return request.param, request.getfixturevalue(fixture)


@pytest.fixture
def pipeline(
    dynamodb: DynamoDBClient,
    dynamodbstreams: DynamoDBStreamsClient,
    kafka_bootstrap: str,
    moto_endpoint: str,
    search: tuple[str, str],
    unique_name: Callable[[str], str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Pipeline]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    table, prefix = unique_name("ops"), f"{unique_name('t')}."
    create_pk_sk_table(dynamodb, table)
    backend_name, url = search
    pipeline = Pipeline(
        dynamodb=dynamodb,
        streams=dynamodbstreams,
        kafka=kafka_bootstrap,
        search_url=url,
        backend_name=BackendName(backend_name),
        table=table,
        prefix=prefix,
        group=unique_name("group"),
        lease_table=unique_name("leases"),
        config=tmp_path / "config.yaml",
    )
    settings = {
        "aws": {"region": "us-east-1", "endpoint_url": moto_endpoint},
        "kafka": {"bootstrap_servers": kafka_bootstrap, "topic_prefix": prefix},
        "bridge": {"tables": [table], "lease_table": pipeline.lease_table},
        "indexer": {"group_id": pipeline.group, "session_timeout_ms": 6000},
        "search": {"backend": backend_name, "hosts": [url]},
    }
    pipeline.config.write_text(yaml.safe_dump(settings))
    yield pipeline
    dynamodb.delete_table(TableName=table)
    AdminClient({"bootstrap.servers": kafka_bootstrap}).delete_topics([pipeline.topic])
    _delete_index(url, table)


def _delete_index(url: str, index: str) -> None:
    import urllib.request

    request = urllib.request.Request(f"{url}/{index}", method="DELETE")  # noqa: S310
    with contextlib.suppress(OSError):  # never created
        urllib.request.urlopen(request, timeout=10).close()  # noqa: S310 - local stack
