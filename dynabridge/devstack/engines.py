"""More engine versions (``dev up --engines es8,os3``): Elasticsearch 8 and OpenSearch 3 next
to the plain stack's Elasticsearch 9 and OpenSearch 2, plain HTTP, on ports of their own.

Maven Central's newest integ-test zips (checked 2026-12): Elasticsearch 8.19.21 (its metadata
lists no 9.x at all, yet 9.0.0-9.2.0, 9.5.0 and 9.5.4 download) and OpenSearch 3.8.0 (the
metadata stops at 3.6.0; 3.9.0 is not served). Both run on Java 21+ (OpenSearch 3 needs it).
"""

from __future__ import annotations

from dynabridge.devstack.artifacts import Artifact
from dynabridge.devstack.config import StackConfig, env_var
from dynabridge.devstack.services import Service, _search_service, _SearchFlavour

ENGINE_SERVICE_NAMES = ("elasticsearch8", "opensearch3")


def artifacts(config: StackConfig) -> dict[str, Artifact]:
    cache = config.artifacts_dir
    es, opensearch = config.es8_version, config.opensearch3_version
    return {
        "elasticsearch8": Artifact(
            "elasticsearch8",
            f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{es}:zip",
            cache / f"elasticsearch-{es}",
            "zip",
        ),
        "opensearch3": Artifact(
            "opensearch3",
            f"org.opensearch.distribution.integ-test-zip:opensearch:{opensearch}:zip",
            cache / f"opensearch-{opensearch}",
            "zip",
        ),
    }


def services(config: StackConfig) -> dict[str, Service]:
    arts = artifacts(config)
    es8 = _SearchFlavour(
        "elasticsearch8", config.es8_version, config.es8_port, config.es8_transport_port,
        config.es_java_home, env_var("es_java_home"), "ES", "elasticsearch.yml",
        program="elasticsearch", template_dir="elasticsearch",
    )  # fmt: skip
    os3 = _SearchFlavour(
        "opensearch3", config.opensearch3_version, config.opensearch3_port,
        config.opensearch3_transport_port, config.es_java_home, env_var("es_java_home"),
        "OPENSEARCH", "opensearch.yml", program="opensearch", template_dir="opensearch",
    )  # fmt: skip
    return {
        "elasticsearch8": _search_service(config, arts["elasticsearch8"], es8),
        "opensearch3": _search_service(config, arts["opensearch3"], os3),
    }
