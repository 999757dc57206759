"""``dev config --secure``: a configuration for both processes against the secure profile.

Pure: the YAML text names endpoints, users and CA/certificate paths; secrets appear only in
the separate ``export`` lines (``--env``), never in the YAML, as in a real deployment where
they come from a secret store through the environment.
"""

from __future__ import annotations

import enum
import shlex
from typing import Any

import yaml

from dynabridge.devstack.certs import Tls
from dynabridge.devstack.config import StackConfig
from dynabridge.devstack.secure import SCRAM, Secrets


class KafkaAuth(enum.StrEnum):
    SASL = "sasl"
    MTLS = "mtls"


class SearchAuth(enum.StrEnum):
    ES_BASIC = "es-basic"
    ES_API_KEY = "es-api-key"
    OPENSEARCH_BASIC = "os-basic"


def settings(
    config: StackConfig,
    tls: Tls,
    value: Secrets,
    kafka: KafkaAuth,
    search: SearchAuth,
    tables: tuple[str, ...] = (),
) -> dict[str, Any]:
    """The configuration file's content (no secret in it)."""
    kafka_section: dict[str, Any]
    if kafka is KafkaAuth.SASL:
        kafka_section = {
            "bootstrap_servers": config.kafka_secure_sasl_bootstrap,
            "security_protocol": "SASL_SSL",
            "sasl_mechanism": SCRAM,
            "sasl_username": value.kafka_username,
            "ssl_ca_location": str(tls.ca),
        }
    else:
        kafka_section = {
            "bootstrap_servers": config.kafka_secure_mtls_bootstrap,
            "security_protocol": "SSL",
            "ssl_ca_location": str(tls.ca),
            "ssl_certificate_location": str(tls.client_cert),
            "ssl_key_location": str(tls.client_key),
        }
    search_section: dict[str, Any] = {"ca_certs": str(tls.ca)}
    if search is SearchAuth.OPENSEARCH_BASIC:
        search_section |= {
            "backend": "opensearch",
            "hosts": [config.opensearch_secure_url],
            "username": value.opensearch_username,
        }
    else:
        search_section |= {"backend": "elasticsearch", "hosts": [config.es_secure_url]}
        if search is SearchAuth.ES_BASIC:
            search_section["username"] = value.es_username
    content: dict[str, Any] = {
        "aws": {"region": "us-east-1", "endpoint_url": config.moto_endpoint},
        "kafka": kafka_section,
        "search": search_section,
    }
    if tables:
        content["bridge"] = {"tables": list(tables)}
    return content


def environment(value: Secrets, kafka: KafkaAuth, search: SearchAuth) -> dict[str, str]:
    """The secrets of that configuration, as the environment variables both processes read."""
    env: dict[str, str] = {}
    if kafka is KafkaAuth.SASL:
        env["DYNABRIDGE_KAFKA__SASL_PASSWORD"] = value.kafka_password
    if search is SearchAuth.ES_BASIC:
        env["DYNABRIDGE_SEARCH__PASSWORD"] = value.es_password
    elif search is SearchAuth.ES_API_KEY:
        if value.es_api_key is not None:  # the integ-test zip cannot store one (local-stack.md)
            env["DYNABRIDGE_SEARCH__API_KEY"] = value.es_api_key
    else:
        env["DYNABRIDGE_SEARCH__PASSWORD"] = value.opensearch_password
    return env


def yaml_text(content: dict[str, Any], kafka: KafkaAuth, search: SearchAuth) -> str:
    header = (
        "# dynabridge against the secure local stack (`dynabridge dev up --secure`).\n"
        "# No secret in this file: export them first, e.g.\n"
        f'#   eval "$(dynabridge dev config --secure --kafka {kafka} --search {search} --env)"\n'
    )
    return header + yaml.safe_dump(content, sort_keys=False)


def export_lines(env: dict[str, str]) -> str:
    return "".join(f"export {name}={shlex.quote(value)}\n" for name, value in env.items())
