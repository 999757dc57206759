"""Fixtures shared by every test suite.

The real local stack is session-scoped and lazy: it is touched only when a test asks for one
of its endpoints. A stack already answering at the configured endpoints (``dynabridge dev
up``, or docker compose) is reused and left alone; otherwise the devstack code starts the
missing services and stops, at the end of the session, exactly the ones it started.
Endpoints follow the same ``DYNABRIDGE_DEV_*`` variables as ``dynabridge dev``.
"""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import boto3  # noqa: TID251 - tests build real clients
import pytest
from hypothesis import settings

from dynabridge.devstack import readiness
from dynabridge.devstack import stack as devstack
from dynabridge.devstack.config import StackConfig, load
from tests.streamsim import SimTables, StreamSimServer, session_server

# Property tests run on a shared 2-core machine next to the JVM servers: a per-example time
# limit only turns load into failures, and every property keeps its assertions without it.
settings.register_profile("dynabridge", deadline=None)
settings.load_profile("dynabridge")

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient

AWS_REGION = "us-east-1"
INTEGRATION_DIR = Path(__file__).parent / "integration"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/integration talks to the real stack: ``-m "not integration"``
    then runs without any server."""
    for item in items:
        if INTEGRATION_DIR in item.path.parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack_config() -> StackConfig:
    return load(os.environ)


def _answering(config: StackConfig) -> bool:
    return (
        readiness.moto_ready(config.moto_endpoint)
        and readiness.kafka_ready(config.kafka_bootstrap)
        and readiness.search_ready(config.es_url)
        and readiness.search_ready(config.opensearch_url)
    )


@pytest.fixture(scope="session")
def stack(stack_config: StackConfig) -> Iterator[StackConfig]:
    """The four servers, ready. Starts (and later stops) only what is not already running."""
    if _answering(stack_config):
        yield stack_config
        return

    def progress(message: str) -> None:
        print(f"[stack] {message}", file=sys.stderr)

    outcome = devstack.up(stack_config, (), progress)
    started = [name for name, how in outcome.items() if how == "started"]
    try:
        yield stack_config
    finally:
        devstack.down(stack_config, started, progress)


def _started_for_session(
    config: StackConfig, names: tuple[str, ...], label: str
) -> Iterator[StackConfig]:
    """The named services, ready: reused when running, else started and stopped at the end."""
    services = devstack.selected(config, names)
    if all(devstack.running_record(s) is not None and s.probe() for s in services):
        yield config
        return

    def progress(message: str) -> None:
        print(f"[{label}] {message}", file=sys.stderr)

    outcome = devstack.up(config, names, progress)
    started = [name for name, how in outcome.items() if how == "started"]
    try:
        yield config
    finally:
        devstack.down(config, started, progress)


@pytest.fixture(scope="session")
def engines_stack(stack: StackConfig) -> Iterator[StackConfig]:
    """Elasticsearch 8 and OpenSearch 3 beside the plain stack (``dev up --engines es8,os3``)."""
    yield from _started_for_session(stack, ("elasticsearch8", "opensearch3"), "engines")


@pytest.fixture(scope="session")
def es8_url(engines_stack: StackConfig) -> str:
    return engines_stack.es8_url


@pytest.fixture(scope="session")
def opensearch3_url(engines_stack: StackConfig) -> str:
    return engines_stack.opensearch3_url


@pytest.fixture(scope="session")
def secure_stack(stack_config: StackConfig) -> Iterator[StackConfig]:
    """The secure profile (``dev up --secure``) on its own ports, beside the plain stack; of
    the plain stack it needs moto only."""
    names = ("kafka-secure", "elasticsearch-secure", "opensearch-secure", "moto")
    yield from _started_for_session(stack_config, names, "secure")


@pytest.fixture(scope="session")
def kafka_bootstrap(stack: StackConfig) -> str:
    return stack.kafka_bootstrap


@pytest.fixture(scope="session")
def es_url(stack: StackConfig) -> str:
    return stack.es_url


@pytest.fixture(scope="session")
def opensearch_url(stack: StackConfig) -> str:
    return stack.opensearch_url


@pytest.fixture(scope="session")
def moto_endpoint(stack: StackConfig) -> str:
    return stack.moto_endpoint


@pytest.fixture(scope="session")
def aws_credentials() -> dict[str, str]:
    """Dummy credentials: moto accepts any, and tests must never reach a real account."""
    return {
        "region_name": AWS_REGION,
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
    }


@pytest.fixture(scope="session")
def dynamodb(moto_endpoint: str, aws_credentials: dict[str, str]) -> DynamoDBClient:
    return boto3.client("dynamodb", endpoint_url=moto_endpoint, **aws_credentials)  # type: ignore[call-overload, no-any-return]


@pytest.fixture(scope="session")
def dynamodbstreams(moto_endpoint: str, aws_credentials: dict[str, str]) -> DynamoDBStreamsClient:
    return boto3.client("dynamodbstreams", endpoint_url=moto_endpoint, **aws_credentials)  # type: ignore[call-overload, no-any-return]


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """``unique_name("orders")`` -> ``"orders-1f2e3d4c"``: isolates tests on shared servers.

    Lower-case hex, so the result is a valid index, topic, table and group name.
    """

    def make(prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:8]}"

    return make


@pytest.fixture(scope="session")
def streamsim(
    request: pytest.FixtureRequest, stack_config: StackConfig
) -> Iterator[StreamSimServer]:
    """The DynamoDB Streams simulator (tests/streamsim.py) in front of the shared moto; it
    needs moto alone, so a running moto is enough (otherwise the stack is brought up)."""
    moto = stack_config.moto_endpoint
    if not readiness.moto_ready(moto):
        moto = request.getfixturevalue("moto_endpoint")
    yield from session_server(moto)


@pytest.fixture
def sim_tables(
    streamsim: StreamSimServer, unique_name: Callable[[str], str]
) -> Iterator[SimTables]:
    """Per-test simulated tables (``sim_tables.moto_table(shards=4, ...)``), dropped after."""
    tables = SimTables(streamsim, streamsim.moto_client(), unique_name)
    yield tables
    tables.cleanup()
