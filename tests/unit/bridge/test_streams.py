"""The Streams adapter's timeouts: a read timeout is the reader's TimedOutError, and bounded."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ReadTimeoutError  # noqa: TID251 - the error the adapter translates

from bridge.aws import STREAMS_ATTEMPTS, STREAMS_READ_TIMEOUT_S, aws_clients
from bridge.reader import TimedOutError
from bridge.runtime.settings import AwsSettings
from bridge.streams import DynamoStreams


class TimingOutClient:
    def get_records(self, **kwargs: Any) -> Any:
        raise ReadTimeoutError(endpoint_url="http://streams")


def test_a_read_timeout_becomes_timed_out_so_the_reader_shrinks_its_page() -> None:
    streams = DynamoStreams(TimingOutClient())  # type: ignore[arg-type]
    with pytest.raises(TimedOutError, match="GetRecords"):
        streams.records("iterator", 1000)


def test_streams_calls_time_out_sooner_than_lease_table_calls() -> None:
    dynamodb, streams = aws_clients(AwsSettings(endpoint_url="http://127.0.0.1:1"))
    config: Any = streams.meta.config  # botocore's Config sets its attributes dynamically
    assert config.read_timeout == STREAMS_READ_TIMEOUT_S
    assert config.retries["total_max_attempts"] == STREAMS_ATTEMPTS
    worst_s = STREAMS_ATTEMPTS * (config.connect_timeout + STREAMS_READ_TIMEOUT_S)
    assert worst_s < 60  # the default bridge.stall_timeout_s: a slow read never trips /healthz
    tables: Any = dynamodb.meta.config
    assert tables.read_timeout == 20  # unchanged for the lease table and Scans
