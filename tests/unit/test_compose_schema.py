"""docker-compose.yml is a valid Compose file and offers the same stack as `dynabridge dev up`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from bridge.devstack.config import StackConfig

ROOT = Path(__file__).resolve().parents[2]


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
    services = compose["services"]
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
