"""The DynamoDB Streams simulator for tests (docs/testing.md): one server per pytest session,
run as a subprocess beside the shared moto, and per-test tables that are always cleaned up.

    def test_rotation(sim_tables):
        table = sim_tables.moto_table("orders", shards=4, rotate_every_records=50)
        table.dynamodb.put_item(...)                  # boto3 client on the simulator's endpoint
        sim_tables.sim.records(table.name)            # the oracle: every record emitted

``STREAMSIM_ENDPOINT=http://127.0.0.1:5100`` reuses a running simulator instead (e.g. the one
``dynabridge dev up streams-sim`` starts), which must pass DynamoDB calls to the same moto.
The session's server does not adopt tables by itself (``--no-auto-manage``): a test says
which tables are simulated, with which settings.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3  # noqa: TID251 - tests build real clients
from botocore.config import Config  # noqa: TID251 - tests build real clients

from dynabridge.streamsim.client import SimClient, SimError
from tests.polling import wait_for

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodbstreams import DynamoDBStreamsClient

REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@dataclass
class StreamSimServer:
    """A running simulator: its endpoint, and the process when this session started it."""

    endpoint: str
    moto_endpoint: str
    process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    @property
    def client(self) -> SimClient:
        return SimClient(self.endpoint)

    def boto3_clients(
        self, region: str = REGION, *, attempts: int = 1, pool: int = 10
    ) -> tuple[DynamoDBClient, DynamoDBStreamsClient]:
        """``dynamodb`` and ``dynamodbstreams`` clients on the simulator's endpoint; by default
        without retries, so a test sees every error the simulator sends."""
        config = Config(
            retries={"total_max_attempts": attempts, "mode": "standard"},
            max_pool_connections=pool,
        )
        common: dict[str, Any] = {
            "endpoint_url": self.endpoint, "region_name": region, "config": config, **CREDENTIALS,
        }  # fmt: skip
        return boto3.client("dynamodb", **common), boto3.client("dynamodbstreams", **common)

    def moto_client(self, region: str = REGION) -> DynamoDBClient:
        """A ``dynamodb`` client on moto itself (not through the simulator)."""
        common: dict[str, Any] = {
            "endpoint_url": self.moto_endpoint, "region_name": region, **CREDENTIALS,
        }  # fmt: skip
        client: DynamoDBClient = boto3.client("dynamodb", **common)
        return client

    def stop(self) -> None:
        """End the process this session started, and remove its port file and log."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.log_path is not None:
            shutil.rmtree(self.log_path.parent, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def start_server(moto_endpoint: str, *extra: str) -> StreamSimServer:
    """A simulator subprocess on a free port, ready (``/_sim/health`` answers)."""
    workdir = Path(tempfile.mkdtemp(prefix="streamsim-"))
    port_file = workdir / "port"
    log_path = workdir / "streamsim.log"
    argv = [
        sys.executable, "-m", "dynabridge.streamsim", "--port", "0", "--port-file", str(port_file),
        "--moto-endpoint", moto_endpoint, "--no-auto-manage", "--log-level", "WARNING", *extra,
    ]  # fmt: skip
    with log_path.open("ab") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    server = StreamSimServer("", moto_endpoint, process, log_path)

    def ready() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the simulator exited {process.returncode}:\n{server.log_tail()}")
        text = port_file.read_text() if port_file.exists() else ""
        if not text.endswith("\n"):
            return False
        server.endpoint = f"http://127.0.0.1:{int(text)}"
        with contextlib.suppress(OSError, SimError):
            return bool(server.client.health()["status"] == "ok")
        return False

    wait_for(ready, 30, "the Streams simulator to answer", every_s=0.05)
    return server


def session_server(moto_endpoint: str) -> Iterator[StreamSimServer]:
    """The session's simulator (a reused one when ``STREAMSIM_ENDPOINT`` is set)."""
    reused = os.environ.get("STREAMSIM_ENDPOINT")
    if reused:
        yield StreamSimServer(reused, moto_endpoint)
        return
    server = start_server(moto_endpoint)
    try:
        yield server
    finally:
        server.stop()


@dataclass
class SimTable:
    """A table of one test: its name, the boto3 clients pointed at the simulator."""

    name: str
    stream_arn: str
    dynamodb: DynamoDBClient
    streams: DynamoDBStreamsClient


@dataclass
class SimTables:
    """Per-test tables on the session's simulator; ``cleanup()`` drops every one."""

    server: StreamSimServer
    moto_dynamodb: DynamoDBClient
    unique_name: Callable[[str], str]
    created: list[tuple[str, bool]] = field(default_factory=list)

    @property
    def sim(self) -> SimClient:
        return self.server.client

    def moto_table(
        self,
        prefix: str = "sim",
        *,
        key_schema: tuple[tuple[str, str], ...] = (("pk", "S"), ("sk", "N")),
        view_type: str = "NEW_AND_OLD_IMAGES",
        **stream: Any,
    ) -> SimTable:
        """A moto table (created directly in moto, with a stream) whose stream is simulated
        with the given settings (``shards=4, rotate_every_records=50``, ...)."""
        name = self.unique_name(prefix)
        kinds = ("HASH", "RANGE")
        request: dict[str, Any] = {
            "TableName": name,
            "KeySchema": [
                {"AttributeName": key, "KeyType": kinds[i]} for i, (key, _) in enumerate(key_schema)
            ],
            "AttributeDefinitions": [
                {"AttributeName": key, "AttributeType": kind} for key, kind in key_schema
            ],
            "BillingMode": "PAY_PER_REQUEST",
            "StreamSpecification": {"StreamEnabled": True, "StreamViewType": view_type},
        }
        self.moto_dynamodb.create_table(**request)
        self.created.append((name, True))
        answer = self.sim.simulate_moto_table(name, region=REGION, **stream)
        return self._table(name, answer)

    def synthetic_table(
        self,
        prefix: str = "syn",
        *,
        key_schema: tuple[tuple[str, str], ...] = (("pk", "S"),),
        generator: dict[str, Any] | None = None,
        backlog: dict[str, Any] | None = None,
        **stream: Any,
    ) -> SimTable:
        """A table that exists only in the simulator (its generator writes the changes)."""
        name = self.unique_name(prefix)
        answer = self.sim.create_synthetic_table(
            name, key_schema=key_schema, region=REGION, generator=generator, backlog=backlog,
            **stream,
        )  # fmt: skip
        self.created.append((name, False))
        return self._table(name, answer)

    def cleanup(self) -> None:
        for name, in_moto in self.created:
            self.sim.drop(name, missing_ok=True)
            if in_moto:
                with contextlib.suppress(self.moto_dynamodb.exceptions.ResourceNotFoundException):
                    self.moto_dynamodb.delete_table(TableName=name)

    def _table(self, name: str, answer: dict[str, Any]) -> SimTable:
        dynamodb, streams = self.server.boto3_clients()
        return SimTable(name, answer["latest_stream_arn"], dynamodb, streams)
