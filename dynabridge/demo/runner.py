"""The demo run, start to end: stack, table, config, both processes, workload, drain, verify.

Invariant: whatever happens (an error, Ctrl-C, SIGTERM), the pipeline processes started here
are stopped before :func:`run` returns or raises.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from bridge.runtime.settings import SearchBackend, Settings
from consumers.indexer.documents import doc_id, index_name
from dynabridge.demo import stack
from dynabridge.demo.cleanup import remove_run
from dynabridge.demo.display import Snapshot, Ticker, status_line
from dynabridge.demo.driver import Driver, DriveResult
from dynabridge.demo.errors import DemoError
from dynabridge.demo.poller import VisibilityPoller
from dynabridge.demo.processes import (
    Child,
    Children,
    child_env,
    dynabridge_argv,
    metric_total,
    wait_ready,
)
from dynabridge.demo.runconfig import Endpoints, RunNames, config_data, write_config
from dynabridge.demo.table import DemoTable, client
from dynabridge.demo.visibility import LatencySummary, VisibilityTracker
from dynabridge.demo.workload import REV, Change, ChangeKind, Workload
from dynabridge.devstack.config import StackConfig
from dynabridge.operations.index_reader import build_reader

Progress = Callable[[str], None]
REGION = "us-east-1"
READY_TIMEOUT_S = 120.0
WARM_UP_TIMEOUT_S = 120.0
VERIFY_TIMEOUT_S = 300.0
BRIDGE_PUBLISHED = "dynabridge_bridge_records_published"
INDEXER_SETTLED = "dynabridge_indexer_documents"


@dataclass(frozen=True, slots=True)
class DemoOptions:
    changes: int = 1000
    rate: float = 100.0
    threads: int = 4
    table: str | None = None
    backend: SearchBackend = SearchBackend.ELASTICSEARCH
    seed: int = 7
    drain_timeout_s: float = 120.0
    cleanup: bool = False
    run_dir: Path | None = None


@dataclass(frozen=True, slots=True)
class DemoResult:
    table: str
    config_path: Path
    equal: bool
    drained: bool
    verify_output: str
    latency: LatencySummary
    drive: DriveResult
    kinds: dict[str, int]
    pipeline_ready_s: float
    exit_codes: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.equal and self.drained


@dataclass(frozen=True, slots=True)
class _Run:
    options: DemoOptions
    names: RunNames
    endpoints: Endpoints
    settings: Settings
    config_path: Path
    table: DemoTable
    progress: Progress


def run(options: DemoOptions, config: StackConfig, progress: Progress) -> DemoResult:
    endpoints = stack.ensure(config, options.backend, progress)
    names = RunNames(options.table or f"demo-{uuid.uuid4().hex[:8]}")
    run_dir = options.run_dir or config.artifacts_dir / "demo" / names.table
    table = DemoTable(client(endpoints.moto, REGION, pool=options.threads + 4), names.table)
    verb = "created" if table.create() else "reusing"
    progress(f"{verb} table {names.table} with a NEW_AND_OLD_IMAGES stream")
    config_path = run_dir / "dynabridge.yaml"
    settings = write_config(config_path, config_data(names, endpoints, health_port=0))
    progress(f"config and process logs in {run_dir}")
    children = Children()
    try:
        result = _pipeline(
            _Run(options, names, endpoints, settings, config_path, table, progress), children
        )
        codes = children.stop()
        progress("stopped " + ", ".join(f"{n} (exit {c})" for n, c in codes.items()))
        return replace(result, exit_codes=codes)
    finally:
        children.stop()  # a no-op after the normal stop above
        if options.cleanup:
            remove_run(names, endpoints, progress)


def _pipeline(run: _Run, children: Children) -> DemoResult:
    started = time.monotonic()
    logs = run.config_path.parent
    args = ["--config", str(run.config_path)]
    bridge = children.start("bridge", ["bridge", "run", *args], logs / "bridge.log")
    indexer = children.start("indexer", ["index", "run", *args], logs / "indexer.log")
    wait_ready([bridge, indexer], READY_TIMEOUT_S)
    run.progress(f"bridge (pid {bridge.process.pid}) and indexer (pid {indexer.process.pid}) ready")
    tracker = VisibilityTracker()
    stop = threading.Event()
    reader = build_reader(run.settings.search, run.settings.aws.region)
    poller = VisibilityPoller(reader, index_name("", run.names.table), tracker, stop)
    poller.start()
    try:
        warm_up(run.table, tracker, bridge.log_path.parent)
        ready_s = time.monotonic() - started
        run.progress(f"first change visible in the index: pipeline ready in {ready_s:.1f} s")
        baseline = tracker.visible
        workload = Workload(run.options.seed, uuid.uuid4().hex[:6])
        drive, drained = _drive(run, workload, tracker, stop, (bridge, indexer))
    finally:
        stop.set()
        poller.join(5)
        reader.close()
    latency = LatencySummary.of(tracker.latencies_s(since=baseline))
    equal, output = _verify(run)
    kinds = {kind.value: workload.counts[kind] for kind in ChangeKind}
    return DemoResult(
        run.names.table, run.config_path, equal, drained, output, latency, drive, kinds, ready_s
    )


def warm_up(table: DemoTable, tracker: VisibilityTracker, logs: Path) -> None:
    """One write through the whole path before the clock starts: topic, group, index exist."""
    keys = {"pk": {"S": "warm-up"}, "sk": {"N": "0"}}
    # A rev no earlier run of a reused --table can have written: only this write settles it.
    rev = time.time_ns() // 1000
    table.write(Change(rev, ChangeKind.INSERT, keys, image={**keys, REV: {"N": str(rev)}}))
    tracker.expect(doc_id(keys), rev, False, time.monotonic())
    deadline = time.monotonic() + WARM_UP_TIMEOUT_S
    while not tracker.settled(doc_id(keys)):
        if time.monotonic() > deadline:
            raise DemoError(
                f"the warm-up item did not reach the index in {WARM_UP_TIMEOUT_S:.0f} s; "
                f"logs: {logs}"
            )
        time.sleep(0.05)


def _drive(
    run: _Run,
    workload: Workload,
    tracker: VisibilityTracker,
    stop: threading.Event,
    children: tuple[Child, Child],
) -> tuple[DriveResult, bool]:
    options = run.options
    driver = Driver(
        workload, run.table, tracker, doc_id,
        total=options.changes, rate=options.rate, threads=options.threads,
    )  # fmt: skip
    bridge, indexer = children
    base = (
        metric_total(bridge, BRIDGE_PUBLISHED) or 0,
        metric_total(indexer, INDEXER_SETTLED) or 0,
    )
    visible_base = tracker.visible
    started = time.monotonic()

    def line() -> str:
        in_kafka = metric_total(bridge, BRIDGE_PUBLISHED)
        indexed = metric_total(indexer, INDEXER_SETTLED)
        return status_line(Snapshot(
            time.monotonic() - started, driver.written, options.changes,
            None if in_kafka is None else in_kafka - base[0],
            None if indexed is None else indexed - base[1],
            tracker.visible - visible_base,
        ))  # fmt: skip

    ticker = Ticker(line, run.progress)
    ticker.start()
    try:
        drive = driver.run(stop)
        drained = _drain(tracker, options.drain_timeout_s, children)
    finally:
        ticker.stop()
    return drive, drained


def _drain(tracker: VisibilityTracker, timeout_s: float, children: tuple[Child, Child]) -> bool:
    """Until every written change is visible; False at the deadline or if a process died."""
    deadline = time.monotonic() + timeout_s
    while tracker.visible < tracker.expected:
        dead = [c for c in children if c.exited() is not None]
        if dead or time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _verify(run: _Run) -> tuple[bool, str]:
    argv = [*dynabridge_argv(), "verify", "--config", str(run.config_path)]
    argv += ["--table", run.names.table, "--quiet"]
    run.progress(
        "running: dynabridge verify --config " + f"{run.config_path} --table {run.names.table}"
    )
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=VERIFY_TIMEOUT_S, check=False,
            env=child_env(),
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return False, f"verify did not finish in {VERIFY_TIMEOUT_S:.0f} s"
    output = (done.stdout + done.stderr).strip()
    return done.returncode == 0, output
