"""The fake search engine of the loop's unit tests passes the engines' contract."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from bridge.backfill.tombstones import time_value_s
from consumers.indexer.actions import ItemResult
from tests.contracts.search_backend import CHECKS, Engine
from tests.unit.indexer.fakes import FakeClock, FakeSearch


class FakeEngine:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.searches: list[FakeSearch] = []
        self._names = itertools.count()

    def backend(self, **search_settings: Any) -> FakeSearch:
        gc_deletes = time_value_s(search_settings.pop("gc_deletes", "1h"))
        assert not search_settings, f"the fake does not model {sorted(search_settings)}"
        search = FakeSearch(self.clock, gc_deletes_s=gc_deletes)
        if self.searches:  # every backend of a test sees the same engine
            first = self.searches[0]
            search.docs, search.tombstones, search.forgotten = (
                first.docs,
                first.tombstones,
                first.forgotten,
            )
        self.searches.append(search)
        return search

    def now_ms(self) -> int:
        return int(self.clock.now * 1000)

    def index(self) -> str:
        return f"index-{next(self._names)}"

    def document(self, index: str, doc_id: str) -> tuple[int, dict[str, Any]] | None:
        for search in self.searches[:1]:
            found = search.docs.get((index, doc_id))
            if found is not None:
                version, source = found
                return version, dict(source or {})
        return None

    def after_gc_deletes(self, index: str, attempt: Callable[[], ItemResult]) -> ItemResult:
        self.clock.now += max(search.gc_deletes_s for search in self.searches)
        return attempt()


@pytest.mark.parametrize("check", CHECKS, ids=lambda check: check.__name__)
def test_the_fake_keeps_the_contract(check: Callable[[Engine], None]) -> None:
    check(FakeEngine())
