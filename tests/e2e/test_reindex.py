"""``dynabridge reindex`` while the pipeline runs: searches through the alias never miss a
document during the switch, the live indexer is handed over with no gap, and an index of the
older layout (a concrete index of the alias's name) is moved behind an alias the same way.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import TopicPartition  # noqa: TID251 - tests trim the real topic
from confluent_kafka.admin import AdminClient  # noqa: TID251

from bridge.runtime.settings import load_settings
from dynabridge.operations.kafka_admin import KafkaAdmin
from tests.e2e.checks import run_verify
from tests.e2e.harness import E2E
from tests.e2e.pipeline import DYNABRIDGE, _child_env
from tests.e2e.workload import KeyKind, Progress, run_workload
from tests.polling import wait_for


def _search(url: str, alias: str) -> tuple[set[str], set[str]]:
    """(ids, concrete indices) of every document a search through ``alias`` finds now."""
    body = json.dumps({"size": 10000, "_source": False, "query": {"match_all": {}}}).encode()
    request = urllib.request.Request(  # noqa: S310 - the local stack
        f"{url}/{alias}/_search", data=body, method="POST",
        headers={"content-type": "application/json"},
    )  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        hits = json.loads(response.read())["hits"]["hits"]
    return {hit["_id"] for hit in hits}, {hit["_index"] for hit in hits}


class Searcher:
    """Searches the alias over and over; a document found once and missing later (nothing is
    deleted meanwhile) is a search that missed a document."""

    def __init__(self, url: str, alias: str) -> None:
        self.url, self.alias = url, alias
        self.misses: list[str] = []
        self.indices_seen: list[set[str]] = []
        self.polls = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        seen: set[str] = set()
        while not self._stop.is_set():
            ids, indices = _search(self.url, self.alias)
            self.polls += 1
            self.indices_seen.append(indices)
            missing = seen - ids
            if missing:
                self.misses.append(
                    f"poll {self.polls}: {len(missing)} missing, e.g. {min(missing)}"
                )
            seen |= ids
            time.sleep(0.02)


def _reindex(config: str, table: str, *extra: str) -> dict[str, Any]:
    done = subprocess.run(
        [DYNABRIDGE, "reindex", "--config", config, "--table", table, "--json", *extra],
        capture_output=True, text=True, env=_child_env(), timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


@pytest.mark.parametrize("engine", ["elasticsearch", "opensearch"])
def test_reindex_under_live_writes_never_loses_a_search_hit_and_ends_equal(
    e2e: E2E, engine: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("es_url" if engine == "elasticsearch" else "opensearch_url")
    pipeline, ledgers = e2e.make(
        [KeyKind.S], search_url=url, overrides={"search": {"backend": engine}}
    )
    table = ledgers[0].spec.name
    alias = pipeline.names.index(table)
    config = str(pipeline.config_path)
    pipeline.start_all()
    run_workload(e2e.writers(ledgers, 400), Progress(1_500))

    e2e.wait(pipeline, ledgers, 120)  # the ledger's oracle: every change indexed
    before, old_indices = _search(url, alias)
    assert before, "the premise: documents to lose"

    searcher = Searcher(url, alias)
    live = e2e.writers(ledgers, 400, delete_ratio=0.0, single_ops=0.0)
    writing = threading.Thread(
        target=run_workload, args=(live, Progress(2_000), 40.0), daemon=True
    )  # ~50 s of changes while the rebuild runs and switches
    searcher.start()
    writing.start()
    try:
        report = _reindex(config, table, "--switch-lag", "200")
    finally:
        writing.join(120)
        searcher.stop()
    assert report["switched"], report
    assert report["from"] in old_indices
    assert report["to"] != report["from"]
    assert report["verify"]["verdict"] == "EQUAL"
    assert searcher.misses == [], searcher.misses[:5]
    seen = [indices for indices in searcher.indices_seen if indices]
    assert report["from"] in seen[0], "searching started before the switch"
    assert report["to"] in seen[-1], "and went on after it"
    e2e.wait(pipeline, ledgers, 120)
    after, now_indices = _search(url, alias)
    assert before <= after
    assert now_indices == {report["to"]}
    print(
        f"reindex of {table} on {engine}: {report['documents']} documents, filled in "
        f"{report['fill_seconds']}s, lag at the switch {report['lag_at_switch']}, "
        f"{searcher.polls} searches, none missed a document"
    )


def test_a_concrete_index_of_the_older_layout_is_moved_behind_an_alias(
    e2e: E2E, es_url: str
) -> None:
    pipeline, ledgers = e2e.make([KeyKind.S])
    table = ledgers[0].spec.name
    alias = pipeline.names.index(table)
    # What earlier versions created: a concrete index of the table's name, dynamic mapping.
    created = urllib.request.Request(  # noqa: S310 - the local stack
        f"{es_url}/{alias}", data=b'{"settings": {"number_of_replicas": 0}}', method="PUT",
        headers={"content-type": "application/json"},
    )  # fmt: skip
    urllib.request.urlopen(created, timeout=30).close()  # noqa: S310
    pipeline.start_all()
    run_workload(e2e.writers(ledgers, 200), Progress(1_000))
    wait_for(
        lambda: run_verify(pipeline.config_path, table, e2e.dynamodb, e2e.streams)["equal"],
        120,
        "the legacy index equal to the table",
    )
    refreshed = urllib.request.Request(f"{es_url}/{alias}/_refresh", method="POST")  # noqa: S310
    urllib.request.urlopen(refreshed, timeout=30).close()  # noqa: S310
    documents, indices = _search(es_url, alias)
    assert indices == {alias}, "the premise: a concrete index, no alias"
    report = _reindex(str(pipeline.config_path), table)
    assert report["legacy_index_removed_at_switch"]
    assert report["to"] == f"{alias}~000001"
    assert report["kept"] == f"{alias}~000000"
    copy, _ = _search(es_url, report["kept"])
    assert copy == set(documents), "the older index, kept read-only under a generation's name"
    run_workload(e2e.writers(ledgers, 200), Progress(500))  # the live indexer, handed over
    wait_for(
        lambda: run_verify(pipeline.config_path, table, e2e.dynamodb, e2e.streams)["equal"],
        120,
        "the new index equal to the table",
    )
    _, indices = _search(es_url, alias)
    assert indices == {f"{alias}~000001"}
    assert set(pipeline.stop_all().values()) == {0}


def _records_in(config: Path, topic: str) -> int:
    """Records a read of the whole topic meets now (compaction removes superseded ones without
    moving the offsets)."""
    admin = KafkaAdmin(load_settings(config).kafka)
    try:
        marks = admin.watermarks(topic, admin.partitions(topic))
        return sum(len(admin.read(topic, p, m.low, m.high)) for p, m in marks.items() if m.high)
    finally:
        admin.close()


def test_a_rebuild_from_a_compacted_topic_equals_the_table(e2e: E2E) -> None:
    """A compacted topic holds the latest change of each item only (a REMOVE is a value, so
    it stays): enough to rebuild the index, once most of the history is compacted away."""
    compacted = {
        "cleanup_policy": "compact",
        # Small segments, cleaned as soon as possible: compaction within the test's time.
        "config": {"segment.ms": "1000", "min.cleanable.dirty.ratio": "0.01",
                   "min.compaction.lag.ms": "0"},
    }  # fmt: skip
    pipeline, ledgers = e2e.make([KeyKind.S], overrides={"topics": compacted})
    table = ledgers[0].spec.name
    topic = pipeline.names.topic(table)
    pipeline.start_all()
    writers = e2e.writers(ledgers, 100)
    run_workload(writers, Progress(1_500))
    e2e.wait(pipeline, ledgers, 120)

    def compacted_away() -> bool:
        run_workload(writers, Progress(10))  # new records roll the segment the cleaner takes
        return _records_in(pipeline.config_path, topic) < ledgers[0].changes // 3

    wait_for(compacted_away, 180, "the log cleaner compacting most of the topic away")
    e2e.wait(pipeline, ledgers, 120)
    assert any(item is None for item in ledgers[0].final.values()), "the premise: deletes"

    records = _records_in(pipeline.config_path, topic)
    report = _reindex(str(pipeline.config_path), table)
    assert report["switched"], report
    assert report["history"].startswith("the topic is compacted"), report
    print(f"rebuilt from {records} records of {ledgers[0].changes} changes: {report}")
    e2e.wait(pipeline, ledgers, 120)  # the new generation, through the alias
    assert run_verify(pipeline.config_path, table, e2e.dynamodb, e2e.streams)["equal"]
    assert set(pipeline.stop_all().values()) == {0}


def _state(url: str, index: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/{index}/_mapping", timeout=10) as response:  # noqa: S310
        (body,) = json.loads(response.read()).values()
    state: dict[str, Any] = body["mappings"].get("_meta", {}).get("dynabridge", {})
    return dict(state.get("reindex", {}))


def _put_state(url: str, index: str, state: dict[str, Any]) -> None:
    body = json.dumps({"_meta": {"dynabridge": {"mapping": "typed-fields/1", "reindex": state}}})
    request = urllib.request.Request(  # noqa: S310 - the local stack
        f"{url}/{index}/_mapping", data=body.encode(), method="PUT",
        headers={"content-type": "application/json"},
    )  # fmt: skip
    urllib.request.urlopen(request, timeout=10).close()  # noqa: S310


def test_a_killed_reindex_is_refused_while_its_heartbeat_moves_and_resumed_after(
    e2e: E2E, es_url: str
) -> None:
    pipeline, ledgers = e2e.make([KeyKind.S])
    table = ledgers[0].spec.name
    alias = pipeline.names.index(table)
    config = str(pipeline.config_path)
    pipeline.start_all()
    run_workload(e2e.writers(ledgers, 300), Progress(1_500))
    e2e.wait(pipeline, ledgers, 120)

    # A reindex killed (SIGKILL) while filling: its state stays in the new index's _meta.
    running = subprocess.Popen(
        [DYNABRIDGE, "reindex", "--config", config, "--table", table],
        stderr=subprocess.PIPE, text=True, env=_child_env(),
    )  # fmt: skip
    assert running.stderr is not None
    for line in running.stderr:
        if "created" in line:
            break
    new = f"{alias}~000002"
    wait_for(lambda: _state(es_url, new).get("phase") == "filling", 30, "the rebuild filling")
    running.kill()
    running.wait(30)
    running.stderr.close()

    # Another run whose heartbeat moves (its owner alive): refused, exit 5.
    beating = threading.Event()

    def beat() -> None:
        state, n = _state(es_url, new), 1000
        while not beating.wait(1.0):
            n += 1
            _put_state(es_url, new, {**state, "heartbeat": n})

    beater = threading.Thread(target=beat, daemon=True)
    beater.start()
    refused = subprocess.run(
        [DYNABRIDGE, "reindex", "--config", config, "--table", table],
        capture_output=True, text=True, env=_child_env(), timeout=120, check=False,
    )  # fmt: skip
    beating.set()
    beater.join(10)
    assert refused.returncode == 5, refused.stdout + refused.stderr
    assert "is running" in refused.stderr, refused.stderr

    # Its heartbeat still: the next run resumes the same generation and group, and switches.
    report = _reindex(config, table)
    assert report["resume"], report
    assert report["to"] == new
    assert report["switched"]
    assert report["verify"]["verdict"] == "EQUAL"
    run_workload(e2e.writers(ledgers, 300), Progress(300))
    e2e.wait(pipeline, ledgers, 120)
    assert set(pipeline.stop_all().values()) == {0}


def test_a_topic_missing_its_oldest_changes_is_refused_until_a_backfill(
    e2e: E2E, es_url: str
) -> None:
    pipeline, ledgers = e2e.make([KeyKind.S])
    table = ledgers[0].spec.name
    topic = pipeline.names.topic(table)
    config = str(pipeline.config_path)
    pipeline.start_all()
    run_workload(e2e.writers(ledgers, 300), Progress(1_000))
    e2e.wait(pipeline, ledgers, 120)

    # What retention does to old records: the first half of every partition gone.
    admin = AdminClient({"bootstrap.servers": e2e.kafka})
    kafka = KafkaAdmin(load_settings(pipeline.config_path).kafka)
    try:
        marks = kafka.watermarks(topic, kafka.partitions(topic))
    finally:
        kafka.close()
    trimmed = [TopicPartition(topic, p, m.high // 2) for p, m in marks.items() if m.high]
    for future in admin.delete_records(trimmed).values():
        future.result(timeout=30)

    refused = subprocess.run(
        [DYNABRIDGE, "reindex", "--config", config, "--table", table],
        capture_output=True, text=True, env=_child_env(), timeout=120, check=False,
    )  # fmt: skip
    assert refused.returncode == 5, refused.stdout + refused.stderr
    assert "no longer holds the table's whole history" in refused.stderr, refused.stderr
    assert f"dynabridge backfill --table {table}" in refused.stderr, refused.stderr

    backfill = subprocess.run(
        [DYNABRIDGE, "backfill", "--config", config, "--table", table],
        capture_output=True, text=True, env=_child_env(), timeout=300, check=False,
    )  # fmt: skip
    assert backfill.returncode == 0, backfill.stdout + backfill.stderr
    report = _reindex(config, table)
    assert "backfill" in report["history"], report
    assert report["switched"]
    assert report["verify"]["verdict"] == "EQUAL"
    e2e.wait(pipeline, ledgers, 120)
    assert set(pipeline.stop_all().values()) == {0}
