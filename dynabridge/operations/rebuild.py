"""``dynabridge reindex`` run against the real services: the steps of ``reindex``, in order.

Composition of the operator command: the engine (``generations``), Kafka (``kafka_admin``),
DynamoDB (``dynamo``, for verify), and an in-process indexer of the rebuild's own group that
fills the new generation (``consumers.indexer.main.run_indexer`` with an index override).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bridge.contract import dlq_topic, topic_name
from bridge.runtime.settings import Settings
from consumers.indexer.documents import index_name
from consumers.indexer.templates import generation_name, index_body
from dynabridge.operations.dead_letters import dead_lettered_ids, read_letters
from dynabridge.operations.errors import OperationError
from dynabridge.operations.generations import Generations, Layout
from dynabridge.operations.index_reader import StoredDocument
from dynabridge.operations.kafka_admin import KafkaAdmin
from dynabridge.operations.reindex import (
    ALIVE_WATCH_S,
    HEARTBEAT_S,
    Phase,
    Plan,
    ReindexRefused,
    Report,
    alive,
    caught_up,
    history_problem,
    lag,
    next_layout_plan,
    progress_line,
    unsettled,
)


def legacy_copy(alias: str) -> str:
    """The read-only copy of a legacy concrete index kept after its switch: generation 0."""
    return generation_name(alias, 0)


Say = Callable[[str], None]
RunIndexer = Callable[[Settings, threading.Event, Mapping[str, str]], int]
Verify = Callable[[str, Mapping[str, tuple[str, str]]], dict[str, Any]]
"""(index, dead letters) -> ``VerifyReport.as_json()`` plus ``differing_ids``."""
Documents = Callable[[str, Sequence[str]], Mapping[str, StoredDocument]]
"""(index, ids) -> the documents among ``ids`` the index holds (real time)."""


@dataclass(frozen=True, slots=True)
class Options:
    mappings: Mapping[str, Any] | None = None
    settings: Mapping[str, Any] | None = None
    dry_run: bool = False
    drop_old: bool = False
    switch_lag: int = 0
    """Lag (records) at or below which the rebuild counts as caught up."""
    verify_rounds: int = 5
    timeout_s: float = 24 * 3600.0


def load_file(path: Path | None) -> Mapping[str, Any] | None:
    """A JSON or YAML mapping from ``path``; the error names the file."""
    if path is None:
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise OperationError(f"cannot read {path}: {error}") from None
    if not isinstance(data, Mapping):
        raise OperationError(f"{path} must hold a mapping (JSON or YAML object)")
    return data


class Rebuild:
    def __init__(
        self,
        settings: Settings,
        table: str,
        options: Options,
        engine: Generations,
        kafka: KafkaAdmin,
        verify: Verify,
        documents: Documents,
        backfills_started_ms: Callable[[], list[int]],
        run_indexer: RunIndexer,
        say: Say,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._settings = settings
        self._table = table
        self._options = options
        self._engine = engine
        self._kafka = kafka
        self._verify = verify
        self._documents = documents
        self._backfills_started_ms = backfills_started_ms
        self._run_indexer = run_indexer
        self._say = say
        self._sleep = sleep
        self._topic = topic_name(settings.kafka.topic_prefix, table)
        self._alias = index_name(settings.search.index_prefix, table)
        self._filler: threading.Thread | None = None
        self._fill_code: int | None = None

    # ------------------------------------------------------------------------------ plan

    def plan(self) -> tuple[Plan, Layout]:
        layout = self._engine.layout(self._alias)
        partitions = self._kafka.partitions(self._topic)
        marks = self._kafka.watermarks(self._topic, partitions)
        lows = {p: m.low for p, m in marks.items()}
        oldest = None
        if any(lows.values()):
            oldest = min(
                (r.timestamp_ms for p, m in marks.items() if m.low < m.high
                 for r in self._kafka.read(self._topic, p, m.low, m.low + 1)),
                default=None,
            )  # fmt: skip
        policy = self._kafka.topic_config(self._topic, "cleanup.policy")
        started = self._backfills_started_ms() if any(lows.values()) else []
        problem, history = history_problem(lows, policy, oldest, started)
        if problem is not None:
            raise ReindexRefused(problem.replace("--table T", f"--table {self._table}"))

        def owner_alive(number: int) -> bool:
            index = generation_name(self._alias, number)

            def beat() -> tuple[object, object]:
                state = self._engine.state(index)
                return state.get("heartbeat"), state.get("phase")

            return alive(beat, ALIVE_WATCH_S, self._sleep)

        group_prefix = self._settings.indexer.group_id
        return next_layout_plan(self._table, layout, group_prefix, history, owner_alive), layout

    # ------------------------------------------------------------------------------- run

    def run(self) -> Report:
        plan, _ = self.plan()
        report = Report(plan)
        if self._options.dry_run:
            return report
        owner = f"{socket.gethostname()}-{os.getpid()}"
        if not plan.resume:
            self._create(plan)
        state: dict[str, Any] = {
            "phase": Phase.FILLING.value,
            "group": plan.group,
            "from": plan.old,
            "owner": owner,
            "heartbeat": 0,
            "started_at_ms": int(time.time() * 1000),
        }
        previous = self._engine.state(plan.new)
        if plan.resume and previous.get("phase") == Phase.BLOCKED:
            state["phase"] = Phase.BLOCKED.value
        self._engine.set_state(plan.new, state)
        beats = _Heartbeat(self._engine, plan.new, state)
        stop = threading.Event()
        filler = self._filler = threading.Thread(
            target=self._fill, args=(plan, stop), name="reindex-fill", daemon=True
        )
        started = time.monotonic()
        beats.start()
        filler.start()
        try:
            if state["phase"] == Phase.FILLING.value:
                self._wait_caught_up(plan, filler)
                report.fill_s = time.monotonic() - started
                report.verify = self._verified(plan)
                report.lag_at_switch = sum(self._remaining(plan).values())
                if plan.old is not None:
                    self._engine.block_writes(plan.old, blocked=True)
                beats.update(phase=Phase.BLOCKED.value)
            blocked_at = time.monotonic()
            self._drain(plan, filler)  # all the old index can hold: it takes no more writes
            # Searches see refreshed documents only: every one the old index showed must be
            # searchable in the new one the moment the alias points at it.
            self._engine.refresh(plan.new)
            if plan.legacy and plan.old is not None:
                # The switch removes the concrete index (an alias cannot share its name): a
                # read-only copy of it stays, like any older generation.
                self._engine.clone(plan.old, legacy_copy(self._alias))
                report.kept = legacy_copy(self._alias)
            self._engine.switch(self._alias, plan.new, self._engine.layout(self._alias))
            report.drained_s = time.monotonic() - blocked_at
            report.switched = True
            if not plan.legacy:
                report.kept = plan.old
            self._say(f"reindex {self._table}: switched {self._alias} to {plan.new}")
        finally:
            stop.set()
            filler.join(60)
            beats.stop()
        beats.update(phase=Phase.DONE.value)
        self._engine.refresh(plan.new)
        report.documents = self._engine.count(plan.new)
        old = legacy_copy(self._alias) if plan.legacy else plan.old
        if self._options.drop_old and old is not None:
            self._sleep(self._settings.search.request_timeout_s)  # in-flight writes land first
            self._engine.delete(old)
            report.dropped.append(old)
            report.kept = None
        return report

    def abort(self) -> list[str]:
        """Give up an unfinished rebuild: the old index writable again, the new generation and
        the rebuild's group deleted; what was done, as lines."""
        layout = self._engine.layout(self._alias)
        done: list[str] = []
        for number, meta in sorted(layout.generations.items()):
            state = meta.get("reindex", {})
            if state.get("phase") not in (Phase.FILLING.value, Phase.BLOCKED.value):
                continue
            index = generation_name(self._alias, number)
            old = state.get("from")
            if old:
                self._engine.block_writes(old, blocked=False)
                done.append(f"{old} takes writes again")
            self._engine.delete(index)
            done.append(f"deleted {index}")
            if state.get("group"):
                self._kafka.delete_group(str(state["group"]))
                done.append(f"deleted consumer group {state['group']}")
        return done or [f"no unfinished reindex of {self._table}"]

    def _create(self, plan: Plan) -> None:
        search = self._settings.search
        overrides: dict[str, Any] = {}
        if self._options.mappings is not None:
            overrides["index_mappings"] = {**search.index_mappings, **self._options.mappings}
        if self._options.settings is not None:
            overrides["index_settings"] = {**search.index_settings, **self._options.settings}
        body = index_body(search.model_copy(update=overrides), search.backend)
        if not self._engine.create(plan.new, body):
            raise ReindexRefused(
                f"{plan.new} was created by another run a moment ago: a reindex of "
                f"{self._table} is starting elsewhere"
            )
        self._say(f"reindex {self._table}: created {plan.new}")

    def _fill(self, plan: Plan, stop: threading.Event) -> None:
        indexer = self._settings.indexer.model_copy(
            update={"group_id": plan.group, "tables": [self._table]}
        )
        metrics = self._settings.metrics.model_copy(update={"port": 0})
        settings = self._settings.model_copy(update={"indexer": indexer, "metrics": metrics})
        self._fill_code = self._run_indexer(settings, stop, {self._table: plan.new})

    def _remaining(self, plan: Plan) -> dict[int, int]:
        partitions = self._kafka.partitions(self._topic)
        ends = self._kafka.watermarks(self._topic, partitions)
        return lag(ends, self._kafka.committed(plan.group, self._topic, partitions))

    def _wait_caught_up(self, plan: Plan, filler: threading.Thread | None) -> None:
        deadline = time.monotonic() + self._options.timeout_s
        last_total, last_at, shown = None, time.monotonic(), 0.0
        while True:
            remaining = self._remaining(plan)
            total = sum(remaining.values())
            now = time.monotonic()
            rate = (
                0.0
                if last_total is None
                else max(0.0, (last_total - total) / max(now - last_at, 1e-6))
            )
            if now - shown >= 2.0:
                self._say(progress_line(self._table, plan.new, remaining, rate))
                shown = now
            last_total, last_at = total, now
            if caught_up(remaining, self._options.switch_lag):
                return
            if filler is None or not filler.is_alive():
                raise OperationError(
                    f"the rebuild's indexer stopped (exit {self._fill_code}); "
                    "see its log lines above, fix the cause and rerun to resume"
                )
            if now > deadline:
                raise OperationError(f"not caught up after {self._options.timeout_s:.0f}s")
            self._sleep(1.0)

    def _drain(self, plan: Plan, filler: threading.Thread) -> None:
        """Until the rebuild's group has read every record in the topic now."""
        partitions = self._kafka.partitions(self._topic)
        ends = {p: m.high for p, m in self._kafka.watermarks(self._topic, partitions).items()}
        deadline = time.monotonic() + self._options.timeout_s
        while True:
            committed = self._kafka.committed(plan.group, self._topic, partitions)
            if all((committed.get(p) or 0) >= end for p, end in ends.items()):
                return
            if not filler.is_alive() or time.monotonic() > deadline:
                raise OperationError(
                    "the rebuild's group did not reach the end of the topic while the old index "
                    "refused writes (the live indexer is retrying them); rerun reindex to finish "
                    "(it resumes), or `dynabridge reindex --abort` to give the old index back"
                )
            self._sleep(0.5)

    def _verified(self, plan: Plan) -> dict[str, Any]:
        topic = dlq_topic(self._topic)
        every = read_letters(self._kafka, topic)
        refused = [letter for letter in every if letter.index == plan.new]
        if refused:
            first = refused[0]
            raise OperationError(
                f"{plan.new} refused {len(refused)} document(s) "
                f"(dead-lettered in {topic}, e.g. {first.doc_id} at {first.position}: "
                f"{first.error_type}: {first.reason[:200]}); the alias was not switched. Fix "
                f"--mappings/--settings, then `dynabridge reindex --abort --table {self._table}` "
                "and reindex again"
            )
        letters = dead_lettered_ids(every)
        report = self._verify(plan.new, letters)
        blocking = _blocking(report)
        if not blocking:
            return {"verdict": "EQUAL" if report["equal"] else "DEAD_LETTERED", **_counts(report)}
        round_one = report
        pending: list[str] = list(report.get("differing_ids", ()))
        for round_ in range(2, self._options.verify_rounds + 1):
            self._say(
                f"reindex {self._table}: verify round {round_ - 1}: {blocking} (changes in "
                "flight?); catching up and verifying again"
            )
            self._wait_caught_up(plan, self._filler)
            if plan.old is None or not pending:
                # Nothing live to compare with: the whole table again.
                report = self._verify(plan.new, letters)
                blocking = _blocking(report)
                if not blocking:
                    return {
                        "verdict": "EQUAL" if report["equal"] else "DEAD_LETTERED",
                        **_counts(report),
                    }
                pending = list(report.get("differing_ids", ()))
                continue
            # Under live writes the table is always ahead of the topic: only the ids that
            # differed are looked at again, against the live generation (see ``unsettled``).
            pending = unsettled(
                pending, self._documents(plan.new, pending), self._documents(plan.old, pending)
            )
            if not pending:
                counts = _counts(round_one)
                in_flight = sum(n for k, n in counts.items() if k != "dead_lettered")
                return {
                    "verdict": "EQUAL" if not counts["dead_lettered"] else "DEAD_LETTERED",
                    **{k: (0 if k != "dead_lettered" else n) for k, n in counts.items()},
                    "in_flight": in_flight,
                }
            blocking = {"unlike_the_live_index": len(pending)}
        raise OperationError(
            f"{plan.new} still differs from the table after {self._options.verify_rounds} "
            f"rounds ({json.dumps(blocking)}); the alias was not switched: run `dynabridge "
            f"verify` on {plan.new}, fix the cause and rerun reindex (it resumes)"
        )


def _counts(report: Mapping[str, Any]) -> dict[str, int]:
    return dict(report["differences"])


def _blocking(report: Mapping[str, Any]) -> dict[str, int]:
    return {k: n for k, n in _counts(report).items() if n and k != "dead_lettered"}


class _Heartbeat:
    """Moves the rebuild's heartbeat in the new index's ``_meta`` every HEARTBEAT_S."""

    def __init__(self, engine: Generations, index: str, state: dict[str, Any]) -> None:
        self._engine, self._index, self._state = engine, index, state
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="reindex-heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def update(self, **changes: Any) -> None:
        with self._lock:
            self._state = {**self._state, **changes}
            self._engine.set_state(self._index, self._state)

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self.update(heartbeat=int(self._state.get("heartbeat", 0)) + 1)
            except OperationError:
                continue  # the next beat tries again; a watcher needs only one to move
