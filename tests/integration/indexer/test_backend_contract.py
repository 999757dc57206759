"""Elasticsearch 8 and 9, OpenSearch 2 and 3 of the local stack keep the search backend
contract (8 and 3 run beside the plain stack: ``dynabridge dev up --engines es8,os3``)."""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from bridge.runtime.settings import SearchBackend as SearchBackendName
from bridge.runtime.settings import SearchSettings
from consumers.indexer.actions import ItemResult
from consumers.indexer.backend import IndexingBackend, build_backend
from tests.contracts.search_backend import CHECKS, Engine
from tests.integration.indexer.indexer_harness import http


class RealEngine:
    def __init__(self, backend: str, url: str, unique_name: Callable[[str], str]) -> None:
        self._backend, self._url, self._unique = backend, url, unique_name
        self.backends: list[IndexingBackend] = []
        self.indices: list[str] = []

    def backend(self, **search_settings: Any) -> IndexingBackend:
        settings = SearchSettings(
            backend=SearchBackendName(self._backend), hosts=[self._url], **search_settings
        )
        made = build_backend(settings)
        self.backends.append(made)
        return made

    def now_ms(self) -> int:
        return int(time.time() * 1000)

    def index(self) -> str:
        self.indices.append(self._unique("it-contract"))
        return self.indices[-1]

    def document(self, index: str, doc_id: str) -> tuple[int, dict[str, Any]] | None:
        status, body = http(
            "GET", f"{self._url}/{index}/_doc/{urllib.parse.quote(doc_id, safe='')}"
        )
        if status == 404 or "~deleted" in body.get("_source", {}):
            return None  # a tombstone keeps the version of a deleted item; no document
        assert status == 200, body
        return int(body["_version"]), body["_source"]

    def after_gc_deletes(self, index: str, attempt: Callable[[], ItemResult]) -> ItemResult:
        # Tombstones are pruned on refresh once gc_deletes has passed.
        deadline = time.monotonic() + 30
        while True:
            http("POST", f"{self._url}/{index}/_refresh")
            result = attempt()
            if result.status != 409 or time.monotonic() > deadline:
                return result
            time.sleep(0.2)

    def close(self) -> None:
        for backend in self.backends:
            backend.close()
        for index in self.indices:
            http("DELETE", f"{self._url}/{index}~*")
            http("DELETE", f"{self._url}/_index_template/dynabridge.{index}")


ENGINES = {
    "es9": ("elasticsearch", "es_url"),
    "es8": ("elasticsearch", "es8_url"),
    "os2": ("opensearch", "opensearch_url"),
    "os3": ("opensearch", "opensearch3_url"),
}


@pytest.fixture(params=list(ENGINES))
def engine(request: pytest.FixtureRequest, unique_name: Callable[[str], str]) -> Iterator[Engine]:
    backend, url_fixture = ENGINES[request.param]
    real = RealEngine(backend, request.getfixturevalue(url_fixture), unique_name)
    yield real
    real.close()


SLOW_ON_THE_SECOND_MAJOR = frozenset({"check_a_delete_is_still_remembered_after_gc_deletes"})
"""Waits ~30 s for the engine to forget deletes; run on es9 and os2 only (index.gc_deletes
has not changed between 8 and 9, nor between OpenSearch 2 and 3), to keep CI time bounded."""


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_the_engine_keeps_the_contract(
    check: Callable[[Engine], None], engine: Engine, request: pytest.FixtureRequest
) -> None:
    if check.__name__ in SLOW_ON_THE_SECOND_MAJOR and request.node.callspec.id.startswith(
        ("es8-", "os3-")
    ):
        pytest.skip("run on es9 and os2 only (CI time): the same mechanism")
    check(engine)
