"""Poison documents end in the dead-letter topic and nothing else is held up; a replay from the
earliest offset rewrites every change and changes nothing in the index."""

from __future__ import annotations

import json
import random
import subprocess
import time
from collections import defaultdict

from bridge.contract import Item, decode, kafka_key
from tests.e2e.checks import (
    Document,
    fully_committed,
    group_state,
    index_documents,
    index_problems,
    read_topic,
    run_verify,
    topic_history,
)
from tests.e2e.harness import E2E
from tests.e2e.pipeline import DYNABRIDGE, Role, _child_env
from tests.e2e.workload import KeyKind, Progress, run_workload
from tests.oracle import expected_id
from tests.polling import wait_for

POISON_MAPPINGS = {"properties": {"amount": {"type": "long"}}}


def test_mapping_conflicts_go_to_the_dlq_and_everything_else_is_indexed(e2e: E2E) -> None:
    """``amount`` is mapped ``long``; a few items carry it as an object (a mapping conflict the
    engine answers with 400). Those, and only those, are dead-lettered, no older version of
    them is left in the index, and verify names them with their reason."""
    pipeline, ledgers = e2e.make(
        [KeyKind.S], overrides={"search": {"index_mappings": POISON_MAPPINGS}}
    )
    ledger = ledgers[0]
    table, topic = ledger.spec.name, pipeline.names.topic(ledger.spec.name)
    index = pipeline.names.index(table)
    ledger.poison = {
        kafka_key(ledger.spec.key(n)) for n in random.Random(e2e.seed).sample(range(400), 12)
    }

    def amount(rng: random.Random, keys: Item) -> Item:
        if kafka_key(keys) in ledger.poison:
            return {
                "amount": {"M": {"value": {"N": str(rng.randrange(100))}, "currency": {"S": "EUR"}}}
            }
        return {"amount": {"N": str(rng.randrange(10**6))}}

    pipeline.start_all()
    run_workload(e2e.writers(ledgers, 400, extra=amount), Progress(3_000))
    poisoned = {k for k in ledger.poison if ledger.final.get(k) is not None}
    assert poisoned, "the workload wrote no poison item"
    e2e.wait(pipeline, ledgers, 90, excluded=ledger.poison)
    wait_for(
        lambda: fully_committed(e2e.kafka, pipeline.names.group, [topic]), 60, "the group's commits"
    )
    assert set(pipeline.stop_all().values()) == {0}

    poison_ids = {expected_id(ledger.keys[k]) for k in poisoned}
    report = run_verify(pipeline.config_path, table, e2e.dynamodb, e2e.streams)
    counts = {kind: n for kind, n in report["differences"].items() if n}
    assert counts == {"dead_lettered": len(poison_ids)}, report
    named = [e for e in report["examples"] if e["kind"] == "dead_lettered"]
    assert {e["id"] for e in named} == poison_ids
    assert all("amount" in e["reason"] for e in named), "verify names the reason"

    history = topic_history(ledger, read_topic(e2e.kafka, topic))
    assert history.problems == []
    docs = index_documents(e2e.es_url, index)
    assert index_problems(ledger, history, docs, excluded=ledger.poison) == []
    assert poison_ids.isdisjoint(docs), "no older version of a refused item looks current"

    letters = read_topic(e2e.kafka, pipeline.names.dlq(table))
    newest: dict[bytes, int] = defaultdict(int)
    for letter in letters:
        headers = {name: value.decode() for name, value in letter.headers.items()}
        assert headers["dlq.error_type"] in (
            "document_parsing_exception",
            "mapper_parsing_exception",
        ), headers
        assert headers["dlq.status"] == "400"
        assert headers["dlq.source_topic"] == topic
        assert headers["dlq.index"] == index
        assert "amount" in headers["dlq.reason"]
        event = decode(letter.value)
        assert kafka_key(event.keys) == letter.key
        newest[letter.key] = max(newest[letter.key], event.version)
    assert set(newest) == poisoned, "dead letters for exactly the poison items"
    for key in poisoned:
        assert newest[key] == history.last[key].version, "the newest poison change is dead-lettered"
    print(f"{len(letters)} dead letters for {len(poisoned)} poison items; {len(docs)} documents")


def _replay(config: str, table: str) -> dict[str, object]:
    done = subprocess.run(
        [DYNABRIDGE, "replay", "--config", config, "--table", table, "--to", "earliest", "--json"],
        capture_output=True, text=True, env=_child_env(), timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_replay_from_earliest_after_the_workload_changes_nothing_in_the_index(e2e: E2E) -> None:
    pipeline, ledgers = e2e.make([KeyKind.S, KeyKind.S_N])
    names = pipeline.names
    topics = [names.topic(t) for t in names.tables]
    pipeline.start_all()
    run_workload(e2e.writers(ledgers, 300), Progress(3_000))
    e2e.wait(pipeline, ledgers, 90)
    wait_for(lambda: fully_committed(e2e.kafka, names.group, topics), 60, "the group's commits")
    assert set(pipeline.stop_all().values()) == {0}
    wait_for(lambda: group_state(e2e.kafka, names.group)[1] == 0, 30, "an empty group")

    def snapshot() -> dict[str, dict[str, Document]]:
        return {t: index_documents(e2e.es_url, names.index(t)) for t in names.tables}

    before = snapshot()
    deleted = sum(1 for ledger in ledgers for item in ledger.final.values() if item is None)
    assert deleted > 0, "the workload deleted nothing: the replay would not test deletes"
    records = {t: len(read_topic(e2e.kafka, names.topic(t))) for t in names.tables}
    for table in names.tables:
        result = _replay(str(pipeline.config_path), table)
        assert result["applied"] is True
        assert result["records_to_reread"] == records[table]
    assert not fully_committed(e2e.kafka, names.group, topics)

    started = time.monotonic()
    pipeline.start(Role.BRIDGE)
    pipeline.start(Role.INDEXER)
    snapshots = 0
    while not fully_committed(e2e.kafka, names.group, topics):
        assert time.monotonic() - started < 120, "the replay did not finish within 120 s"
        pipeline.assert_alive()
        assert snapshot() == before, "the index changed during the replay"
        snapshots += 1
    assert snapshot() == before
    after = {t: len(read_topic(e2e.kafka, names.topic(t))) for t in names.tables}
    assert after == records, "the bridge, restarted after a clean stop, published again"
    took = time.monotonic() - started
    print(f"replay of {len(topics)} topics done in {took:.1f}s, index compared {snapshots} times")
    assert set(pipeline.stop_all().values()) == {0}
    e2e.check(pipeline, ledgers)
