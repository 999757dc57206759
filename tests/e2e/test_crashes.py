"""Crash-only, end to end: SIGKILLed bridges and indexers, restarted or replaced by a peer,
lose nothing; the index ends equal to the tables."""

from __future__ import annotations

import random
import threading
import time

from tests.e2e.faults import CrashPlan
from tests.e2e.harness import E2E
from tests.e2e.pipeline import Role
from tests.e2e.workload import KeyKind, Progress, run_workload

ALL_KINDS = [KeyKind.S, KeyKind.S_N, KeyKind.N]


def test_clean_run_of_both_processes(e2e: E2E) -> None:
    """The baseline the fault tests build on: no fault, every key kind, clean SIGTERM stops."""
    pipeline, ledgers = e2e.make(ALL_KINDS)
    pipeline.start_all()
    writers = e2e.writers(ledgers, 150)
    started = time.monotonic()
    run_workload(writers, Progress(1500))
    written_s = time.monotonic() - started
    waited = e2e.wait(pipeline, ledgers, 90)
    print(f"1500 changes written in {written_s:.1f}s, index equal {waited:.1f}s later")
    assert pipeline.stop_all() == {"bridge-1": 0, "indexer-1": 0}
    e2e.check(pipeline, ledgers)


def test_sigkill_bridge_and_indexer_three_times_each_during_20000_changes(e2e: E2E) -> None:
    pipeline, ledgers = e2e.make(ALL_KINDS)
    pipeline.start_all()
    writers = e2e.writers(ledgers, 700)
    progress = Progress(20_000)
    plan = CrashPlan(e2e.seed, {Role.BRIDGE: 3, Role.INDEXER: 3})
    stop = threading.Event()
    chaos = threading.Thread(target=plan.run, args=(pipeline, progress, stop, 300), daemon=True)
    started = time.monotonic()
    chaos.start()
    try:
        run_workload(writers, progress)
    finally:
        stop.set()
    chaos.join(60)
    written_s = time.monotonic() - started
    assert sum(line.count("SIGKILL") for line in plan.events) == 6, plan.events
    waited = e2e.wait(pipeline, ledgers, 180)
    print(f"20000 changes written in {written_s:.1f}s, index equal {waited:.1f}s later")
    pipeline.stop_all()
    e2e.check(pipeline, ledgers)


def test_two_bridges_and_two_indexers_one_of_each_killed(e2e: E2E) -> None:
    """The survivors take over: the bridge the dead worker's leases once they expire, the
    indexer its partitions after the session timeout. No restart."""
    pipeline, ledgers = e2e.make(ALL_KINDS)
    pipeline.start_all(bridges=2, indexers=2)
    bridges = pipeline.running(Role.BRIDGE)
    indexers = pipeline.running(Role.INDEXER)
    writers = e2e.writers(ledgers, 300)
    progress = Progress(4_500)
    rng = random.Random(e2e.seed)
    kills = sorted(
        [(rng.uniform(0.2, 0.7), bridges), (rng.uniform(0.2, 0.7), indexers)], key=lambda k: k[0]
    )
    stop = threading.Event()
    killed: list[str] = []

    def chaos() -> None:
        for fraction, group in kills:
            while progress.fraction() < fraction and not stop.is_set():
                time.sleep(0.05)
            victim = rng.choice([p for p in group if p.running])
            victim.kill()
            killed.append(f"{victim.name} at {progress.fraction():.0%}")

    thread = threading.Thread(target=chaos, daemon=True)
    thread.start()
    try:
        run_workload(writers, progress, pace_per_s=250)
    finally:
        stop.set()
    thread.join(30)
    print("killed:", killed)
    assert len(killed) == 2, killed
    assert len(pipeline.running(Role.BRIDGE)) == 1
    assert len(pipeline.running(Role.INDEXER)) == 1
    e2e.wait(pipeline, ledgers, 120)
    assert set(pipeline.stop_all().values()) == {0}
    e2e.check(pipeline, ledgers)
