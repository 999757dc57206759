"""A run's names and its configuration file: one YAML both processes and ``verify`` read.

Every name derives from the table, so a second run with ``--table T`` resumes the first one's
leases, consumer group, topic and index instead of starting a parallel pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bridge.runtime.settings import SearchBackend, Settings, load_settings

TOPIC_PREFIX = "demo."
PARTITIONS = 3


@dataclass(frozen=True, slots=True)
class RunNames:
    table: str

    @property
    def lease_table(self) -> str:
        return f"{self.table}-leases"

    @property
    def group(self) -> str:
        return f"dynabridge-demo-{self.table}"

    @property
    def topic(self) -> str:
        return TOPIC_PREFIX + self.table


@dataclass(frozen=True, slots=True)
class Endpoints:
    kafka: str
    search: str
    moto: str
    backend: SearchBackend


def config_data(
    names: RunNames,
    endpoints: Endpoints,
    health_port: int,
    overrides: dict[str, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The configuration tree; ``metrics.port`` is overridden per process by environment."""
    data: dict[str, dict[str, Any]] = {
        "aws": {"region": "us-east-1", "endpoint_url": endpoints.moto},
        "kafka": {"bootstrap_servers": endpoints.kafka, "topic_prefix": TOPIC_PREFIX},
        "topics": {"partitions": PARTITIONS, "replication_factor": 1},
        "bridge": {
            "tables": [names.table],
            "lease_table": names.lease_table,
            "start_position": "trim_horizon",
            # Seconds matter in a demo: poll an idle shard often (moto is local and free).
            "idle_poll_min_s": 0.02,
            "idle_poll_max_s": 0.1,
        },
        "indexer": {"group_id": names.group, "linger_ms": 20},
        "search": {"backend": endpoints.backend.value, "hosts": [endpoints.search]},
        "metrics": {"host": "127.0.0.1", "port": health_port},
        "logging": {"level": "INFO", "format": "text"},
    }
    for section, values in (overrides or {}).items():
        data.setdefault(section, {}).update(values)
    return data


def write_config(path: Path, data: dict[str, Any]) -> Settings:
    """Write the file and load it back: the processes will read exactly what was validated."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Written by `dynabridge demo`; run the processes by hand with --config THIS_FILE.\n"
    path.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return load_settings(path)
