"""docker-compose.yml is a valid Compose file, offers the same stack as `dynabridge dev up`, and
runs the pipeline (bridge, indexer: one image from deploy/Dockerfile) behind profile `pipeline`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from dynabridge.devstack.config import StackConfig

ROOT = Path(__file__).resolve().parents[2]
STACK = ("kafka", "elasticsearch", "opensearch", "moto")
PIPELINE = ("bridge", "indexer")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_compose_file_matches_the_compose_spec_schema(compose: dict[str, Any]) -> None:
    schema = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
    # The file's "$schema" spells the 2019-09 draft URL in a form jsonschema does not resolve.
    jsonschema.Draft201909Validator.check_schema(schema)
    validator = jsonschema.Draft201909Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    assert [f"{list(e.path)}: {e.message}" for e in errors] == []


def test_the_schema_rejects_a_broken_compose_file() -> None:
    schema = json.loads((ROOT / "tests" / "data" / "compose-spec.json").read_text())
    broken = {"services": {"kafka": {"image": "apache/kafka", "ports": {"not": "a list"}}}}
    assert not jsonschema.Draft201909Validator(schema).is_valid(broken)


def test_compose_offers_the_local_stack_ports_and_versions(compose: dict[str, Any]) -> None:
    defaults = StackConfig()
    services = {name: svc for name, svc in compose["services"].items() if name in STACK}
    host_ports = {
        name: [int(p.split(":")[1]) for p in svc["ports"]] for name, svc in services.items()
    }
    assert host_ports == {
        "kafka": [defaults.kafka_port],
        "elasticsearch": [defaults.es_port],
        "opensearch": [defaults.opensearch_port],
        "moto": [defaults.moto_port],
    }
    assert services["kafka"]["image"].endswith(f":{defaults.kafka_version}")
    assert services["elasticsearch"]["image"].endswith(f":{defaults.es_version}")
    assert services["opensearch"]["image"].endswith(f":{defaults.opensearch_version}")
    assert all("healthcheck" in svc for svc in services.values())
    assert services["opensearch"]["profiles"] == ["opensearch"]
    assert all("profiles" not in svc for name, svc in services.items() if name != "opensearch")


def test_the_pipeline_services_build_one_image_and_check_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in (*PIPELINE, "setup"):
        svc = services[name]
        assert svc["build"] == {"context": ".", "dockerfile": "deploy/Dockerfile"}, name
        assert svc["profiles"] == ["pipeline"], name
    assert (ROOT / "deploy" / "Dockerfile").is_file()
    assert len({services[name]["image"] for name in (*PIPELINE, "setup")}) == 1
    for name in PIPELINE:
        svc = services[name]
        test = svc["healthcheck"]["test"]
        assert test[0] == "CMD", name
        assert "/healthz" in " ".join(test), name
        assert "curl" not in " ".join(test), f"{name}: the slim image has no curl"
        assert svc["command"][:2] == (["bridge", "run"] if name == "bridge" else ["index", "run"])
        assert svc["depends_on"]["kafka"] == {"condition": "service_healthy"}, name
        assert all(dep["condition"] != "service_started" for dep in svc["depends_on"].values())
        # Configured by environment over the mounted example config, pointing at the services.
        config = svc["command"][svc["command"].index("--config") + 1]
        assert any(
            v.startswith("./deploy/") and v.endswith(f":{config}:ro") for v in svc["volumes"]
        )
        env = svc["environment"]
        assert env["DYNABRIDGE_KAFKA__BOOTSTRAP_SERVERS"] == "kafka:19092"
        assert env["DYNABRIDGE_AWS__ENDPOINT_URL"] == "http://moto:5000"
    assert services["bridge"]["depends_on"]["setup"] == {
        "condition": "service_completed_successfully"
    }
    assert services["indexer"]["depends_on"]["elasticsearch"] == {"condition": "service_healthy"}
    # Containers reach Kafka on its internal listener, advertised under the service name.
    kafka_env = services["kafka"]["environment"]
    assert "INTERNAL://kafka:19092" in kafka_env["KAFKA_ADVERTISED_LISTENERS"]
    assert "INTERNAL://:19092" in kafka_env["KAFKA_LISTENERS"]


def test_the_mounted_config_is_valid_with_the_compose_overrides(
    compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from bridge.runtime.settings import load_settings

    for key, value in compose["services"]["bridge"]["environment"].items():
        if key.startswith("DYNABRIDGE_"):
            monkeypatch.setenv(key, str(value))
    settings = load_settings(ROOT / "deploy" / "dynabridge.example.yaml")
    assert settings.kafka.bootstrap_servers == "kafka:19092"
    assert settings.search.hosts == ["http://elasticsearch:9200"]
    assert settings.metrics.port == 9108  # what the health checks ask
