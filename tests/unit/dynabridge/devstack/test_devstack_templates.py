from __future__ import annotations

from pathlib import Path

import pytest

from dynabridge.devstack.config import SOURCE_ROOT, ConfigError
from dynabridge.devstack.templates import relocated_jvm_options, rendered

TEMPLATES = SOURCE_ROOT / "deploy" / "local"
SEARCH_VALUES = {
    "HOST": "127.0.0.1",
    "HTTP_PORT": 9200,
    "TRANSPORT_PORT": 9300,
    "DATA_DIR": "/run/es/data",
    "LOGS_DIR": "/run/es/logs",
}


def _properties(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def test_kafka_properties_use_exact_ports_and_a_static_quorum() -> None:
    text = (TEMPLATES / "kafka" / "server.properties.tmpl").read_text()
    values = {"HOST": "127.0.0.1", "BROKER_PORT": 9092, "CONTROLLER_PORT": 9093, "DATA_DIR": "/d"}
    props = _properties(rendered(text, values))
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:9092"
    assert props["controller.quorum.voters"] == "1@127.0.0.1:9093"
    assert props["log.dirs"] == "/d"
    # Java .properties has no inline comments: a "#" in a value would become part of it.
    assert not any("#" in value for value in props.values())


@pytest.mark.parametrize("name", ["elasticsearch/elasticsearch.yml", "opensearch/opensearch.yml"])
def test_search_configs_use_single_ports_and_single_node(name: str) -> None:
    import yaml

    settings = yaml.safe_load(rendered((TEMPLATES / f"{name}.tmpl").read_text(), SEARCH_VALUES))
    assert settings["http.port"] == 9200
    assert settings["transport.port"] == 9300
    assert settings["discovery.type"] == "single-node"
    assert settings["network.host"] == "127.0.0.1"
    assert settings["path.data"] == "/run/es/data"
    assert "cluster.initial_master_nodes" not in settings


def test_elasticsearch_security_is_explicitly_off() -> None:
    import yaml

    text = (TEMPLATES / "elasticsearch" / "elasticsearch.yml.tmpl").read_text()
    assert yaml.safe_load(rendered(text, SEARCH_VALUES))["xpack.security.enabled"] is False


def test_a_missing_placeholder_value_is_named() -> None:
    with pytest.raises(ConfigError, match=r"kafka.tmpl: no value for placeholder \$\{DATA_DIR\}"):
        rendered("log.dirs=${DATA_DIR}\n", {}, "kafka.tmpl")


def test_jvm_options_relative_paths_move_into_the_state_dir() -> None:
    text = "\n".join(
        [
            "-XX:HeapDumpPath=data",
            "-XX:ErrorFile=logs/hs_err_pid%p.log",
            "8:-Xloggc:logs/gc.log",
            "9-:-Xlog:gc*,gc+age=trace,safepoint:file=logs/gc.log:utctime,pid,tags:filecount=32",
            "-Djava.io.tmpdir=${OPENSEARCH_TMPDIR}",
        ]
    )
    assert relocated_jvm_options(text, Path("/s")).splitlines() == [
        "-XX:HeapDumpPath=/s/data",
        "-XX:ErrorFile=/s/logs/hs_err_pid%p.log",
        "8:-Xloggc:/s/logs/gc.log",
        "9-:-Xlog:gc*,gc+age=trace,safepoint:file=/s/logs/gc.log:utctime,pid,tags:filecount=32",
        "-Djava.io.tmpdir=${OPENSEARCH_TMPDIR}",
    ]
