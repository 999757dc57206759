"""The Streams client's timeouts are bounded below the stall timeout (a read timeout becoming
the reader's TimedOutError is tested over HTTP in test_streams_wire.py)."""

from __future__ import annotations

from typing import Any

from bridge.aws import STREAMS_ATTEMPTS, STREAMS_READ_TIMEOUT_S, aws_clients
from bridge.runtime.settings import AwsSettings


def test_streams_calls_time_out_sooner_than_lease_table_calls() -> None:
    dynamodb, streams = aws_clients(AwsSettings(endpoint_url="http://127.0.0.1:1"))
    config: Any = streams.meta.config  # botocore's Config sets its attributes dynamically
    assert config.read_timeout == STREAMS_READ_TIMEOUT_S
    assert config.retries["total_max_attempts"] == STREAMS_ATTEMPTS
    worst_s = STREAMS_ATTEMPTS * (config.connect_timeout + STREAMS_READ_TIMEOUT_S)
    assert worst_s < 60  # the default bridge.stall_timeout_s: a slow read never trips /healthz
    tables: Any = dynamodb.meta.config
    assert tables.read_timeout == 20  # unchanged for the lease table and Scans
