"""A replay from after an item's REMOVE meets a stale change of that item later in the log (a
duplicate from a worker that lost its lease, a late backfill image) after the engine forgot the
delete (``gc_deletes``): the item stays deleted in a managed index (a tombstone at the delete's
version refuses the stale change), and the same steps resurrect it in a plain index (the
hazard is real: the test can fail).

The real indexer, the real ``dynabridge replay``, both engines; ``gc_deletes`` is 1 s.
"""

from __future__ import annotations

import datetime as dt
import time
import urllib.parse
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from bridge.contract import EventName
from bridge.runtime.settings import Settings
from dynabridge.cli import main
from tests.integration.indexer.indexer_harness import (
    BASE_VERSION,
    Pipeline,
    Running,
    change,
    http,
    produce,
    sources,
)
from tests.oracle import expected_id
from tests.polling import wait_for

GC_DELETES = "1s"


def _settings(pipeline: Pipeline) -> Settings:
    settings = pipeline.settings()
    search = settings.search.model_copy(update={"gc_deletes": GC_DELETES})
    return settings.model_copy(update={"search": search})


def _forgets_deletes(url: str, index: str) -> bool:
    """A stale write of a probe deleted with the item is accepted: the engine forgot deletes
    from then (pruned at refresh once ``gc_deletes`` passed)."""
    http("POST", f"{url}/{index}/_refresh")
    status, _ = http(
        "PUT",
        f"{url}/{index}/_doc/probe?version_type=external_gte&version={BASE_VERSION + 1}",
        {"pk": "probe"},
    )
    return status in (200, 201)


@pytest.mark.parametrize("layout", ["managed", "plain"])
def test_a_replay_from_after_a_delete_never_resurrects_the_item(
    pipeline: Pipeline, layout: str, tmp_path: Path
) -> None:
    if layout == "plain":  # an index of the older layout: real deletes, dynamic mapping
        status, body = http(
            "PUT",
            f"{pipeline.url}/{pipeline.index}",
            {"settings": {"number_of_replicas": 0, "index.gc_deletes": GC_DELETES}},
        )
        assert status == 200, body
    settings = _settings(pipeline)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(settings.model_dump(mode="json")))
    v = BASE_VERSION
    t0 = int(time.time() * 1000)
    history = [
        change(pipeline.table, "gone", v + 1, EventName.INSERT),
        change(pipeline.table, "gone", v + 2, EventName.MODIFY),
        change(pipeline.table, "gone", v + 3, EventName.REMOVE),
        change(pipeline.table, "probe", v + 1, EventName.INSERT),
        change(pipeline.table, "probe", v + 3, EventName.REMOVE),
        change(pipeline.table, "kept", v + 1, EventName.INSERT),
    ]
    produce(pipeline.bootstrap, pipeline.topic, history, timestamp_ms=t0)
    # The stale change, appended after the REMOVE: a duplicate of the MODIFY.
    stale = change(pipeline.table, "gone", v + 2, EventName.MODIFY)
    produce(pipeline.bootstrap, pipeline.topic, [stale], timestamp_ms=t0 + 60_000)

    run = Running(settings)
    wait_for(pipeline.done, 90, "every change indexed and committed")
    assert run.finish() == 0
    gone = expected_id(stale.keys)
    assert set(sources(pipeline.url, pipeline.index)) == {expected_id({"pk": {"S": "kept"}})}, (
        "first pass: the stale duplicate was refused while the engine remembered the delete"
    )

    if layout == "plain":
        wait_for(lambda: _forgets_deletes(pipeline.url, pipeline.index), 60, "deletes forgotten")
    else:
        status, body = http("GET", f"{pipeline.url}/{pipeline.index}/_settings/index.gc_deletes")
        assert [s["settings"]["index"]["gc_deletes"] for s in body.values()] == [GC_DELETES]
        time.sleep(3 * 1.0)  # wall time past gc_deletes: a real delete would be forgotten now
        http("POST", f"{pipeline.url}/{pipeline.index}/_refresh")

    after_remove = dt.datetime.fromtimestamp((t0 + 30_000) / 1000, tz=dt.UTC).isoformat()
    replayed = CliRunner().invoke(
        main,
        ["replay", "--config", str(config), "--table", pipeline.table, "--to", after_remove],
    )
    assert replayed.exit_code == 0, replayed.output
    run = Running(settings)
    wait_for(pipeline.done, 90, "the replay indexed and committed")
    assert run.finish() == 0

    present = set(sources(pipeline.url, pipeline.index))
    if layout == "managed":
        assert gone not in present, "a replay resurrected a deleted item"
        status, tombstone = http(
            "GET", f"{pipeline.url}/{pipeline.index}/_doc/{urllib.parse.quote(gone, safe='')}"
        )
        assert status == 200, tombstone
        assert tombstone["_version"] == v + 3, tombstone
        assert "~deleted" in tombstone["_source"], tombstone
    else:
        assert gone in present, "the hazard this design prevents: resurrected in a plain index"
