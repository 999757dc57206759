"""Fixtures of the e2e suite: a per-test pipeline (tables, topics, lease table, group, indices,
both processes) that is always torn down, with the processes' logs printed when a test fails."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.e2e.harness import E2E

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient

E2E_DIR = Path(__file__).parent
LOG_ROOT = Path(os.environ.get("E2E_WORK_DIR") or tempfile.gettempdir()) / "dynabridge-e2e"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """e2e tests need the real stack too: ``-m "not integration"`` leaves them out."""
    for item in items:
        if E2E_DIR in item.path.parents:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.integration)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    item.stash.setdefault(FAILED, False)
    if report.failed:
        item.stash[FAILED] = True
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
def workdir(request: pytest.FixtureRequest) -> Iterator[Path]:
    """This test's directory for logs, configs and a dedicated broker's data. Not tmp_path:
    pytest runs of other suites on a shared machine prune /tmp/pytest-of-<user> under a running
    test, and a failed run's logs must stay. Removed when the test passes (E2E_KEEP_LOGS=1 keeps
    it)."""
    path = LOG_ROOT / f"{request.node.name[:60]}-{uuid.uuid4().hex[:6]}"
    path.mkdir(parents=True)
    yield path
    if not request.node.stash.get(FAILED, False) and not os.environ.get("E2E_KEEP_LOGS"):
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def e2e(
    request: pytest.FixtureRequest,
    dynamodb: DynamoDBClient,
    dynamodbstreams: DynamoDBStreamsClient,
    kafka_bootstrap: str,
    es_url: str,
    moto_endpoint: str,
    unique_name: Callable[[str], str],
    workdir: Path,
) -> Iterator[E2E]:
    factory = E2E(
        dynamodb,
        dynamodbstreams,
        unique_name,
        workdir,
        {"kafka": kafka_bootstrap, "es": es_url, "moto": moto_endpoint},
    )
    yield factory
    factory.cleanup(kafka_bootstrap, es_url, request.node.stash.get(FAILED, False))
