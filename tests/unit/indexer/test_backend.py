"""The engine-independent part of the backends: wire format, index body, 413 splitting."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest

from bridge.runtime.settings import SearchBackend as BackendName
from bridge.runtime.settings import SearchSettings
from consumers.indexer.actions import Action, ActionKind, ItemResult
from consumers.indexer.backend import IndexingBackend, Target, alias_of, build_backend
from consumers.indexer.bulk import BodyEncoder, MalformedResponse, results
from consumers.search.errors import IndexNotFound, RequestTooLarge, SearchError, SearchUnavailable


def _lines(body: bytes) -> list[Any]:
    assert body.endswith(b"\n")
    return [json.loads(line) for line in body.decode("utf-8").splitlines()]


def test_body_carries_versions_ids_and_documents() -> None:
    actions = [
        Action(ActionKind.INDEX, "orders", 'a"b|c\u00e9', 7, {"x": 1.5, "s": "é\n"}),
        Action(ActionKind.DELETE, "ord\\ers", "k", 2**62, None),
    ]
    assert _lines(BodyEncoder().encode(actions)) == [
        {
            "index": {
                "_index": "orders",
                "version_type": "external_gte",
                "_id": 'a"b|cé',
                "version": 7,
            }
        },
        {"x": 1.5, "s": "é\n"},
        {
            "delete": {
                "_index": "ord\\ers",
                "version_type": "external_gte",
                "_id": "k",
                "version": 2**62,
            }
        },
    ]


def test_results_keep_order_and_errors() -> None:
    response = {
        "errors": True,
        "items": [
            {"index": {"status": 201}},
            {
                "index": {
                    "status": 400,
                    "error": {
                        "type": "document_parsing_exception",
                        "reason": "bad",
                        "caused_by": {
                            "type": "illegal_argument_exception",
                            "reason": "For input string",
                        },
                    },
                }
            },
            {"delete": {"status": 404, "result": "not_found"}},
        ],
    }
    assert results(response, 3) == [
        ItemResult(201, None, None),
        ItemResult(
            400, "document_parsing_exception", "bad: illegal_argument_exception: For input string"
        ),
        ItemResult(404, None, None),
    ]


def test_a_response_that_does_not_match_the_request_is_refused() -> None:
    with pytest.raises(MalformedResponse, match="2 items for 3"):
        results({"errors": False, "items": [{"index": {"status": 201}}] * 2}, 3)


class FakeClient:
    engine = BackendName.ELASTICSEARCH

    """Answers bulks item by item; refuses bodies over ``max_bytes`` with 413."""

    def __init__(self, max_bytes: int = 10**9) -> None:
        self.max_bytes = max_bytes
        self.created: list[str] = []
        self.bulks: list[int] = []
        self.exists: set[str] = set()
        self.reply: Mapping[str, Any] | None = None
        self.templates: dict[str, dict[str, Any]] = {}
        self.aliases: dict[str, str] = {}
        self.mappings: dict[str, dict[str, Any]] = {}
        """Of each index this fake created: the template's at that moment (as the engines do)."""
        self.bodies: list[bytes] = []

    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> Mapping[str, Any]:
        if method == "PUT" and path.startswith("/_index_template/"):
            assert isinstance(body, Mapping)
            self.templates[path.rsplit("/", 1)[1]] = dict(body)
            return {"acknowledged": True}
        if method == "GET" and path.startswith("/_alias/"):
            alias = path.rsplit("/", 1)[1]
            if alias not in self.aliases:
                raise SearchError(f"alias [{alias}] missing", status=404)
            return {self.aliases[alias]: {"aliases": {alias: {"is_write_index": True}}}}
        if method == "GET" and path.endswith("/_mapping"):
            name = path.split("/")[1]
            index = self.aliases.get(name, name)
            if index not in self.exists:
                raise IndexNotFound(f"no such index [{index}]", status=404)
            return {index: {"mappings": self.mappings.get(index, {})}}
        if method == "PUT":
            index = path.lstrip("/")
            self.created.append(index)
            if index in self.exists:
                raise SearchError(
                    "exists", status=400, error_type="resource_already_exists_exception"
                )
            self.exists.add(index)
            template = self.templates.get(f"dynabridge.{alias_of(index)}")
            self.mappings[index] = template["template"]["mappings"] if template else {}
            assert isinstance(body, Mapping)
            for alias in body.get("aliases", {}):
                self.aliases[alias] = index
            return {"acknowledged": True}
        assert (method, path) == ("POST", "/_bulk")
        assert isinstance(body, bytes)
        if len(body) > self.max_bytes:
            raise RequestTooLarge("HTTP 413", status=413)
        self.bodies.append(body)
        lines = _lines(body)
        count = sum(1 for line in lines if "index" in line or "delete" in line)
        self.bulks.append(count)
        if self.reply is not None:
            return self.reply
        items = []
        for line in lines:
            for op in ("index", "delete"):
                if op in line and "_index" in line[op]:
                    target = self.aliases.get(line[op]["_index"], line[op]["_index"])
                    items.append({op: {"status": 201, "_index": target}})
        return {"errors": False, "items": items}

    def close(self) -> None:
        pass


def _index(doc_id: str, size: int = 10) -> Action:
    return Action(ActionKind.INDEX, "orders", doc_id, 1, {"pad": "x" * size})


def test_a_too_large_bulk_is_split_and_a_single_huge_document_is_a_413_result() -> None:
    client = FakeClient(max_bytes=400)
    backend = IndexingBackend(client, SearchSettings())
    actions = [_index(str(n)) for n in range(6)] + [_index("huge", 1000), _index("last")]
    got = backend.bulk(actions)
    assert [r.status for r in got] == [201] * 6 + [413, 201]
    assert got[6].error_type == "request_entity_too_large"
    assert sum(client.bulks) == 7  # everything but the huge one was sent exactly once


def test_indices_are_ensured_once_before_their_first_write() -> None:
    client = FakeClient()
    client.exists.add("users")
    backend = IndexingBackend(client, SearchSettings())
    backend.bulk([_index("1"), Action(ActionKind.DELETE, "users", "u", 1, None)])
    backend.bulk([_index("2")])
    backend.ensure_index("orders")
    assert sorted(client.created) == ["orders~000001"], "generation 1 behind the alias orders"
    assert client.aliases == {"orders": "orders~000001"}


def test_an_empty_bulk_sends_nothing() -> None:
    client = FakeClient()
    assert IndexingBackend(client, SearchSettings()).bulk([]) == []
    assert client.bulks == []


def test_a_mismatched_response_is_unavailable_so_the_bulk_is_retried() -> None:
    client = FakeClient()
    client.reply = {"errors": False, "items": []}
    with pytest.raises(SearchUnavailable, match="0 items for 1"):
        IndexingBackend(client, SearchSettings()).bulk([_index("1")])


def test_sigv4_signs_with_the_standard_chain_and_needs_a_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.delenv("AWS_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    settings = SearchSettings(
        backend=BackendName.OPENSEARCH, hosts=["https://search.example:443"], aws_sigv4=True
    )
    build_backend(settings, aws_region="eu-west-1").close()  # builds; no request is made
    with pytest.raises(SearchError, match=r"aws\.region"):
        build_backend(settings)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"backend": BackendName.ELASTICSEARCH, "aws_sigv4": True}, "search.backend"),
        ({"backend": BackendName.OPENSEARCH, "api_key": "k"}, "api_key"),
    ],
)
def test_auth_that_the_engine_cannot_do_is_refused_at_start(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(SearchError, match=message):
        build_backend(SearchSettings(**options))


def test_typed_fields_go_only_into_indices_created_with_the_managed_mapping() -> None:
    client = FakeClient()
    client.exists.add("legacy")  # created before, without a template: plain documents only
    backend = IndexingBackend(client, SearchSettings())
    typed = {"v": {"N": 1}}
    backend.bulk([
        Action(ActionKind.INDEX, "orders", "1", 1, {"v": 1}, typed),
        Action(ActionKind.INDEX, "legacy", "1", 1, {"v": 1}, typed),
    ])  # fmt: skip
    lines = _lines(client.bodies[-1])
    assert lines[1] == {"v": 1, "ddb": {"v": {"N": 1}}}
    assert lines[3] == {"v": 1}
    assert "dynabridge.orders" in client.templates
    template = client.templates["dynabridge.orders"]
    assert template["index_patterns"] == ["orders", "orders~*"]
    assert template["template"]["mappings"]["dynamic"] is False


def test_without_templates_the_index_is_created_with_the_managed_body() -> None:
    client = FakeClient()
    backend = IndexingBackend(client, SearchSettings(index_templates=False))
    backend.ensure_index("orders")
    assert client.templates == {}
    assert client.created == ["orders~000001"]
    assert client.aliases == {"orders": "orders~000001"}


def test_deletes_into_a_managed_index_are_tombstones_and_real_deletes_elsewhere() -> None:
    client = FakeClient()
    client.exists.add("legacy")
    backend = IndexingBackend(client, SearchSettings())
    backend.bulk([
        Action(ActionKind.DELETE, "orders", "1", 5, None, event_time_ms=123),
        Action(ActionKind.DELETE, "legacy", "1", 5, None),
        Action(ActionKind.PURGE, "orders", "2", 4, None),
    ])  # fmt: skip
    lines = _lines(client.bodies[-1])
    assert lines[0]["index"]["version"] == 5
    assert lines[1] == {"~deleted": {"at": 123}}
    assert list(lines[2]) == ["delete"]
    assert list(lines[3]) == ["delete"], "a purge is a real delete, even into a managed index"


def test_writes_the_alias_moved_under_are_sent_again_for_the_new_index() -> None:
    client = FakeClient()
    client.exists.add("orders")  # a concrete index of the alias's name: plain documents
    backend = IndexingBackend(client, SearchSettings())
    backend.ensure_index("orders")
    assert not backend.target("orders").managed
    # A reindex moves "orders" behind an alias to a managed generation.
    client.exists.discard("orders")
    client.templates["dynabridge.orders"] = client.templates["dynabridge.orders"]
    client.request("PUT", "/orders~000002", body={"aliases": {"orders": {}}})
    answers = backend.bulk([Action(ActionKind.INDEX, "orders", "1", 1, {"v": 1}, {"v": {"N": 1}})])
    assert answers[0].status == 201
    assert backend.target("orders") == Target("orders~000002", managed=True)
    assert _lines(client.bodies[-2])[1] == {"v": 1}, "first sent for the old index"
    assert _lines(client.bodies[-1])[1] == {"v": 1, "ddb": {"v": {"N": 1}}}, "then sent again"
