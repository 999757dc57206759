"""The two processes load their own code and the shared runtime, never the operator commands,
the dev stack or the demo (``python -X importtime`` of the real commands, run until ready).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from bridge.contract import topic_name
from tests.integration.indexer.indexer_harness import create_topic, delete_topics
from tests.polling import wait_for
from tests.tables import create_pk_sk_table

AWS_TEST_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
TOOLS = ("dynabridge.devstack", "dynabridge.demo", "dynabridge.operations")
_IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)\s*$", re.M)


def _run_until_ready(command: list[str], config: dict[str, Any], tmp_path: Path, ready: str) -> str:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    log = tmp_path / "process.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-X", "importtime", "-c",
             "import sys; from dynabridge.cli import main; sys.exit(main())",
             *command, "--config", str(path)],
            stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **AWS_TEST_ENV},
        )  # fmt: skip
        try:
            wait_for(lambda: ready in log.read_text() or process.poll() is not None, 90, ready)
            assert process.poll() is None, log.read_text()[-3000:]
            process.send_signal(signal.SIGTERM)
            assert process.wait(60) == 0, log.read_text()[-3000:]
        finally:
            if process.poll() is None:
                process.kill()
    return log.read_text()


def _modules(output: str) -> set[str]:
    return set(_IMPORTED.findall(output))


def _config(kafka: str, moto: str, table: str, es_url: str) -> dict[str, Any]:
    return {
        "aws": {"endpoint_url": moto},
        "kafka": {"bootstrap_servers": kafka, "topic_prefix": "imports."},
        "topics": {"partitions": 1},
        "bridge": {"tables": [table], "lease_table": f"{table}-leases"},
        "indexer": {"group_id": f"{table}-group", "session_timeout_ms": 6000},
        "search": {"hosts": [es_url], "index_prefix": "imports-"},
        "metrics": {"port": 0},
        "logging": {"format": "text"},
    }


@pytest.mark.parametrize(
    ("command", "ready", "own"),
    [
        (["bridge", "run"], "reading 1 table(s)", "bridge.worker"),
        (["index", "run"], "indexing imports.", "consumers.indexer.worker"),
    ],
)
def test_a_process_loads_none_of_the_tools(
    command: list[str],
    ready: str,
    own: str,
    kafka_bootstrap: str,
    moto_endpoint: str,
    es_url: str,
    dynamodb: Any,
    tmp_path: Path,
    unique_name: Callable[[str], str],
) -> None:
    table = unique_name("imports")
    create_pk_sk_table(dynamodb, table)
    topic = topic_name("imports.", table)
    create_topic(kafka_bootstrap, topic, 1)
    try:
        output = _run_until_ready(
            command, _config(kafka_bootstrap, moto_endpoint, table, es_url), tmp_path, ready
        )
    finally:
        delete_topics(kafka_bootstrap, [topic, topic + ".dlq"])
        dynamodb.delete_table(TableName=table)
    loaded = _modules(output)
    assert own in loaded, "the premise: -X importtime lists the process's own modules"
    assert sorted(m for m in loaded if m.startswith(TOOLS)) == []
