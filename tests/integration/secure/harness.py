"""Both processes and the operator commands against the secure profile, as a user runs them:
the configuration ``dynabridge dev config --secure`` prints, the secrets in the environment,
every byte they print kept, so a test can search it for the secrets."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from confluent_kafka.admin import AdminClient  # noqa: TID251 - tests clean up their topics

from bridge.contract import dlq_topic, topic_name
from consumers.indexer.documents import index_name
from dynabridge.devstack import client_config
from dynabridge.devstack import secure as profile
from dynabridge.devstack.client_config import KafkaAuth, SearchAuth
from dynabridge.devstack.config import StackConfig
from tests.polling import wait_for

DYNABRIDGE = str(Path(sys.executable).parent / "dynabridge")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def secret_strings(value: profile.Secrets) -> list[str]:
    """Every secret of the profile, and the API key's two halves."""
    found = [value.kafka_password, value.es_password, value.opensearch_password]
    if value.es_api_key:
        found.append(value.es_api_key)
    return found


@dataclass
class SecureRun:
    """One test's configuration on the secure profile and everything its programs printed."""

    config: StackConfig
    workdir: Path
    kafka: KafkaAuth
    search: SearchAuth
    table: str
    prefix: str
    overrides: dict[str, Any] = field(default_factory=dict)
    env_overrides: dict[str, str] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    processes: list[tuple[str, subprocess.Popen[bytes], Path]] = field(default_factory=list)

    def __post_init__(self) -> None:
        secrets = profile.load_secrets(self.config)
        assert secrets is not None, "the secure profile has no secrets: is it up?"
        self.secrets = secrets
        content = client_config.settings(
            self.config, profile.tls(self.config), secrets, self.kafka, self.search, (self.table,)
        )
        content["kafka"]["topic_prefix"] = self.prefix
        content["bridge"] |= {
            "lease_table": f"{self.prefix}leases",
            "lease_duration_s": 3.0,
            "lease_renew_interval_s": 0.75,
            "lease_take_interval_s": 1.0,
            "idle_poll_max_s": 0.2,
        }
        content["indexer"] = {"group_id": f"{self.prefix}indexer", "session_timeout_ms": 6000}
        content["topics"] = {"partitions": 2}
        content["search"] |= {
            "index_prefix": self.prefix.replace(".", "-"),
            "index_settings": {"number_of_replicas": 0},
            "request_timeout_s": 10.0,
        }
        content["logging"] = {"level": "INFO", "format": "text"}
        for section, values in self.overrides.items():
            content.setdefault(section, {}).update(values)
        self.content = content
        self.path = self.workdir / f"{self.prefix}yaml"
        self.path.write_text(yaml.safe_dump(content, sort_keys=False))
        assert not any(s in self.path.read_text() for s in secret_strings(secrets))

    @property
    def index(self) -> str:
        return index_name(self.content["search"]["index_prefix"], self.table)

    @property
    def topic(self) -> str:
        return topic_name(self.prefix, self.table)

    def env(self, metrics_port: int = 0) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DYNABRIDGE_")}
        env |= client_config.environment(self.secrets, self.kafka, self.search)
        env |= {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PYTHONUNBUFFERED": "1",
            "DYNABRIDGE_METRICS__PORT": str(metrics_port),
        }
        return env | self.env_overrides

    def start(self, role: str) -> tuple[subprocess.Popen[bytes], int]:
        """``bridge run`` or ``index run``; its metrics port."""
        port = free_port()
        log = self.workdir / f"{role}-{len(self.processes)}.log"
        argv = [DYNABRIDGE, role, "run", "--config", str(self.path)]
        with log.open("wb") as out:
            popen = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=self.env(port),
            )  # fmt: skip
        self.processes.append((role, popen, log))
        return popen, port

    def run(self, *args: str, timeout_s: float = 180) -> subprocess.CompletedProcess[str]:
        """An operator command; its output is kept."""
        done = subprocess.run(
            [DYNABRIDGE, *args, "--config", str(self.path)],
            capture_output=True, text=True, timeout=timeout_s, env=self.env(), check=False,
        )  # fmt: skip
        self.outputs.append(f"$ dynabridge {' '.join(args)}\n{done.stdout}{done.stderr}")
        return done

    def metrics(self, port: int) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
            text = str(answer.read().decode())
        self.outputs.append(text)
        return text

    def wait_exit(self, popen: subprocess.Popen[bytes], timeout_s: float) -> int:
        wait_for(lambda: popen.poll() is not None, timeout_s, "the process to exit", every_s=0.5)
        return int(popen.returncode)

    def stop_all(self) -> dict[str, int]:
        codes = {}
        for role, popen, _ in self.processes:
            if popen.poll() is None:
                popen.send_signal(signal.SIGTERM)
                try:
                    popen.wait(30)
                except subprocess.TimeoutExpired:
                    popen.kill()
                    popen.wait(10)
            codes[role] = int(popen.returncode)
        return codes

    def printed(self) -> str:
        """Everything every program of this run printed."""
        logs = [log.read_text(errors="replace") for _, _, log in self.processes if log.exists()]
        return "\n".join([*logs, *self.outputs])

    def log_of(self, popen: subprocess.Popen[bytes]) -> str:
        for _, candidate, log in self.processes:
            if candidate is popen:
                return log.read_text(errors="replace")
        raise KeyError(popen.pid)

    def drop_topics(self) -> None:
        security = (
            profile.kafka_sasl_security(self.config, self.secrets)
            if self.kafka is KafkaAuth.SASL
            else profile.kafka_mtls_security(self.config)
        )
        admin = AdminClient(
            {"bootstrap.servers": self.content["kafka"]["bootstrap_servers"], **security}
        )
        topics = [self.topic, dlq_topic(self.topic)]
        for future in admin.delete_topics(topics, operation_timeout=10).values():
            with contextlib.suppress(Exception):
                future.result(timeout=30)
