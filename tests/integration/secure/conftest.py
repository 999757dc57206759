"""Fixtures of the secure-profile tests: the profile itself (started beside the plain stack
when it is not running, on its own ports) and a per-test run with unique names, cleaned up."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3  # noqa: TID251 - tests build real clients
import pytest

from dynabridge.devstack import secure as profile
from dynabridge.devstack.client_config import KafkaAuth, SearchAuth
from dynabridge.devstack.config import StackConfig
from tests.integration.secure.harness import SecureRun
from tests.tables import create_pk_sk_table

MakeRun = Callable[..., SecureRun]


class SecureEngine:
    """The test's own view of a secure engine (the profile's user, its CA): the oracle's reads."""

    def __init__(self, config: StackConfig, search: SearchAuth) -> None:
        value = profile.load_secrets(config)
        assert value is not None
        self._config = config
        if search is SearchAuth.OPENSEARCH_BASIC:
            self.url = config.opensearch_secure_url
            self._auth = (value.opensearch_username, value.opensearch_password)
        else:
            self.url = config.es_secure_url
            self._auth = (value.es_username, value.es_password)

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return profile.https_json(
            self._config, method, self.url + path, basic_auth=self._auth, body=body
        )

    def document(self, index: str, doc_id: str) -> dict[str, Any] | None:
        status, body = self.request("GET", f"/{index}/_doc/{urllib.parse.quote(doc_id, safe='')}")
        if status == 404 or not body.get("found", False):
            return None
        assert status == 200, body
        source: dict[str, Any] = body["_source"]
        return None if "~deleted" in source else source

    def drop(self, index: str) -> None:
        with contextlib.suppress(Exception):
            self.request("DELETE", f"/{index}~*")
            self.request("DELETE", f"/_index_template/dynabridge.{index}")


@pytest.fixture(scope="session")
def secure_dynamodb(secure_stack: StackConfig, aws_credentials: dict[str, str]) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        "dynamodb", endpoint_url=secure_stack.moto_endpoint, **aws_credentials
    )


@pytest.fixture
def make_run(secure_stack: StackConfig, secure_dynamodb: Any) -> Iterator[MakeRun]:
    """``make_run(kafka, search, overrides)``: a table with a stream, a configuration, and
    the clean-up of its table, topics and indices."""
    runs: list[SecureRun] = []
    workdir = Path(tempfile.mkdtemp(prefix="dynabridge-secure-"))

    def make(
        kafka: KafkaAuth, search: SearchAuth, overrides: dict[str, Any] | None = None
    ) -> SecureRun:
        prefix = f"sec-{uuid.uuid4().hex[:8]}."
        table = f"{prefix[:-1]}-items"
        create_pk_sk_table(secure_dynamodb, table)
        run = SecureRun(secure_stack, workdir, kafka, search, table, prefix, overrides or {})
        runs.append(run)
        return run

    yield make
    for run in runs:
        run.stop_all()
        with contextlib.suppress(Exception):
            secure_dynamodb.delete_table(TableName=run.table)
        with contextlib.suppress(Exception):
            secure_dynamodb.delete_table(TableName=run.content["bridge"]["lease_table"])
        with contextlib.suppress(Exception):
            run.drop_topics()
        SecureEngine(secure_stack, run.search).drop(run.index)
    shutil.rmtree(workdir, ignore_errors=True)
