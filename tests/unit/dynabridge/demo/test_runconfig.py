"""A demo run's config file: valid for both processes, every name derived from the table."""

from __future__ import annotations

from pathlib import Path

from bridge.runtime.settings import SearchBackend
from dynabridge.demo.runconfig import Endpoints, RunNames, config_data, write_config

ENDS = Endpoints("127.0.0.1:9092", "http://127.0.0.1:9201", "http://127.0.0.1:5000",
                 SearchBackend.OPENSEARCH)  # fmt: skip


def test_the_file_loads_back_with_the_run_names_and_endpoints(tmp_path: Path) -> None:
    names = RunNames("demo-1a2b3c4d")
    settings = write_config(tmp_path / "run" / "dynabridge.yaml", config_data(names, ENDS, 0))
    assert settings.bridge.tables == ["demo-1a2b3c4d"]
    assert settings.indexer_tables() == ["demo-1a2b3c4d"]
    assert settings.bridge.lease_table == "demo-1a2b3c4d-leases"
    assert settings.indexer.group_id == "dynabridge-demo-demo-1a2b3c4d"
    assert settings.kafka.topic_prefix + names.table == names.topic
    assert settings.aws.endpoint_url == "http://127.0.0.1:5000"
    assert settings.search.backend is SearchBackend.OPENSEARCH
    assert settings.search.hosts == ["http://127.0.0.1:9201"]
    assert settings.metrics.port == 0  # each child gets its own port by environment


def test_overrides_replace_single_keys_of_a_section(tmp_path: Path) -> None:
    data = config_data(RunNames("t"), ENDS, 0, {"bridge": {"idle_poll_max_s": 0.3}})
    settings = write_config(tmp_path / "c.yaml", data)
    assert settings.bridge.idle_poll_max_s == 0.3
    assert settings.bridge.idle_poll_min_s == 0.02
    assert settings.bridge.tables == ["t"]
