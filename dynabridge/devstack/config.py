"""The local stack's configuration: pinned versions, exact ports, Java homes and paths.

Every field has a default, an environment variable ``DYNABRIDGE_DEV_<FIELD>`` and a CLI flag;
the flag wins over the environment, which wins over the default.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ENV_PREFIX = "DYNABRIDGE_DEV_"
HOST = "127.0.0.1"

TEMPLATES_DIR = Path(__file__).resolve().parent / "local"
"""The templates of ``deploy/local/``, shipped as package data (``local`` links to it)."""


def _default_root() -> Path:
    """The checkout this package runs from; installed from a wheel, the working directory."""
    checkout = Path(__file__).resolve().parents[2]
    return checkout if (checkout / "pyproject.toml").is_file() else Path.cwd()


SOURCE_ROOT = _default_root()


class ConfigError(ValueError):
    """A setting of the local stack has an invalid value; the message names it."""


@dataclass(frozen=True, slots=True)
class StackConfig:
    kafka_version: str = "4.1.1"
    # The log4j line of that Kafka release (gradle/dependencies.gradle of the tag).
    log4j_version: str = "2.24.3"
    es_version: str = "9.5.4"
    opensearch_version: str = "2.19.6"
    kafka_port: int = 9092
    kafka_controller_port: int = 9093
    es_port: int = 9200
    es_transport_port: int = 9300
    opensearch_port: int = 9201
    opensearch_transport_port: int = 9301
    moto_port: int = 5000
    streams_sim_port: int = 5100
    # The secure profile (``dev up --secure``): its own ports, so it runs beside the plain stack.
    kafka_secure_sasl_port: int = 9192
    kafka_secure_mtls_port: int = 9193
    kafka_secure_controller_port: int = 9194
    es_secure_port: int = 9210
    es_secure_transport_port: int = 9310
    opensearch_secure_port: int = 9211
    opensearch_secure_transport_port: int = 9311
    # The security plugin on Maven Central exists for 2.19.3, 2.19.4 and 3.4.0 only, and a
    # plugin runs only on the exact OpenSearch version it was built for.
    opensearch_secure_version: str = "2.19.4"
    opensearch_security_plugin_version: str = "2.19.4.0"
    # More engine versions (``dev up --engines es8,os3``), plain HTTP, on their own ports.
    es8_version: str = "8.19.21"
    es8_port: int = 9220
    es8_transport_port: int = 9320
    opensearch3_version: str = "3.8.0"
    opensearch3_port: int = 9221
    opensearch3_transport_port: int = 9321
    java17_home: Path = Path("/usr/lib/jvm/java-17-openjdk-amd64")
    # Elasticsearch 9 and OpenSearch 3 need Java 21 or newer.
    es_java_home: Path = Path("/usr/lib/jvm/temurin-25-jdk-amd64")
    heap_mb: int = 512
    service_user: str = "dynabridge"
    start_timeout_s: int = 180
    root: Path = SOURCE_ROOT
    # Empty means "<root>/.cache" and "<cache_dir>/run".
    cache_dir: Path | None = None
    run_dir: Path | None = None

    @property
    def templates_dir(self) -> Path:
        return TEMPLATES_DIR

    @property
    def artifacts_dir(self) -> Path:
        return self.cache_dir or self.root / ".cache"

    @property
    def state_dir(self) -> Path:
        return self.run_dir or self.artifacts_dir / "run"

    @property
    def kafka_bootstrap(self) -> str:
        return f"{HOST}:{self.kafka_port}"

    @property
    def es_url(self) -> str:
        return f"http://{HOST}:{self.es_port}"

    @property
    def opensearch_url(self) -> str:
        return f"http://{HOST}:{self.opensearch_port}"

    @property
    def moto_endpoint(self) -> str:
        return f"http://{HOST}:{self.moto_port}"

    @property
    def streams_sim_endpoint(self) -> str:
        return f"http://{HOST}:{self.streams_sim_port}"

    @property
    def es8_url(self) -> str:
        return f"http://{HOST}:{self.es8_port}"

    @property
    def opensearch3_url(self) -> str:
        return f"http://{HOST}:{self.opensearch3_port}"

    @property
    def kafka_secure_sasl_bootstrap(self) -> str:
        return f"{HOST}:{self.kafka_secure_sasl_port}"

    @property
    def kafka_secure_mtls_bootstrap(self) -> str:
        return f"{HOST}:{self.kafka_secure_mtls_port}"

    @property
    def es_secure_url(self) -> str:
        return f"https://{HOST}:{self.es_secure_port}"

    @property
    def opensearch_secure_url(self) -> str:
        return f"https://{HOST}:{self.opensearch_secure_port}"


def env_var(field_name: str) -> str:
    return ENV_PREFIX + field_name.upper()


def load(environ: Mapping[str, str], overrides: Mapping[str, object] | None = None) -> StackConfig:
    """Build the configuration from the environment, then explicit ``overrides`` (CLI flags)."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(StackConfig):
        raw = environ.get(env_var(field.name))
        if raw is not None and raw != "":
            values[field.name] = _coerce(field.name, str(field.type), raw)
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = value
    config = StackConfig(**values)
    _validate(config)
    return config


def _coerce(name: str, type_name: str, raw: str) -> object:
    if type_name == "int":
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{env_var(name)}={raw!r} is not an integer") from None
    if "Path" in type_name:
        return Path(raw)
    return raw


def _validate(config: StackConfig) -> None:
    ports = {name: getattr(config, name) for name in port_fields()}
    for name, port in ports.items():
        if not 1 <= port <= 65535:
            raise ConfigError(f"{name} ({env_var(name)}) must be a TCP port, got {port}")
    seen: dict[int, str] = {}
    for name, port in ports.items():
        if port in seen:
            raise ConfigError(f"{name} and {seen[port]} are both set to port {port}")
        seen[port] = name
    if config.heap_mb < 128:
        raise ConfigError(
            f"heap_mb ({env_var('heap_mb')}) must be at least 128, got {config.heap_mb}"
        )


def port_fields() -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(StackConfig) if f.name.endswith("_port"))
