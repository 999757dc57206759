"""The frame both processes run in: exit codes, one CRITICAL line on a fatal error."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.metrics import BridgeMetrics
from bridge.runtime.exits import ExitCode
from bridge.runtime.health import Heartbeat
from bridge.runtime.process import run_process
from bridge.runtime.settings import ConfigError, MetricsSettings, Settings
from dynabridge.cli import main

QUIET = Settings(metrics=MetricsSettings(port=0))


def _run(work: Callable[[threading.Event], object], settings: Settings = QUIET) -> int:
    stop = threading.Event()
    return run_process(
        "bridge",
        settings,
        BridgeMetrics().registry,
        Heartbeat(60),
        work,
        stop,
    )


def test_a_clean_stop_exits_0() -> None:
    seen: list[threading.Event] = []
    assert _run(seen.append) == ExitCode.OK
    assert len(seen) == 1


def test_a_configuration_problem_exits_2(caplog: pytest.LogCaptureFixture) -> None:
    def work(stop: threading.Event) -> None:
        raise ConfigError("bridge.tables: table t has no stream")

    assert _run(work) == ExitCode.CONFIG
    assert "bridge cannot start: bridge.tables: table t has no stream" in caplog.text


def test_any_other_error_exits_1_with_one_critical_line(caplog: pytest.LogCaptureFixture) -> None:
    def work(stop: threading.Event) -> None:
        raise RuntimeError("lease table gone")

    with caplog.at_level(logging.INFO):
        assert _run(work) == ExitCode.FATAL
    critical = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert [r.getMessage() for r in critical] == [
        "bridge stopped on a fatal error: RuntimeError: lease table gone"
    ]


@pytest.mark.parametrize("command", [["bridge", "run"], ["index", "run"]])
def test_bad_configuration_is_refused_before_anything_starts(
    command: list[str], tmp_path: Path
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("bridge:\n  tablez: [orders]\n")
    result = CliRunner().invoke(main, [*command, "--config", str(config)])
    assert result.exit_code == ExitCode.CONFIG
    assert "bridge.tablez: unknown key" in result.output


@pytest.mark.parametrize(
    ("command", "key"), [(["bridge", "run"], "bridge.tables"), (["index", "run"], "indexer.tables")]
)
def test_no_table_is_refused_naming_the_key(command: list[str], key: str, tmp_path: Path) -> None:
    config = tmp_path / "empty.yaml"
    config.write_text("logging:\n  format: text\n")
    result = CliRunner().invoke(main, [*command, "--config", str(config)])
    assert result.exit_code == ExitCode.CONFIG
    assert f"{key} is empty" in result.output


def test_each_process_has_its_own_default_metrics_port() -> None:
    defaults = MetricsSettings()
    assert defaults.port_of("bridge") == 9108
    assert defaults.port_of("indexer") == 9109
    assert MetricsSettings(port=0).port_of("indexer") == 0


def test_a_taken_metrics_port_exits_2_naming_the_key_port_and_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        taken = Settings(metrics=MetricsSettings(host="127.0.0.1", port=port))
        ran: list[threading.Event] = []
        assert _run(ran.append, taken) == ExitCode.CONFIG
    assert ran == [], "the work must not start without its health endpoint"
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL]
    assert f"metrics.port {port}" in line
    assert "bridge" in line
