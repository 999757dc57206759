"""Each security example of docs/configuration.md, loaded exactly as written: it validates, and
it configures the client the way the text says (secrets only from the environment)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from bridge.runtime.settings import Settings, load_settings
from consumers.search.client import basic_auth

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def _example(name: str) -> str:
    found = re.search(
        rf"<!-- example: {re.escape(name)} -->\n```yaml\n(.*?)```", DOC.read_text(), re.S
    )
    assert found, f"docs/configuration.md has no example {name!r}"
    return found.group(1)


def _load(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> Settings:
    for variable in [v for v in __import__("os").environ if v.startswith("DYNABRIDGE_")]:
        monkeypatch.delenv(variable)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    text = _example(name)
    for secret in env.values():
        assert secret not in text
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return load_settings(path)


def test_kafka_sasl_scram(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _load(
        "kafka-sasl-scram", tmp_path, monkeypatch, DYNABRIDGE_KAFKA__SASL_PASSWORD="s3cr3t-sasl"
    )
    conf = settings.kafka.client_config()
    assert conf["security.protocol"] == "SASL_SSL"
    assert conf["sasl.mechanism"] == "SCRAM-SHA-512"
    assert conf["sasl.username"] == "dynabridge"
    assert conf["sasl.password"] == "s3cr3t-sasl"
    assert conf["ssl.ca.location"] == "/etc/dynabridge/tls/kafka-ca.pem"
    assert "s3cr3t-sasl" not in repr(settings)


def test_kafka_mtls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conf = _load("kafka-mtls", tmp_path, monkeypatch).kafka.client_config()
    assert conf["security.protocol"] == "SSL"
    assert conf["ssl.certificate.location"] == "/etc/dynabridge/tls/client.pem"
    assert conf["ssl.key.location"] == "/etc/dynabridge/tls/client.key"
    assert "sasl.mechanism" not in conf


def test_es_basic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _load("es-basic", tmp_path, monkeypatch, DYNABRIDGE_SEARCH__PASSWORD="pw-9f3a")
    assert basic_auth(settings.search) == ("dynabridge", "pw-9f3a")
    assert settings.search.ca_certs == "/etc/dynabridge/tls/es-ca.pem"
    assert settings.search.hosts == ["https://es-1.internal:9200"]


def test_es_api_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _load(
        "es-api-key", tmp_path, monkeypatch, DYNABRIDGE_SEARCH__API_KEY="a2V5OnNlY3JldA=="
    )
    assert settings.search.api_key is not None
    assert settings.search.api_key.get_secret_value() == "a2V5OnNlY3JldA=="
    assert basic_auth(settings.search) is None


def test_opensearch_sigv4_signs_for_the_region_of_aws_region(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from consumers.search.opensearch import aws_sigv4_auth

    settings = _load(
        "opensearch-sigv4",
        tmp_path,
        monkeypatch,
        AWS_ACCESS_KEY_ID="AKIDEXAMPLE",
        AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMI-example",
        AWS_DEFAULT_REGION="us-east-1",
    )
    assert settings.search.aws_sigv4
    signer = aws_sigv4_auth(settings.search.aws_service, settings.aws.region)
    url = settings.search.hosts[0] + "/_cluster/health"
    authorization = signer.signer.sign("GET", url, None)["Authorization"]
    # The credential scope names the region and service the request is signed for.
    assert "/eu-west-1/es/aws4_request" in authorization


def test_every_example_is_valid_yaml_with_known_sections() -> None:
    names = re.findall(r"<!-- example: ([a-z0-9-]+) -->", DOC.read_text())
    assert len(names) == 5
    for name in names:
        assert set(yaml.safe_load(_example(name))) <= set(Settings.model_fields)
