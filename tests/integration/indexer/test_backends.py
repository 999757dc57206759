"""Both search backends against the real Elasticsearch 9 and OpenSearch 2 of the local stack:
what only a real engine shows (mappings, index settings, outages, the wrong product).

The behaviour the fake engine models too (versions, outcomes, the delete window) is the
contract suite, ``test_backend_contract.py``.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from bridge.runtime.settings import SearchBackend as BackendName
from bridge.runtime.settings import SearchSettings
from consumers.indexer.actions import Action, ActionKind, ItemResult
from consumers.indexer.backend import SearchBackend, SearchError, SearchUnavailable, build_backend
from consumers.indexer.outcomes import Outcome, outcome

INDEX, DELETE = ActionKind.INDEX, ActionKind.DELETE


def _http(method: str, url: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - local stack
    request.add_header("content-type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


@pytest.fixture(params=["elasticsearch", "opensearch"])
def engine(request: pytest.FixtureRequest) -> tuple[str, str]:
    """(backend name, base URL) of each engine of the local stack."""
    fixture = "es_url" if request.param == "elasticsearch" else "opensearch_url"
    return request.param, request.getfixturevalue(fixture)


@pytest.fixture
def make_backend(engine: tuple[str, str]) -> Iterator[Callable[..., SearchBackend]]:
    """Backends on the engine under test; their indices are removed afterwards."""
    name, url = engine
    made: list[SearchBackend] = []

    def make(**overrides: Any) -> SearchBackend:
        options: dict[str, Any] = {"backend": name, "hosts": [url], **overrides}
        backend = build_backend(SearchSettings(**options))
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


@pytest.fixture
def index(engine: tuple[str, str], unique_name: Callable[[str], str]) -> Iterator[str]:
    name = unique_name("it-backends")
    yield name
    _http("DELETE", f"{engine[1]}/{name}~*")
    _http("DELETE", f"{engine[1]}/{name}")
    _http("DELETE", f"{engine[1]}/_index_template/dynabridge.{name}")


def _doc(url: str, index: str, doc_id: str) -> tuple[int, Any]:
    return _http("GET", f"{url}/{index}/_doc/{urllib.parse.quote(doc_id, safe='')}")


def _outcomes(actions: list[Action], results: list[ItemResult]) -> list[Outcome]:
    return [outcome(a.kind, r) for a, r in zip(actions, results, strict=True)]


def test_a_mapping_conflict_is_a_dead_letter_and_the_rest_is_indexed(
    engine: tuple[str, str], make_backend: Any, index: str
) -> None:
    backend = make_backend(index_mappings={"properties": {"qty": {"type": "long"}}})
    actions = [
        Action(INDEX, index, "good-1", 1, {"qty": 1}),
        Action(INDEX, index, "bad", 1, {"qty": "not a number"}),
        Action(INDEX, index, "good-2", 1, {"qty": 2}),
    ]
    results = backend.bulk(actions)
    assert _outcomes(actions, results) == [Outcome.DONE, Outcome.DLQ, Outcome.DONE]
    assert results[1].status == 400
    assert results[1].error_type in ("document_parsing_exception", "mapper_parsing_exception")
    assert results[1].reason is not None
    assert "qty" in results[1].reason
    assert _doc(engine[1], index, "good-2")[0] == 200


def test_ensure_index_applies_settings_mappings_and_gc_deletes(
    engine: tuple[str, str], make_backend: Any, index: str
) -> None:
    settings = {"index_settings": {"number_of_shards": 2}, "gc_deletes": "2h"}
    mappings = {"properties": {"price": {"type": "double"}}}
    backend = make_backend(**settings, index_mappings=mappings)
    backend.ensure_index(index)
    backend.ensure_index(index)  # cached
    make_backend(**settings, index_mappings=mappings).ensure_index(index)  # exists already: fine
    status, body = _http("GET", f"{engine[1]}/{index}/_settings")
    assert status == 200
    [(concrete, found)] = body.items()
    assert concrete == f"{index}~000001", "the index is an alias of its first generation"
    applied = found["settings"]["index"]
    assert applied["gc_deletes"] == "2h"
    assert applied["number_of_shards"] == "2"
    assert applied["auto_expand_replicas"] == "0-1"
    status, body = _http("GET", f"{engine[1]}/{index}/_mapping")
    assert body[concrete]["mappings"]["properties"]["price"] == {"type": "double"}
    health = _http("GET", f"{engine[1]}/_cluster/health/{index}?wait_for_status=green&timeout=20s")
    assert health[1]["status"] == "green"  # a single node needs 0 replicas


def test_user_replica_settings_are_not_overridden(
    engine: tuple[str, str], make_backend: Any, index: str
) -> None:
    make_backend(index_settings={"index": {"number_of_replicas": 0}}).ensure_index(index)
    [found] = _http("GET", f"{engine[1]}/{index}/_settings")[1].values()
    applied = found["settings"]["index"]
    assert applied["number_of_replicas"] == "0"
    assert "auto_expand_replicas" not in applied


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_engine_is_unavailable(engine: tuple[str, str], index: str) -> None:
    settings = SearchSettings(
        backend=BackendName(engine[0]),
        hosts=[f"http://127.0.0.1:{_closed_port()}"],
        request_timeout_s=2,
        username="indexer",
        password=SecretStr("s3cret-never-shown"),
    )
    backend = build_backend(settings)
    try:
        assert backend.ping() is False
        with pytest.raises(SearchUnavailable, match="Connection") as raised:
            backend.bulk([Action(DELETE, index, "x", 1, None)])
        assert "s3cret" not in str(raised.value)
    finally:
        backend.close()


def test_the_wrong_backend_for_the_server_is_a_configuration_error(
    engine: tuple[str, str], es_url: str, opensearch_url: str, index: str
) -> None:
    # Point the backend under test at the *other* engine.
    other_url = opensearch_url if engine[0] == "elasticsearch" else es_url
    backend = build_backend(SearchSettings(backend=BackendName(engine[0]), hosts=[other_url]))
    try:
        with pytest.raises(SearchError, match=r"search\.backend"):
            backend.ensure_index(index)
    finally:
        backend.close()
