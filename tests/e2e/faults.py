"""Faults the e2e tests inject: SIGKILL at seeded random moments, a test-owned Kafka broker to
restart, and a TCP proxy to cut in front of the shared search engine.

Only what a test started is ever stopped: the shared servers are never touched.
"""

from __future__ import annotations

import random
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from dynabridge.devstack import readiness
from dynabridge.devstack import stack as devstack
from dynabridge.devstack.config import StackConfig
from tests.e2e.pipeline import Pipeline, Process, Role
from tests.e2e.workload import Progress
from tests.integration.indexer.proxy import TcpProxy

__all__ = ["Crash", "CrashPlan", "DedicatedKafka", "TcpProxy", "free_ports"]


@dataclass(frozen=True, slots=True)
class Crash:
    at_fraction: float
    """Of the workload written, when the SIGKILL comes."""
    role: Role
    restart_after_s: float


@dataclass
class CrashPlan:
    """SIGKILL ``counts[role]`` processes at seeded random moments of the workload, restarting
    each one after a short random pause; a log of what happened, for the report."""

    seed: int
    counts: dict[Role, int]
    span: tuple[float, float] = (0.05, 0.95)
    events: list[str] = field(default_factory=list)

    def crashes(self) -> list[Crash]:
        rng = random.Random(self.seed)
        planned = [
            Crash(rng.uniform(*self.span), role, rng.uniform(0.0, 1.5))
            for role, count in self.counts.items()
            for _ in range(count)
        ]
        return sorted(planned, key=lambda crash: crash.at_fraction)

    def run(
        self, pipeline: Pipeline, progress: Progress, stop: threading.Event, timeout_s: float
    ) -> None:
        """Blocking: follows ``progress`` and kills as planned (a thread's target)."""
        started = time.monotonic()
        rng = random.Random(self.seed + 1)
        for crash in self.crashes():
            while progress.fraction() < crash.at_fraction:
                if stop.is_set() or time.monotonic() - started > timeout_s:
                    return
                time.sleep(0.05)
            victims = pipeline.running(crash.role)
            if not victims:
                self.events.append(
                    f"no running {crash.role.value} to kill at {crash.at_fraction:.2f}"
                )
                continue
            victim: Process = rng.choice(victims)
            victim.kill()
            self._log(
                started, f"SIGKILL {victim.name} at {progress.fraction():.0%} of the workload"
            )
            time.sleep(crash.restart_after_s)
            fresh = pipeline.start(crash.role)
            self._log(started, f"started {fresh.name}")

    def _log(self, started: float, what: str) -> None:
        line = f"[{time.monotonic() - started:6.1f}s] {what}"
        self.events.append(line)
        print(line, file=sys.stderr)


def free_ports(count: int) -> list[int]:
    """Ports the kernel says are free now (held together, so they are distinct)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for sock in sockets:
            sock.close()


class DedicatedKafka:
    """A single-node KRaft broker of the test's own, on free ports with its own run dir: the
    devstack's service spec and start/stop functions, reused with another configuration."""

    def __init__(self, shared: StackConfig, run_dir: Path, heap_mb: int = 384) -> None:
        broker, controller = free_ports(2)
        self.config = replace(
            shared,
            kafka_port=broker,
            kafka_controller_port=controller,
            run_dir=run_dir,
            heap_mb=heap_mb,
            start_timeout_s=120,
        )
        self.events: list[str] = []

    @property
    def bootstrap(self) -> str:
        return self.config.kafka_bootstrap

    @property
    def log_path(self) -> Path:
        return self.config.state_dir / "kafka" / "kafka.log"

    def start(self) -> float:
        started = time.monotonic()
        devstack.up(self.config, ["kafka"], self.events.append)
        return time.monotonic() - started

    def stop(self) -> float:
        started = time.monotonic()
        devstack.down(self.config, ["kafka"], self.events.append)
        return time.monotonic() - started

    def ready(self) -> bool:
        return readiness.kafka_ready(self.bootstrap)


def after(condition: Callable[[], bool], timeout_s: float, every_s: float = 0.05) -> bool:
    """Wait for ``condition`` (a fault's trigger); False at the deadline."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(every_s)
    return True
