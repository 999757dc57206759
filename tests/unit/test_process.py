"""The frame both processes run in: exit codes, one CRITICAL line on a fatal error."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import main
from bridge.health import Heartbeat
from bridge.metrics import BridgeMetrics
from bridge.process import EXIT_CONFIG, EXIT_FATAL, EXIT_OK, run_process
from bridge.settings import ConfigError, MetricsSettings, Settings

QUIET = Settings(metrics=MetricsSettings(port=0))


def _run(work: Callable[[threading.Event], object]) -> int:
    stop = threading.Event()
    return run_process(
        "bridge",
        QUIET,
        BridgeMetrics().registry,
        Heartbeat(60),
        work,
        stop,
    )


def test_a_clean_stop_exits_0() -> None:
    seen: list[threading.Event] = []
    assert _run(seen.append) == EXIT_OK
    assert len(seen) == 1


def test_a_configuration_problem_exits_2(caplog: pytest.LogCaptureFixture) -> None:
    def work(stop: threading.Event) -> None:
        raise ConfigError("bridge.tables: table t has no stream")

    assert _run(work) == EXIT_CONFIG
    assert "bridge cannot start: bridge.tables: table t has no stream" in caplog.text


def test_any_other_error_exits_1_with_one_critical_line(caplog: pytest.LogCaptureFixture) -> None:
    def work(stop: threading.Event) -> None:
        raise RuntimeError("lease table gone")

    with caplog.at_level(logging.INFO):
        assert _run(work) == EXIT_FATAL
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
    assert result.exit_code == EXIT_CONFIG
    assert "bridge.tablez: unknown key" in result.output


@pytest.mark.parametrize(
    ("command", "key"), [(["bridge", "run"], "bridge.tables"), (["index", "run"], "indexer.tables")]
)
def test_no_table_is_refused_naming_the_key(command: list[str], key: str, tmp_path: Path) -> None:
    config = tmp_path / "empty.yaml"
    config.write_text("logging:\n  format: text\n")
    result = CliRunner().invoke(main, [*command, "--config", str(config)])
    assert result.exit_code == EXIT_CONFIG
    assert f"{key} is empty" in result.output
