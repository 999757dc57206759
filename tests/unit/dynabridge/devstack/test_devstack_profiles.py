"""``dev up --secure --engines ...``: which services, and what ``dev config --secure`` prints."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from bridge.runtime.settings import Settings
from dynabridge.devstack import client_config, profiles
from dynabridge.devstack.certs import Tls
from dynabridge.devstack.client_config import KafkaAuth, SearchAuth
from dynabridge.devstack.config import ConfigError, StackConfig
from dynabridge.devstack.secure import Secrets
from dynabridge.devstack.services import SERVICE_NAMES


def test_without_flags_the_plain_stack() -> None:
    assert profiles.service_names(False, None) == SERVICE_NAMES


def test_engines_pick_the_search_engines_beside_kafka_and_moto() -> None:
    chosen = profiles.engine_list("es8, OS3")
    assert profiles.service_names(False, chosen) == (
        "kafka",
        "elasticsearch8",
        "opensearch3",
        "moto",
    )
    assert profiles.service_names(False, chosen, owned_only=True) == (
        "elasticsearch8",
        "opensearch3",
    )


def test_secure_runs_its_own_kafka_and_engines_and_shares_moto() -> None:
    names = profiles.service_names(True, None)
    assert names == ("kafka-secure", "elasticsearch-secure", "opensearch-secure", "moto")
    assert "moto" not in profiles.service_names(True, None, owned_only=True)


@pytest.mark.parametrize("text", ["es7", "", "es9,xx"])
def test_an_unknown_engine_names_the_choices(text: str) -> None:
    with pytest.raises(ConfigError, match="es8, es9, os2, os3"):
        profiles.engine_list(text)


def test_secure_has_no_es8_and_says_why() -> None:
    with pytest.raises(ConfigError, match=r"2\.19\.3, 2\.19\.4 and 3\.4\.0"):
        profiles.service_names(True, ("es8",))


SECRETS = Secrets("k-user", "k-pass-1", "e-user", "e-pass-2", "o-user", "o-pass-3", "api-key-4")


@pytest.mark.parametrize("kafka", list(KafkaAuth))
@pytest.mark.parametrize("search", list(SearchAuth))
def test_dev_config_loads_and_keeps_every_secret_out_of_the_file(
    kafka: KafkaAuth, search: SearchAuth, tmp_path: Path
) -> None:
    content = client_config.settings(StackConfig(), Tls(tmp_path), SECRETS, kafka, search, ("t",))
    text = client_config.yaml_text(content, kafka, search)
    for secret in ("k-pass-1", "e-pass-2", "o-pass-3", "api-key-4"):
        assert secret not in text
    settings = Settings(**yaml.safe_load(text))
    env = client_config.environment(SECRETS, kafka, search)
    assert all(name.startswith("DYNABRIDGE_") for name in env)
    if kafka is KafkaAuth.SASL:
        assert settings.kafka.sasl_mechanism == "SCRAM-SHA-512"
        assert env["DYNABRIDGE_KAFKA__SASL_PASSWORD"] == "k-pass-1"
    else:
        assert settings.kafka.ssl_certificate_location == str(tmp_path / "client.pem")
    expected = {
        SearchAuth.ES_BASIC: ("DYNABRIDGE_SEARCH__PASSWORD", "e-pass-2"),
        SearchAuth.ES_API_KEY: ("DYNABRIDGE_SEARCH__API_KEY", "api-key-4"),
        SearchAuth.OPENSEARCH_BASIC: ("DYNABRIDGE_SEARCH__PASSWORD", "o-pass-3"),
    }[search]
    assert env[expected[0]] == expected[1]
    assert settings.bridge.tables == ["t"]
    assert "export " in client_config.export_lines(env)


def test_services_prepared_in_parallel_share_one_ca_and_one_set_of_secrets(
    tmp_path: Path,
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from dynabridge.devstack import secure

    config = StackConfig(run_dir=tmp_path / "run")
    with ThreadPoolExecutor(max_workers=3) as pool:
        made = list(pool.map(lambda _: secure.ensure_secrets(config), range(3)))
        cas = list(pool.map(lambda _: secure.tls(config).ca.read_bytes(), range(3)))
    assert made[0] == made[1] == made[2]
    assert cas[0] == cas[1] == cas[2]
    assert secure.load_secrets(config) == made[0]
    assert (tmp_path / "run" / "secure" / "secrets.json").stat().st_mode & 0o077 == 0
