"""`dynabridge backfill` against real Kafka, Elasticsearch and moto, with the bridge and the
indexer running as subprocesses: the index must end equal to the table whatever the interleaving."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from confluent_kafka import Consumer, TopicPartition  # noqa: TID251 - tests read the real topic

from bridge.backfill.progress import ProgressTable, RunState, list_backfills
from bridge.backfill.runner import Options
from bridge.contract import HEADER_EVENT_NAME, HEADER_ORIGIN, ChangeEvent, kafka_key
from bridge.runtime.exits import ExitCode
from bridge.runtime.settings import load_settings
from dynabridge.operations.backfill import run_backfill
from tests.integration.backfill.backfill_harness import (
    Env,
    create_loaded_table,
    doc_id_and_document,
    drop,
    index_documents,
    request,
    typed_item,
    wait_index_equals_table,
)
from tests.polling import wait_for

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

ITEMS = 2000
HOLD_AFTER_DELETE_S = 70.0


@pytest.fixture
def env(
    dynamodb: DynamoDBClient,
    kafka_bootstrap: str,
    moto_endpoint: str,
    es_url: str,
    unique_name: Callable[[str], str],
    tmp_path: Path,
) -> Iterator[Env]:
    name = unique_name("bf")
    environment = Env(
        dynamodb, kafka_bootstrap, moto_endpoint, es_url, name, name + ".", name + "-leases",
        tmp_path,
    )  # fmt: skip
    yield environment
    drop(environment)


@pytest.fixture
def pipeline(env: Env) -> Iterator[list[subprocess.Popen[bytes]]]:
    """A loaded table, then the bridge and the indexer as real processes."""
    create_loaded_table(env.dynamodb, env.table, ITEMS)
    processes = [env.start("bridge", "bridge", "run"), env.start("indexer", "index", "run")]
    yield processes
    for process in processes:
        process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def key(i: int) -> dict[str, Any]:
    item = typed_item(i)
    return {"pk": item["pk"], "sk": item["sk"]}


class Workload:
    """Updates, deletes and re-inserts over loaded and new keys until stopped; logs (id, when)."""

    def __init__(self, env: Env, spared: set[int]) -> None:
        self.env, self.spared = env, spared
        self.stop = threading.Event()
        self.operations: list[tuple[str, float]] = []
        self._deleted: set[int] = set()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def finish(self) -> None:
        self.stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        rng = random.Random(6)
        ddb, table = self.env.dynamodb, self.env.table
        while not self.stop.is_set() and len(self.operations) < 1500:
            i = rng.randrange(ITEMS + 200)
            if i in self.spared:
                continue
            if i in self._deleted or (i >= ITEMS and rng.random() < 0.5):
                item = typed_item(i)
                item["s"] = {"S": f"re-inserted {len(self.operations)}"}
                ddb.put_item(TableName=table, Item=item)
                self._deleted.discard(i)
            elif rng.random() < 0.35:
                ddb.delete_item(TableName=table, Key=key(i))
                self._deleted.add(i)
            else:
                ddb.update_item(
                    TableName=table,
                    Key=key(i),
                    UpdateExpression="SET s = :s, extra = :e",
                    ExpressionAttributeValues={
                        ":s": {"S": f"updated {len(self.operations)}"},
                        ":e": {"NS": ["-1", str(i)]},
                    },
                )
            self.operations.append((doc_id_and_document(table, typed_item(i))[0], time.monotonic()))
            time.sleep(0.005)


def kafka_history(env: Env, item_key: dict[str, Any]) -> list[tuple[int, str, str]]:
    """(offset, origin, event name) of every record of one item in the table's topic."""
    wanted = kafka_key(item_key)
    consumer = Consumer({"bootstrap.servers": env.kafka, "group.id": env.prefix + "probe",
                         "enable.auto.commit": False})  # fmt: skip
    try:
        partitions = consumer.list_topics(env.topic, timeout=10).topics[env.topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(env.topic, p))[1] for p in partitions
        }
        consumer.assign([TopicPartition(env.topic, p, 0) for p in partitions])
        history: list[tuple[int, str, str]] = []
        deadline = time.monotonic() + 60
        while any(ends.values()) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            partition, offset = message.partition() or 0, message.offset() or 0
            if offset + 1 >= ends[partition]:
                ends[partition] = 0
            if message.key() == wanted:
                headers = dict(message.headers() or [])
                origin, name = _text(headers[HEADER_ORIGIN]), _text(headers[HEADER_EVENT_NAME])
                history.append((offset, origin, name))
        return sorted(history)
    finally:
        consumer.close()


def _text(value: str | bytes | None) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def test_backfill_under_a_concurrent_workload_and_a_late_stale_image_leaves_index_equal_to_table(
    env: Env, pipeline: list[subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    held = 1234  # scanned, then deleted, and its scanned image published 70 s after the delete
    held_id = doc_id_and_document(env.table, typed_item(held))[0]
    env.dynamodb.update_item(
        TableName=env.table, Key=key(held), UpdateExpression="SET touched = :t",
        ExpressionAttributeValues={":t": {"BOOL": True}},
    )  # fmt: skip
    wait_for(lambda: held_id in index_documents(env), 90, "the stream's MODIFY in the index")

    published_at: dict[str, float] = {}
    timeline: dict[str, float] = {}

    def before_publish(event: ChangeEvent) -> None:
        doc_id = doc_id_and_document(env.table, event.new_image or {})[0]
        published_at.setdefault(doc_id, time.monotonic())
        if doc_id == held_id and "released" not in timeline:
            env.dynamodb.delete_item(TableName=env.table, Key=key(held))
            wait_for(lambda: held_id not in index_documents(env), 60, "the delete in the index")
            timeline["delete_indexed"] = time.monotonic()
            time.sleep(HOLD_AFTER_DELETE_S)  # the point of the test: a late stale image
            timeline["released"] = time.monotonic()

    for name, value in env.variables().items():
        monkeypatch.setenv(name, value)
    workload = Workload(env, spared={held})
    workload.start()
    try:
        code, summary = run_backfill(
            load_settings(None), env.table, Options(segments=4, page_size=50),
            stop=threading.Event(), before_publish=before_publish, say=lambda line: None,
        )  # fmt: skip
    finally:
        workload.finish()
    assert code == ExitCode.OK
    assert summary is not None
    assert summary.state == "finished"
    assert summary.items_scanned >= ITEMS * 0.8

    diff = wait_index_equals_table(env, timeout_s=120)
    assert diff == {"missing": [], "extra": [], "different": []}
    assert held_id not in index_documents(env)

    # The premise really happened: the image reached Kafka after the REMOVE, > 60 s later.
    assert timeline["released"] - timeline["delete_indexed"] >= HOLD_AFTER_DELETE_S
    history = kafka_history(env, key(held))
    remove = max(offset for offset, origin, name in history if name == "REMOVE")
    snapshot = max(offset for offset, origin, name in history if origin == "SNAPSHOT")
    assert snapshot > remove
    # The workload hit items the scan had already published and items it had not reached.
    passed = [1 for doc, at in workload.operations if published_at.get(doc, float("inf")) < at]
    ahead = [1 for doc, at in workload.operations if published_at.get(doc, 0.0) > at]
    assert len(passed) >= 10
    assert len(ahead) >= 10
    assert all(process.poll() is None for process in pipeline)  # backfill rows did not upset them


def test_a_sigkilled_backfill_resumes_without_rescanning_finished_work(
    env: Env, pipeline: list[subprocess.Popen[bytes]]
) -> None:
    args = ["backfill", "--table", env.table, "--segments", "4", "--page-size", "25",
            "--claim-ttl-s", "3", "--json"]  # fmt: skip
    first = env.start("backfill-1", *args, "--max-items-per-second", "500")
    progress = ProgressTable(env.dynamodb, env.lease_table, time.time)

    def saved() -> int:
        try:
            return sum(p.items for p in progress.segments(env.table, 4).values())
        except Exception:  # noqa: BLE001 - the lease table may not exist yet
            return 0

    wait_for(lambda: saved() >= ITEMS // 3, 60, "a third of the items acknowledged")
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    before = progress.segments(env.table, 4)
    assert 0 < sum(p.items for p in before.values()) < ITEMS

    second = env.start("backfill-2", *args)
    out, _ = second.communicate(timeout=180)
    assert second.returncode == ExitCode.OK, (env.logs / "backfill-2.log").read_text()
    summary = json.loads(out)
    assert summary["resumed"]
    assert summary["state"] == "finished"
    assert summary["items_scanned"] < ITEMS - sum(p.items for p in before.values()) + 4 * 25
    for view in summary["segments"]:
        old = before[view["segment"]]
        assert view["done"]
        if old.done:
            assert view["scanned"] == 0  # finished before the kill: not read again
        if old.start_key is not None:
            assert view["from_start_scans"] == 1  # resumed at its key, not from the start
    diff = wait_index_equals_table(env, timeout_s=120)
    assert diff == {"missing": [], "extra": [], "different": []}


def backfill_output(env: Env, name: str, *args: str) -> tuple[int, str]:
    process = env.start(name, "backfill", *args)
    process.communicate(timeout=120)
    return process.returncode, (env.logs / f"{name}.log").read_text()


def test_bad_input_is_refused_with_a_clear_error(env: Env) -> None:
    code, text = backfill_output(env, "backfill-unknown", "--table", env.table)
    assert code == ExitCode.CONFIG
    assert f"table {env.table!r} does not exist" in text

    env.dynamodb.create_table(
        TableName=env.table, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )  # fmt: skip
    code, text = backfill_output(env, "backfill-nostream", "--table", env.table)
    assert code == ExitCode.CONFIG
    assert "has no stream" in text


def test_a_second_backfill_or_a_short_gc_deletes_is_refused(env: Env) -> None:
    create_loaded_table(env.dynamodb, env.table, 300)
    slow = env.start("backfill-slow", "backfill", "--table", env.table, "--page-size", "5",
                     "--max-items-per-second", "20", "--claim-ttl-s", "3")  # fmt: skip
    progress = ProgressTable(env.dynamodb, env.lease_table, time.time)

    def running() -> bool:
        try:
            run = progress.run(env.table)
        except Exception:  # noqa: BLE001 - the lease table may not exist yet
            return False
        return run is not None and run.state is RunState.RUNNING

    wait_for(running, 60, "the first backfill's claim")
    started = time.monotonic()
    code, text = backfill_output(env, "backfill-second", "--table", env.table, "--claim-ttl-s", "3")
    assert code == ExitCode.REFUSED
    assert "is already running" in text
    assert time.monotonic() - started < 30
    slow.send_signal(signal.SIGTERM)
    assert slow.wait(timeout=30) == ExitCode.STOPPED
    [status] = list_backfills(env.dynamodb, env.lease_table)  # what `dynabridge status` reads
    assert status.run.table == env.table
    assert status.run.state is RunState.STOPPED
    assert len(status.segments) == status.run.total_segments == 4
    assert 0 < status.items < 300
    assert status.segments_done < 4

    request(env.es, "PUT", env.index, {"settings": {"index.gc_deletes": "60s"}})
    code, text = backfill_output(env, "backfill-gc", "--table", env.table)
    assert code == ExitCode.REFUSED
    assert "index.gc_deletes=60s" in text
