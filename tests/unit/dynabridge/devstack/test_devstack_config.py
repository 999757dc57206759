from __future__ import annotations

from pathlib import Path

import pytest

from dynabridge.devstack.config import SOURCE_ROOT, ConfigError, StackConfig, env_var, load


def test_defaults_are_the_documented_ports_and_paths() -> None:
    config = load({})
    assert (config.kafka_bootstrap, config.es_url, config.opensearch_url, config.moto_endpoint) == (
        "127.0.0.1:9092",
        "http://127.0.0.1:9200",
        "http://127.0.0.1:9201",
        "http://127.0.0.1:5000",
    )
    assert config.artifacts_dir == SOURCE_ROOT / ".cache"
    assert config.state_dir == SOURCE_ROOT / ".cache" / "run"


def test_environment_overrides_defaults_and_flags_override_environment() -> None:
    environ = {
        "DYNABRIDGE_DEV_KAFKA_PORT": "19092",
        "DYNABRIDGE_DEV_ES_VERSION": "9.9.9",
        "DYNABRIDGE_DEV_CACHE_DIR": "/var/tmp/c",
    }
    config = load(environ, {"kafka_port": 29092, "moto_port": None})
    assert config.kafka_port == 29092
    assert config.moto_port == StackConfig().moto_port
    assert config.es_version == "9.9.9"
    assert config.state_dir == Path("/var/tmp/c/run")


def test_a_non_numeric_port_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="DYNABRIDGE_DEV_ES_PORT='x'"):
        load({"DYNABRIDGE_DEV_ES_PORT": "x"})


def test_two_services_on_one_port_is_refused() -> None:
    with pytest.raises(ConfigError, match="opensearch_port and es_port are both set to port 9200"):
        load({}, {"opensearch_port": 9200})


def test_out_of_range_port_is_refused() -> None:
    with pytest.raises(ConfigError, match="moto_port"):
        load({}, {"moto_port": 70000})


def test_env_var_names() -> None:
    assert env_var("kafka_port") == "DYNABRIDGE_DEV_KAFKA_PORT"
