"""Both processes as real subprocesses on one per-test configuration, and their logs.

Every process a ``Pipeline`` starts is tracked until ``close()``, which ends it (SIGTERM, then
SIGKILL) whatever the test did, so no test leaves a bridge or an indexer behind.
"""

from __future__ import annotations

import contextlib
import enum
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import yaml
from confluent_kafka.admin import AdminClient  # noqa: TID251 - tests talk to the real broker

from bridge.contract import dlq_topic, topic_name
from consumers.indexer.documents import index_name
from tests.polling import wait_for

DYNABRIDGE = str(Path(sys.executable).parent / "dynabridge")
LOG_TAIL_LINES = 60


class Role(enum.Enum):
    BRIDGE = "bridge"
    INDEXER = "indexer"

    @property
    def argv(self) -> list[str]:
        return [self.value if self is Role.BRIDGE else "index", "run"]


@dataclass(frozen=True, slots=True)
class Names:
    """Everything a test owns on the shared servers, unique per test."""

    tables: tuple[str, ...]
    topic_prefix: str
    lease_table: str
    group: str
    index_prefix: str

    def topic(self, table: str) -> str:
        return topic_name(self.topic_prefix, table)

    def dlq(self, table: str) -> str:
        return dlq_topic(self.topic(table))

    def index(self, table: str) -> str:
        return index_name(self.index_prefix, table)


def _deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def base_config(names: Names, kafka: str, search_url: str, moto: str) -> dict[str, Any]:
    """Short leases and session timeouts, so that a crash costs seconds, not tens of them."""
    return {
        "aws": {"region": "us-east-1", "endpoint_url": moto},
        "kafka": {"bootstrap_servers": kafka, "topic_prefix": names.topic_prefix},
        "topics": {"partitions": 3, "replication_factor": 1},
        "bridge": {
            "tables": list(names.tables),
            "lease_table": names.lease_table,
            "lease_duration_s": 3.0,
            "lease_renew_interval_s": 0.75,
            "lease_take_interval_s": 1.0,
            "shard_sync_interval_s": 5.0,
            "idle_poll_min_s": 0.05,
            "idle_poll_max_s": 0.2,
            "shutdown_timeout_s": 10.0,
            # A 1000-record page of these items is ~2 MB of JSON, which a loaded moto can take
            # over the bridge's 20 s read timeout to serve (measured: 12-21 s); AWS caps a page
            # at 1 MB and serves it in milliseconds.
            "get_records_limit": 250,
        },
        "indexer": {
            "group_id": names.group,
            "session_timeout_ms": 6000,
            "batch_max_docs": 500,
            "linger_ms": 20,
            "retry_initial_backoff_s": 0.1,
            "retry_max_backoff_s": 2.0,
            "shutdown_timeout_s": 10.0,
        },
        "search": {
            "backend": "elasticsearch",
            "hosts": [search_url],
            "index_prefix": names.index_prefix,
            "index_settings": {"number_of_replicas": 0},
            "request_timeout_s": 10.0,
        },
        "metrics": {"port": 0},
        "logging": {"level": "INFO", "format": "text"},
    }


def _child_env() -> dict[str, str]:
    """Dummy AWS credentials; no inherited DYNABRIDGE_* variable may override the test's file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DYNABRIDGE_")}
    env.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        PYTHONUNBUFFERED="1",
    )
    return env


class Process:
    """One ``dynabridge bridge run`` or ``index run``; stdout and stderr go to its own log."""

    def __init__(self, role: Role, name: str, config: Path, log_path: Path) -> None:
        self.role = role
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("ab")
        env = _child_env()
        if role is Role.BRIDGE:
            env["DYNABRIDGE_BRIDGE__WORKER_ID"] = name
        self._popen = subprocess.Popen(
            [DYNABRIDGE, *role.argv, "--config", str(config)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        self.pid = self._popen.pid

    @property
    def running(self) -> bool:
        return self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    def kill(self) -> None:
        """SIGKILL: no flush, no checkpoint, no commit, no leave-group."""
        if self.running:
            self._popen.send_signal(signal.SIGKILL)
        self._popen.wait(30)
        self._log.close()

    def terminate(self, timeout_s: float = 30.0) -> int:
        """SIGTERM and wait for the clean stop; SIGKILL (and fail) if it does not come."""
        if self.running:
            self._popen.send_signal(signal.SIGTERM)
        try:
            code = self._popen.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"{self.name} did not stop within {timeout_s:.0f}s of SIGTERM"
            ) from None
        self._log.close()
        return code


class Pipeline:
    """One test's configuration file, its processes and their logs."""

    def __init__(
        self, workdir: Path, names: Names, config: dict[str, Any], search_url: str | None = None
    ) -> None:
        self.workdir = workdir
        self.names = names
        self.config = config
        self.search_url = search_url or config["search"]["hosts"][0]
        """The engine itself, for the test's own checks and clean-up (the processes may go
        through a proxy)."""
        self.config_path = workdir / "dynabridge.yaml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.started: list[Process] = []
        self._counts: dict[Role, int] = {Role.BRIDGE: 0, Role.INDEXER: 0}

    def operator_config(self, **overrides: Any) -> Path:
        """A config file for operator commands (verify, replay), e.g. the real search URL
        where the processes go through a proxy."""
        path = self.workdir / f"operator-{len(list(self.workdir.glob('operator-*')))}.yaml"
        path.write_text(yaml.safe_dump(_deep_merge(self.config, overrides), sort_keys=False))
        return path

    def start(self, role: Role) -> Process:
        self._counts[role] += 1
        name = f"{role.value}-{self._counts[role]}"
        process = Process(role, name, self.config_path, self.workdir / f"{name}.log")
        self.started.append(process)
        return process

    def start_all(self, bridges: int = 1, indexers: int = 1, timeout_s: float = 60) -> None:
        """Bridges first; indexers once the bridge created the topics (as a deployment would:
        a consumer subscribed to a missing topic only notices it at a metadata refresh)."""
        for _ in range(bridges):
            self.start(Role.BRIDGE)
        admin = AdminClient({"bootstrap.servers": self.config["kafka"]["bootstrap_servers"]})
        wanted = {self.names.topic(t) for t in self.names.tables}

        def created() -> bool:
            self.assert_alive()
            return wanted <= set(admin.list_topics(timeout=10).topics)

        wait_for(created, timeout_s, f"the bridge to create {sorted(wanted)}", every_s=0.2)
        for _ in range(indexers):
            self.start(Role.INDEXER)

    def running(self, role: Role) -> list[Process]:
        return [p for p in self.started if p.role is role and p.running]

    def assert_alive(self) -> None:
        """A process that exited by itself is a bug (crash-only: it says why in its log)."""
        dead = [p for p in self.started if p.returncode not in (None, 0, -signal.SIGKILL)]
        assert not dead, "exited on their own: " + ", ".join(
            f"{p.name} (exit {p.returncode}, log {p.log_path})" for p in dead
        )

    def stop_all(self, timeout_s: float = 30.0) -> dict[str, int]:
        """SIGTERM every running process; their exit codes (0 is a clean stop)."""
        return {p.name: p.terminate(timeout_s) for p in self.started if p.running}

    def close(self) -> None:
        for process in self.started:
            if process.running:
                with contextlib.suppress(AssertionError):
                    process.terminate(15)

    def log_report(self) -> str:
        parts = []
        for process in self.started:
            try:
                lines = process.log_path.read_text(errors="replace").splitlines()
            except FileNotFoundError:
                lines = []
            parts.append(
                f"----- {process.name} (pid {process.pid}, exit {process.returncode}) "
                f"{process.log_path}, last {LOG_TAIL_LINES} of {len(lines)} lines -----"
            )
            parts.extend(lines[-LOG_TAIL_LINES:])
        return "\n".join(parts)
