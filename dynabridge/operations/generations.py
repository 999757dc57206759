"""A table's indices as ``reindex`` sees them: the alias, its generations, and the state of a
rebuild, kept in the new generation's own mapping (``_meta.dynabridge.reindex``); write blocks
and the atomic alias switch.

Through the one search client (``consumers.search``); search errors leave as
:class:`~dynabridge.operations.errors.OperationError`. The alias switch is one ``_aliases`` call:
the engines apply its actions atomically, so a search through the alias sees the old index or
the new one, never neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from consumers.indexer.templates import (
    ALIAS_FILTER,
    GENERATION_SEPARATOR,
    generation_of,
)
from consumers.search.client import SearchClient
from consumers.search.errors import IndexNotFound, SearchFailure
from dynabridge.operations.errors import OperationError


@dataclass(frozen=True, slots=True)
class Layout:
    """What exists of one table's indices now."""

    alias: str
    write_index: str | None
    """The index the alias writes to; None when there is no alias."""
    legacy: bool
    """A concrete index holds the alias's name (an older layout): no alias yet."""
    generations: dict[int, dict[str, Any]]
    """Generation number -> its ``_meta.dynabridge`` (the reindex state, if any)."""

    @property
    def current(self) -> str | None:
        """What searches read now: the alias's write index, the legacy index, or None."""
        return self.alias if self.legacy else self.write_index

    @property
    def next_generation(self) -> int:
        return max(self.generations, default=0) + 1


class Generations:
    def __init__(self, client: SearchClient) -> None:
        self._client = client

    def _request(
        self, method: str, path: str, body: Mapping[str, Any] | None = None
    ) -> Mapping[str, Any]:
        try:
            return self._client.request(method, path, body=body)
        except SearchFailure as error:
            raise OperationError(str(error)) from None

    def layout(self, alias: str) -> Layout:
        write_index = None
        try:
            aliases = self._client.request("GET", f"/_alias/{quote(alias, safe='')}")
        except SearchFailure as error:
            if error.status != 404:
                raise OperationError(str(error)) from None
            aliases = {}
        for index, body in aliases.items():
            spec = body.get("aliases", {}).get(alias, {})
            if spec.get("is_write_index") or len(aliases) == 1:
                write_index = index
        legacy = False
        if not aliases:
            try:
                self._client.request("GET", f"/{quote(alias, safe='')}/_mapping")
                legacy = True
            except IndexNotFound:
                legacy = False
            except SearchFailure as error:
                raise OperationError(str(error)) from None
        generations: dict[int, dict[str, Any]] = {}
        pattern = quote(alias + GENERATION_SEPARATOR, safe="") + "*"
        found = self._request("GET", f"/{pattern}/_mapping")
        for index, body in found.items():
            number = generation_of(alias, index)
            if number is not None:
                meta = body.get("mappings", {}).get("_meta", {}).get("dynabridge", {})
                generations[number] = dict(meta)
        return Layout(alias, write_index, legacy, generations)

    def create(self, index: str, body: Mapping[str, Any]) -> bool:
        """Create ``index``; False when it exists already (another run created it)."""
        try:
            self._client.request("PUT", f"/{quote(index, safe='')}", body=body)
        except SearchFailure as error:
            if error.error_type == "resource_already_exists_exception":
                return False
            raise OperationError(f"creating index {index}: {error}") from None
        return True

    def state(self, index: str) -> dict[str, Any]:
        """``_meta.dynabridge.reindex`` of ``index`` ({} when none)."""
        meta = self._meta(index)
        reindex = meta.get("dynabridge", {}).get("reindex", {})
        return dict(reindex) if isinstance(reindex, Mapping) else {}

    def set_state(self, index: str, state: Mapping[str, Any]) -> None:
        """Replace ``_meta.dynabridge.reindex`` of ``index``, keeping the rest of ``_meta``."""
        meta = self._meta(index)
        ours = dict(meta.get("dynabridge", {}))
        ours["reindex"] = dict(state)
        meta["dynabridge"] = ours
        self._request("PUT", f"/{quote(index, safe='')}/_mapping", {"_meta": meta})

    def _meta(self, index: str) -> dict[str, Any]:
        answer = self._request("GET", f"/{quote(index, safe='')}/_mapping")
        for body in answer.values():
            return dict(body.get("mappings", {}).get("_meta", {}))
        return {}

    def block_writes(self, index: str, blocked: bool) -> None:
        """Make ``index`` read-only (writes are refused, and retried by the live indexer: its
        outcome table retries ``cluster_block_exception``), or writable again."""
        body = {"index.blocks.write": True if blocked else None}
        self._request("PUT", f"/{quote(index, safe='')}/_settings", body)

    def clone(self, source: str, target: str) -> bool:
        """Copy read-only ``source`` to ``target`` (hard links: cheap), read-only too; False
        when ``target`` exists already (a resumed run cloned it)."""
        try:
            self._client.request(
                "POST", f"/{quote(source, safe='')}/_clone/{quote(target, safe='')}"
            )
        except SearchFailure as error:
            if error.error_type == "resource_already_exists_exception":
                return False
            raise OperationError(f"cloning {source} to {target}: {error}") from None
        self.block_writes(target, blocked=True)
        return True

    def count(self, index: str) -> int:
        """Searchable documents of ``index`` (tombstones left out)."""
        body = {"query": ALIAS_FILTER}
        return int(self._request("POST", f"/{quote(index, safe='')}/_count", body)["count"])

    def refresh(self, index: str) -> None:
        self._request("POST", f"/{quote(index, safe='')}/_refresh")

    def switch(self, alias: str, new: str, layout: Layout) -> None:
        """Point ``alias`` at ``new`` alone, atomically (a legacy index of the alias's name is
        removed in the same call: an alias cannot share a name with an index)."""
        actions: list[dict[str, Any]] = []
        if layout.legacy:
            actions.append({"remove_index": {"index": alias}})
        elif layout.write_index is not None:
            actions.append({"remove": {"index": layout.write_index, "alias": alias}})
        actions.append(
            {"add": {"index": new, "alias": alias, "is_write_index": True, "filter": ALIAS_FILTER}}
        )
        self._request("POST", "/_aliases", {"actions": actions})

    def delete(self, index: str) -> None:
        try:
            self._client.request("DELETE", f"/{quote(index, safe='')}")
        except IndexNotFound:
            return
        except SearchFailure as error:
            raise OperationError(f"deleting index {index}: {error}") from None

    def close(self) -> None:
        self._client.close()
