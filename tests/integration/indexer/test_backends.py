"""Both search backends against the real Elasticsearch 9 and OpenSearch 2 of the local stack.

One contract, two engines: versions, outcomes, index creation, outages and the delete window
behave the same on both.
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from bridge.settings import SearchBackend as BackendName
from bridge.settings import SearchSettings
from consumers.indexer.actions import Action, ActionKind, ItemResult
from consumers.indexer.outcomes import Outcome, outcome
from consumers.indexer.search import SearchBackend, SearchError, SearchUnavailable, build_backend

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
    _http("DELETE", f"{engine[1]}/{name}")


def _doc(url: str, index: str, doc_id: str) -> tuple[int, Any]:
    return _http("GET", f"{url}/{index}/_doc/{urllib.parse.quote(doc_id, safe='')}")


def _outcomes(actions: list[Action], results: list[ItemResult]) -> list[Outcome]:
    return [outcome(a.kind, r) for a, r in zip(actions, results, strict=True)]


def test_index_then_get(engine: tuple[str, str], make_backend: Any, index: str) -> None:
    backend = make_backend()
    doc = {"name": "héllo", "n": 7, "price": 19.99, "tags": ["a", "b"], "big": "9007199254740993"}
    results = backend.bulk([Action(INDEX, index, "a|b%7C~", 5, doc)])
    assert results == [ItemResult(201, None, None)]
    status, body = _doc(engine[1], index, "a|b%7C~")
    assert status == 200
    assert body["_source"] == doc
    assert body["_version"] == 5


def test_external_gte_rejects_older_and_accepts_equal(
    engine: tuple[str, str], make_backend: Any, index: str
) -> None:
    backend = make_backend()
    assert backend.bulk([Action(INDEX, index, "k", 10, {"v": "new"})])[0].status == 201
    again = [
        Action(INDEX, index, "k", 10, {"v": "new"}),
        Action(INDEX, index, "k", 9, {"v": "old"}),
    ]
    results = backend.bulk(again)
    assert [r.status for r in results] == [200, 409]
    assert results[1].error_type == "version_conflict_engine_exception"
    assert _outcomes(again, results) == [Outcome.DONE, Outcome.STALE]
    stale_delete = [Action(DELETE, index, "k", 8, None)]
    assert _outcomes(stale_delete, backend.bulk(stale_delete)) == [Outcome.STALE]
    status, body = _doc(engine[1], index, "k")
    assert (status, body["_source"], body["_version"]) == (200, {"v": "new"}, 10)


def test_deleting_a_missing_document_is_done(make_backend: Any, index: str) -> None:
    actions = [Action(DELETE, index, "never-indexed", 3, None)]
    results = make_backend().bulk(actions)
    assert results[0].status == 404
    assert _outcomes(actions, results) == [Outcome.DONE]


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
    applied = body[index]["settings"]["index"]
    assert applied["gc_deletes"] == "2h"
    assert applied["number_of_shards"] == "2"
    assert applied["auto_expand_replicas"] == "0-1"
    status, body = _http("GET", f"{engine[1]}/{index}/_mapping")
    assert body[index]["mappings"]["properties"]["price"] == {"type": "double"}
    health = _http("GET", f"{engine[1]}/_cluster/health/{index}?wait_for_status=green&timeout=20s")
    assert health[1]["status"] == "green"  # a single node needs 0 replicas


def test_user_replica_settings_are_not_overridden(
    engine: tuple[str, str], make_backend: Any, index: str
) -> None:
    make_backend(index_settings={"index": {"number_of_replicas": 0}}).ensure_index(index)
    applied = _http("GET", f"{engine[1]}/{index}/_settings")[1][index]["settings"]["index"]
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


def test_deletes_stay_deleted_within_gc_deletes_and_not_beyond(
    engine: tuple[str, str], make_backend: Any, unique_name: Callable[[str], str]
) -> None:
    """A late stale image after a delete: resurrects past gc_deletes, stays deleted within it."""
    url = engine[1]
    short, managed = unique_name("it-gc-short"), unique_name("it-gc-managed")
    try:
        short_backend = make_backend(gc_deletes="100ms")
        managed_backend = make_backend()  # the shipped default, search.gc_deletes
        for backend, name in ((short_backend, short), (managed_backend, managed)):
            assert backend.bulk([Action(INDEX, name, "item", 1, {"v": 1})])[0].status == 201
            assert backend.bulk([Action(DELETE, name, "item", 3, None)])[0].status == 200
        stale = {"v": 2}  # a stale image, e.g. from a backfill that overlapped the delete
        # Tombstones are pruned on refresh once gc_deletes has passed: poll until the short
        # window forgets the delete and the stale image comes back to life.
        deadline = time.monotonic() + 30
        while True:
            _http("POST", f"{url}/{short}/_refresh")
            result = short_backend.bulk([Action(INDEX, short, "item", 2, stale)])[0]
            if result.status == 201 or time.monotonic() > deadline:
                break
            assert result.status == 409
            time.sleep(0.2)
        assert result.status == 201, "a stale write after gc_deletes should resurrect the doc"
        assert _doc(url, short, "item")[0] == 200
        # The same stale image, as late, against the managed window: still a conflict.
        _http("POST", f"{url}/{managed}/_refresh")
        late = [Action(INDEX, managed, "item", 2, stale)]
        assert _outcomes(late, managed_backend.bulk(late)) == [Outcome.STALE]
        assert _doc(url, managed, "item")[0] == 404
    finally:
        _http("DELETE", f"{url}/{short}")
        _http("DELETE", f"{url}/{managed}")


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
