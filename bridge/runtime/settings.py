"""The one configuration file both processes read: YAML, every key overridable by environment.

Environment overrides use the prefix ``DYNABRIDGE_`` and ``__`` between levels, e.g.
``DYNABRIDGE_KAFKA__BOOTSTRAP_SERVERS=broker:9092`` or ``DYNABRIDGE_BRIDGE__TABLES=orders,users``.
Validation happens once, at start; :class:`ConfigError` names the key and the fix.
"""

from __future__ import annotations

import enum
import json
import os
import socket
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
)

ENV_PREFIX = "DYNABRIDGE_"


class ConfigError(Exception):
    """The configuration is unusable; the message names the key and what to do."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _split_csv(value: Any) -> Any:
    """Let list keys be given as ``a,b`` or a JSON list in environment variables."""
    if isinstance(value, str):
        if value.lstrip().startswith("["):
            return json.loads(value)
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _json_mapping(value: Any) -> Any:
    """Let mapping keys be given as a JSON object in environment variables."""
    if isinstance(value, str):
        return json.loads(value)
    return value


class AwsSettings(_Section):
    region: str = "us-east-1"
    endpoint_url: str | None = None
    """Set for local emulators (moto); leave unset for AWS."""


class KafkaSecurityProtocol(enum.StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class KafkaSettings(_Section):
    bootstrap_servers: str = "127.0.0.1:9092"
    topic_prefix: str = "ddb."
    schema_registry_url: str | None = None
    """When set, values use Confluent Schema Registry framing instead of Avro single-object."""
    security_protocol: KafkaSecurityProtocol = KafkaSecurityProtocol.PLAINTEXT
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: SecretStr | None = None
    extra: dict[str, str] = Field(default_factory=dict)
    """Raw librdkafka properties passed through to every client (e.g. OAUTHBEARER settings)."""

    _json = field_validator("extra", mode="before")(_json_mapping)

    def client_config(self) -> dict[str, str]:
        """librdkafka properties shared by producers, consumers and admin clients."""
        conf: dict[str, str] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol.value,
        }
        optional: dict[str, str | None] = {
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": _reveal(self.sasl_password),
            "ssl.ca.location": self.ssl_ca_location,
            "ssl.certificate.location": self.ssl_certificate_location,
            "ssl.key.location": self.ssl_key_location,
            "ssl.key.password": _reveal(self.ssl_key_password),
        }
        conf.update({k: v for k, v in optional.items() if v is not None})
        conf.update(self.extra)
        return conf


def _reveal(secret: SecretStr | None) -> str | None:
    return None if secret is None else secret.get_secret_value()


class TopicSettings(_Section):
    partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)
    retention_ms: int = Field(default=7 * 24 * 3600 * 1000, ge=-1)
    """-1 keeps change records forever (replay from the beginning of time)."""
    cleanup_policy: Literal["delete", "compact", "compact,delete"] = "delete"
    """compact: Kafka keeps the latest change of every item (keyed by primary key; a REMOVE is
    a value, so it stays), so an index can always be rebuilt from the topic."""
    config: dict[str, str] = Field(default_factory=dict)
    """More topic configs set at creation (e.g. min.compaction.lag.ms)."""

    _json = field_validator("config", mode="before")(_json_mapping)


class StartPosition(enum.StrEnum):
    TRIM_HORIZON = "trim_horizon"
    LATEST = "latest"


class TrimmedPolicy(enum.StrEnum):
    FAIL = "fail"
    SKIP = "skip"


def _default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class BridgeSettings(_Section):
    tables: list[str] = Field(default_factory=list)
    lease_table: str = "dynabridge-leases"
    worker_id: str = Field(default_factory=_default_worker_id)
    start_position: StartPosition = StartPosition.TRIM_HORIZON
    require_images: bool = True
    """Refuse streams whose view type lacks NEW_IMAGE (KEYS_ONLY / OLD_IMAGE)."""
    lease_duration_s: float = Field(default=10.0, gt=0)
    lease_renew_interval_s: float = Field(default=3.0, gt=0)
    lease_take_interval_s: float = Field(default=1.5, gt=0)
    """Also how precisely a worker sees when another's lease last moved: failover takes up to
    lease_duration_s + lease_take_interval_s."""
    max_leases_to_steal: int = Field(default=1, ge=0)
    shard_sync_interval_s: float = Field(default=10.0, gt=0)
    idle_poll_min_s: float = Field(default=0.05, ge=0)
    idle_poll_max_s: float = Field(default=0.25, gt=0)
    """Empty shards are re-polled with backoff between these bounds (sets end-to-end latency)."""
    get_records_limit: int = Field(default=1000, ge=1, le=1000)
    fetch_threads: int = Field(default=16, ge=1, le=256)
    """GetRecords calls in flight at once, over all shards (at most one per shard)."""
    fetch_max_pages: int = Field(default=64, ge=1)
    fetch_max_bytes: int = Field(default=16 * 1024 * 1024, ge=1024 * 1024)
    """Pages fetched and not yet published, by count and by response bytes: the backpressure
    bound of the read path's memory."""
    throttle_backoff_max_s: float = Field(default=10.0, gt=0)
    trimmed_policy: TrimmedPolicy = TrimmedPolicy.FAIL
    shutdown_timeout_s: float = Field(default=20.0, gt=0)
    stall_timeout_s: float = Field(default=60.0, gt=0)
    """The health endpoint turns unhealthy when the loop has not turned for this long."""
    busy_records_per_s: float = Field(default=1.0, gt=0)
    """A shard read at this many records/s or more (smoothed over a minute) is busy; it turns
    idle again below half of it. Balancing spreads busy shards; scaling counts them."""

    _csv = field_validator("tables", mode="before")(_split_csv)


class IndexerSettings(_Section):
    group_id: str = "dynabridge-indexer"
    tables: list[str] | None = None
    """Defaults to bridge.tables."""
    batch_max_docs: int = Field(default=1000, ge=1)
    batch_max_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    linger_ms: int = Field(default=5, ge=0)
    """A partial batch's wait for more when no bulk is in flight (under load, the bulk in
    flight is what batches changes): every change pays it when the stream is quiet."""
    retry_initial_backoff_s: float = Field(default=0.2, gt=0)
    retry_max_backoff_s: float = Field(default=30.0, gt=0)
    session_timeout_ms: int = Field(default=10000, ge=6000)
    max_poll_interval_ms: int = Field(default=300000, ge=10000)
    outcome_overrides: dict[str, Literal["done", "stale", "retry", "dlq", "fatal"]] = Field(
        default_factory=dict
    )
    """Per error type or HTTP status (as a string) outcome, over the built-in table."""

    _json = field_validator("outcome_overrides", mode="before")(_json_mapping)
    shutdown_timeout_s: float = Field(default=20.0, gt=0)
    stall_timeout_s: float = Field(default=120.0, gt=0)

    _csv = field_validator("tables", mode="before")(_split_csv)


class SearchBackend(enum.StrEnum):
    ELASTICSEARCH = "elasticsearch"
    OPENSEARCH = "opensearch"


class SearchSettings(_Section):
    backend: SearchBackend = SearchBackend.ELASTICSEARCH
    hosts: list[str] = Field(default_factory=lambda: ["http://127.0.0.1:9200"])
    index_prefix: str = ""
    username: str | None = None
    password: SecretStr | None = None
    api_key: SecretStr | None = None
    aws_sigv4: bool = False
    """Sign requests for Amazon OpenSearch Service with the standard AWS credential chain."""
    aws_service: Literal["es", "aoss"] = "es"
    verify_certs: bool = True
    ca_certs: str | None = None
    request_timeout_s: float = Field(default=30.0, gt=0)
    index_settings: dict[str, Any] = Field(default_factory=dict)
    index_mappings: dict[str, Any] = Field(default_factory=dict)
    gc_deletes: str = "1h"
    """index.gc_deletes on managed indices: how long the engine remembers a real delete."""
    tombstone_retention_s: float = Field(default=8 * 24 * 3600.0, gt=0)
    """How long a deleted item's tombstone (its delete's version) is kept in a managed index;
    keep it longer than topics.retention_ms, so no replay can meet a change older than it."""
    index_templates: bool = True
    """Install an index template per table index (the managed mapping); off: the indexer
    creates missing indices with the same settings and mappings inline."""
    template_priority: int = Field(default=200, ge=0)
    template_composed_of: list[str] = Field(default_factory=list)
    """Component templates of your own that the managed templates include."""
    typed_depth: int = Field(default=1, ge=1, le=32)
    """Levels of maps whose attributes get typed fields of their own; deeper maps are indexed
    as keywords by path."""
    typed_keys_per_map: int = Field(default=100, ge=1)
    """A map with more keys is indexed as keywords by path (its keys are likely data)."""
    keyword_ignore_above: int = Field(default=256, ge=1, le=8191)
    """Strings longer than this are searchable as text only (no exact-match keyword)."""
    date_attributes: dict[str, str] = Field(default_factory=dict)
    """Top-level attribute -> date format (e.g. strict_date_optional_time||epoch_millis): its
    S and N values are also indexed as dates."""

    _json = field_validator("index_settings", "index_mappings", "date_attributes", mode="before")(
        _json_mapping
    )

    _csv = field_validator("hosts", "template_composed_of", mode="before")(_split_csv)


DEFAULT_METRICS_PORTS = {"bridge": 9108, "indexer": 9109}
"""Each process its own default, so both run on one host from one configuration file."""


class MetricsSettings(_Section):
    host: str = "0.0.0.0"  # noqa: S104 - scraped by Prometheus from outside the pod
    port: int | None = Field(default=None, ge=0, le=65535)
    """Unset: the process's own default (bridge 9108, indexer 9109); 0 disables the endpoint."""

    def port_of(self, process: str) -> int:
        """The port ``process`` serves /metrics, /healthz and /readyz on (0: none)."""
        return self.port if self.port is not None else DEFAULT_METRICS_PORTS[process]


class ScalingSettings(_Section):
    """Targets of the desired worker counts (docs/operations.md, Scaling)."""

    bridge_max_unread_age_s: float = Field(default=60.0, gt=0)
    """No shard's oldest unread record should be older than this."""
    bridge_busy_shards_per_worker: int = Field(default=4, ge=1)
    """No bridge worker should read more busy shards than this."""
    indexer_drain_s: float = Field(default=60.0, gt=0)
    """The indexer group's lag should be drained within this long."""
    indexer_records_per_s_per_consumer: float = Field(default=1000.0, gt=0)
    """What one indexer consumes per second at least: assumed until a higher rate is seen."""


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["json", "text"] = "json"


class Settings(BaseSettings):
    """The whole file. Sections mirror the YAML top level."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        # Values from the environment are parsed by the field validators (CSV or JSON), so that
        # DYNABRIDGE_BRIDGE__TABLES=a,b works as well as a JSON list.
        enable_decoding=False,
    )

    aws: AwsSettings = Field(default_factory=AwsSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    bridge: BridgeSettings = Field(default_factory=BridgeSettings)
    indexer: IndexerSettings = Field(default_factory=IndexerSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    scaling: ScalingSettings = Field(default_factory=ScalingSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Environment beats the file; the file arrives as init kwargs.
        return (env_settings, init_settings)

    def indexer_tables(self) -> list[str]:
        return list(self.indexer.tables) if self.indexer.tables else list(self.bridge.tables)


def load_settings(path: Path | None) -> Settings:
    """Read ``path`` (if given), apply environment overrides, validate; raise ConfigError."""
    data: dict[str, Any] = {}
    source = "environment"
    if path is not None:
        source = str(path)
        try:
            loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist: pass --config FILE") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of sections at top level")
        data = loaded
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, source)) from None
    except (SettingsError, json.JSONDecodeError) as exc:
        raise ConfigError(
            f"invalid configuration in the environment ({ENV_PREFIX}*): {exc}"
        ) from None


def _describe(exc: ValidationError, source: str) -> str:
    lines = [f"invalid configuration ({source}):"]
    for err in exc.errors():
        key = ".".join(str(part) for part in err["loc"])
        env = ENV_PREFIX + "__".join(str(part).upper() for part in err["loc"])
        if err["type"] == "extra_forbidden":
            hint = "unknown key: remove it or check its spelling against docs/configuration.md"
        else:
            # A secret's value never reaches an error message.
            hint = err["msg"] if _looks_secret(key) else f"{err['msg']}; got {err.get('input')!r}"
        lines.append(f"  {key}: {hint} (file key {key!r} or env {env})")
    return "\n".join(lines)


def _looks_secret(key: str) -> bool:
    return any(word in key for word in ("password", "api_key", "secret", "token"))


def require_tables(tables: list[str], key: str) -> list[str]:
    """Fail with the key to set when a process has no table to work on."""
    if not tables:
        raise ConfigError(
            f"{key} is empty: list at least one DynamoDB table name under {key} "
            f"(or set {ENV_PREFIX}{key.upper().replace('.', '__')}=table1,table2)"
        )
    return tables
