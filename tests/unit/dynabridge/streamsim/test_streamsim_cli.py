"""``dynabridge dev streams-sim`` refuses bad settings before it listens on anything."""

from __future__ import annotations

from click.testing import CliRunner

from dynabridge.cli import main


def test_an_unknown_stream_setting_is_named() -> None:
    result = CliRunner().invoke(main, ["dev", "streams-sim", "--stream", "shard=4"])
    assert result.exit_code == 2
    assert "unknown stream setting 'shard'" in result.output


def test_a_setting_that_is_not_key_value_is_refused() -> None:
    result = CliRunner().invoke(main, ["dev", "streams-sim", "--stream", "shards"])
    assert result.exit_code == 2
    assert "is not KEY=VALUE" in result.output


def test_help_names_the_control_api() -> None:
    result = CliRunner().invoke(main, ["dev", "streams-sim", "--help"])
    assert result.exit_code == 0
    assert "/_sim/" in result.output
