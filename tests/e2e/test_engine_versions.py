"""One end-to-end run on each engine version beside the plain stack's Elasticsearch 9 and
OpenSearch 2: Elasticsearch 8.19 (the adapter speaks the major-8 REST dialect it detected at
start) and OpenSearch 3.8. Started by ``dynabridge dev up --engines es8,os3`` (or the session
fixture)."""

from __future__ import annotations

import pytest

from tests.e2e.harness import E2E
from tests.e2e.workload import KeyKind, Progress, run_workload


@pytest.mark.parametrize(
    ("backend", "url_fixture"),
    [("elasticsearch", "es8_url"), ("opensearch", "opensearch3_url")],
    ids=["elasticsearch-8.19", "opensearch-3.8"],
)
def test_the_index_equals_the_table_on_another_engine_version(
    request: pytest.FixtureRequest, e2e: E2E, backend: str, url_fixture: str
) -> None:
    url = request.getfixturevalue(url_fixture)
    pipeline, ledgers = e2e.make(
        [KeyKind.S, KeyKind.S_N], search_url=url, overrides={"search": {"backend": backend}}
    )
    pipeline.start_all()
    run_workload(e2e.writers(ledgers, 100), Progress(600))
    waited = e2e.wait(pipeline, ledgers, 180)
    print(f"index equal {waited:.1f}s after the workload")
    assert set(pipeline.stop_all().values()) == {0}
    e2e.check(pipeline, ledgers)
