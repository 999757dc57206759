"""The one small interface the indexer needs from a search engine, over either engine's client.

A table's index is an alias (``<index_prefix><table>``) naming one concrete index
(``<alias>~<generation>``) as its write index; the first write creates generation 1 behind it.
Searches through the alias never see tombstones. Client errors arrive as
``consumers.search.errors`` exceptions: SearchUnavailable (retry) and SearchError (exit) leave
this module; RequestTooLarge never does (the bulk is split in halves). Per-item failures are not
exceptions: ``bulk`` returns them as :class:`ItemResult`.

Invariant: a write lands in the index the alias names when the engine applies it; when that is
not the index we encoded the write for (the alias moved: a reindex switched it), the write is
sent again encoded for the new index, so no change is left applied only to the old one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from bridge.runtime.settings import SearchSettings
from consumers.indexer.actions import Action, ActionKind, ItemResult
from consumers.indexer.bulk import (
    CONTENT_TYPE,
    RESPONSE_FILTER,
    BodyEncoder,
    MalformedResponse,
    results,
    too_large,
)
from consumers.indexer.templates import (
    GENERATION_SEPARATOR,
    TOMBSTONE_AT,
    alias_body,
    generation_name,
    generation_of,
    index_body,
    index_template,
    is_managed,
    template_name,
)
from consumers.search.client import SearchClient, healthy
from consumers.search.errors import IndexNotFound, RequestTooLarge, SearchError, SearchUnavailable
from consumers.search.factory import connect

__all__ = ["IndexingBackend", "SearchBackend", "SearchError", "SearchUnavailable", "build_backend"]

_BULK_HEADERS = {"accept": "application/json", "content-type": CONTENT_TYPE}
_ALREADY_EXISTS = "resource_already_exists_exception"

log = logging.getLogger(__name__)


class SearchBackend(Protocol):
    def ensure_index(self, index: str) -> None:
        """Create ``index`` with the configured settings and mappings unless it exists."""

    def bulk(self, actions: Sequence[Action]) -> list[ItemResult]:
        """Send ``actions`` as one ``_bulk``; one result per action, in the same order.

        Indices not yet seen are ensured first. A 413 (request too large) is answered by
        splitting the request in halves; a single action still too large gets
        ``ItemResult(413, "request_entity_too_large", ...)``.
        """

    def ping(self) -> bool:
        """True when the engine answers; cheap enough to call while paused."""

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Target:
    """Where writes to a name (an alias, or a concrete index) land now."""

    concrete: str
    managed: bool
    """Created with the managed mapping: typed fields and tombstones go in."""


class IndexingBackend:
    """:class:`SearchBackend` over either engine's client: the logic both engines share.

    Before the first write to a name it installs the table's index template (the managed
    mapping, ``consumers.indexer.templates``), resolves the name (alias -> its write index;
    missing -> generation 1 created behind the alias) and reads the concrete index's mapping:
    documents carry typed fields, and deletes are tombstones, only into managed indices, so an
    index created before (or by someone else) keeps receiving what it can take.
    """

    def __init__(self, client: SearchClient, settings: SearchSettings) -> None:
        self._client = client
        self._settings = settings
        self._index_body = index_body(settings, client.engine)  # refuses bad settings early
        self._targets: dict[str, Target] = {}
        self._encoder = BodyEncoder()

    def ensure_index(self, index: str) -> None:
        if index not in self._targets:
            self._targets[index] = self._resolve(index)

    def target(self, index: str) -> Target:
        """Where writes to ``index`` land (ensuring it first)."""
        self.ensure_index(index)
        return self._targets[index]

    def _resolve(self, name: str) -> Target:
        alias = alias_of(name)
        if self._settings.index_templates:
            template = index_template(alias, self._settings, self._client.engine)
            self._client.request(
                "PUT", f"/_index_template/{quote(template_name(alias), safe='')}", body=template
            )
        concrete = self._concrete(name)
        if concrete is None:
            concrete = self._create_first_generation(name)
        managed = self._managed(concrete)
        if concrete == name and generation_of(alias, name) is None:
            log.warning(
                "index %s is a concrete index, not an alias: searches and writes go to it "
                "directly; `dynabridge reindex` moves it behind an alias with no downtime",
                name,
            )
        if not managed:
            log.warning(
                "index %s was not created with dynabridge's mapping (it existed before, or a "
                "template of higher priority applies): documents go in as plain JSON without "
                "typed fields, so items of mixed types may be refused; rebuild it with "
                "`dynabridge reindex` (docs/indexer.md, Mapping)",
                concrete,
            )
        return Target(concrete, managed)

    def _concrete(self, name: str) -> str | None:
        """The write index of alias ``name``, ``name`` itself if it is an index, or None."""
        path = quote(name, safe="")
        try:
            aliases = self._client.request("GET", f"/_alias/{path}")
        except IndexNotFound:
            aliases = {}
        except SearchError as error:
            if error.status != 404:
                raise
            aliases = {}
        if aliases:
            return write_index(name, aliases)
        try:
            self._client.request("GET", f"/{path}/_mapping")
        except IndexNotFound:
            return None
        return name

    def _create_first_generation(self, alias: str) -> str:
        first = generation_name(alias, 1)
        body: dict[str, Any] = {} if self._settings.index_templates else dict(self._index_body)
        body["aliases"] = alias_body(alias)
        try:
            self._client.request("PUT", f"/{quote(first, safe='')}", body=body)
        except SearchError as error:
            if error.error_type != _ALREADY_EXISTS:
                raise
            return self._concrete(alias) or first  # another indexer created it first
        log.info("created index %s behind alias %s", first, alias)
        return first

    def _managed(self, concrete: str) -> bool:
        answer = self._client.request("GET", f"/{quote(concrete, safe='')}/_mapping")
        return any(is_managed(body.get("mappings", {})) for body in answer.values())

    def bulk(self, actions: Sequence[Action]) -> list[ItemResult]:
        if not actions:
            return []
        for index in {action.index for action in actions}:
            self.ensure_index(index)
        answers = self._bulk(actions)
        moved = [
            position
            for position, (action, answer) in enumerate(zip(actions, answers, strict=True))
            if answer.index is not None
            and answer.index != self._targets[action.index].concrete
            and 200 <= answer.status < 300
        ]
        if moved:
            answers = self._after_move(actions, answers, moved)
        return answers

    def _after_move(
        self, actions: Sequence[Action], answers: list[ItemResult], moved: list[int]
    ) -> list[ItemResult]:
        """The alias moved under these writes: re-resolve, and send again what was encoded
        for the other index (versions make the second write an idempotent overwrite)."""
        before = {actions[p].index: self._targets[actions[p].index] for p in moved}
        for name, old in before.items():
            del self._targets[name]
            new = self.target(name)
            log.info("alias %s now writes to %s (was %s)", name, new.concrete, old.concrete)
        again = [
            p
            for p in moved
            if before[actions[p].index].managed != self.target(actions[p].index).managed
        ]
        if again:
            for position, answer in zip(
                again, self._bulk([actions[p] for p in again]), strict=True
            ):
                answers[position] = answer
        return answers

    def _bulk(self, actions: Sequence[Action]) -> list[ItemResult]:
        managed = {name for name, target in self._targets.items() if target.managed}
        try:
            response = self._client.request(
                "POST",
                "/_bulk",
                body=self._encoder.encode(actions, managed),
                params=RESPONSE_FILTER,
                headers=_BULK_HEADERS,
            )
        except RequestTooLarge as error:
            if len(actions) == 1:
                return [too_large(str(error))]
            half = len(actions) // 2
            log.warning("bulk of %d actions too large, splitting in halves", len(actions))
            return self._bulk(actions[:half]) + self._bulk(actions[half:])
        try:
            return results(response, len(actions))
        except MalformedResponse as error:
            # Every write is versioned, so sending the whole bulk again is harmless.
            raise SearchUnavailable(str(error)) from None

    def ping(self) -> bool:
        return healthy(self._client)

    def check_access(self) -> None:
        """One request at start, so that refused credentials, an untrusted certificate or an
        unsupported engine stop the process now (SearchRefused), not at the first change; an
        engine that is only down is left to the loop's retries."""
        if self._settings.aws_sigv4 and self._settings.aws_service == "aoss":
            return  # OpenSearch Serverless has no cluster APIs: its first bulk tells
        try:
            self._client.request("GET", "/_cluster/health")
        except SearchUnavailable as error:
            log.warning("search engine unavailable at start, indexing will wait: %s", error)

    def purge_tombstones(self, older_than_ms: int, limit: int = 1000) -> int:
        """Delete, conditional on their versions, up to ``limit`` tombstones older than
        ``older_than_ms`` in each managed index written to; how many went."""
        purged = 0
        for concrete in sorted({t.concrete for t in list(self._targets.values()) if t.managed}):
            answer = self._client.request(
                "POST",
                f"/{quote(concrete, safe='')}/_search",
                body={
                    "size": limit,
                    "version": True,
                    "_source": False,
                    "query": {"range": {TOMBSTONE_AT: {"lt": older_than_ms}}},
                },
            )
            hits = answer.get("hits", {}).get("hits", [])
            actions = [
                Action(ActionKind.PURGE, concrete, hit["_id"], int(hit["_version"]), None)
                for hit in hits
            ]
            done = self._bulk(actions) if actions else []
            # A tombstone re-created meanwhile (a newer change) answers 409 and stays.
            purged += sum(1 for result in done if 200 <= result.status < 300)
        return purged

    def drop(self, alias: str) -> list[str]:
        """Delete every index of a table (its generations, or a concrete index of the alias's
        name) and its template; the names deleted."""
        dropped = []
        for pattern in (f"{alias}{GENERATION_SEPARATOR}*", alias):
            try:
                found = self._client.request("GET", f"/{quote(pattern, safe='*')}/_settings")
            except IndexNotFound:
                continue
            for index in sorted(found):
                self._client.request("DELETE", f"/{quote(index, safe='')}")
                dropped.append(index)
        try:
            self._client.request(
                "DELETE", f"/_index_template/{quote(template_name(alias), safe='')}"
            )
        except SearchError as error:
            if error.status != 404:
                raise
        self._targets.pop(alias, None)
        return dropped

    def close(self) -> None:
        self._client.close()


def alias_of(name: str) -> str:
    """The table alias of a name: itself, or the alias a generation index belongs to."""
    head, separator, tail = name.rpartition(GENERATION_SEPARATOR)
    return head if separator and tail.isdigit() else name


def write_index(alias: str, aliases: Mapping[str, Any]) -> str:
    """The index ``alias`` writes to, from a ``GET _alias/<alias>`` answer."""
    indices = sorted(aliases)
    for index in indices:
        spec = aliases[index].get("aliases", {}).get(alias, {})
        if spec.get("is_write_index"):
            return index
    if len(indices) == 1:
        return indices[0]
    raise SearchError(
        f"alias {alias} names {len(indices)} indices ({', '.join(indices)}) and none is its "
        "write index: set is_write_index on one, or `dynabridge reindex` to rebuild"
    )


def build_backend(settings: SearchSettings, aws_region: str | None = None) -> IndexingBackend:
    """The backend named by ``search.backend``; no request is made here.

    ``aws_region`` (``aws.region``) is used only to sign requests with ``search.aws_sigv4``.
    """
    return IndexingBackend(connect(settings, aws_region), settings)
