"""``dynabridge dev ...``: the real local stack (Kafka, Elasticsearch, OpenSearch, moto)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from dynabridge.devstack import artifacts, client_config, profiles, stack
from dynabridge.devstack import secure as secure_profile
from dynabridge.devstack.accounts import AccountError
from dynabridge.devstack.artifacts import ArtifactError
from dynabridge.devstack.client_config import KafkaAuth, SearchAuth
from dynabridge.devstack.config import ConfigError, StackConfig, env_var, load
from dynabridge.devstack.engines import ENGINE_SERVICE_NAMES
from dynabridge.devstack.ports import PortInUseError
from dynabridge.devstack.secure import SECURE_SERVICE_NAMES
from dynabridge.devstack.services import ALL_SERVICE_NAMES, SERVICE_NAMES, StartError
from dynabridge.streamsim.cli import streams_sim_command

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS: tuple[tuple[str, type, str], ...] = (
    ("kafka_port", int, "Kafka broker port"),
    ("kafka_controller_port", int, "Kafka KRaft controller port"),
    ("es_port", int, "Elasticsearch HTTP port"),
    ("es_transport_port", int, "Elasticsearch transport port"),
    ("opensearch_port", int, "OpenSearch HTTP port"),
    ("opensearch_transport_port", int, "OpenSearch transport port"),
    ("moto_port", int, "moto (DynamoDB + Streams) port"),
    ("streams_sim_port", int, "Streams simulator port (an optional service: dev up streams-sim)"),
    ("kafka_version", str, "Kafka version (Maven Central)"),
    ("log4j_version", str, "log4j version for the Kafka runtime"),
    ("es_version", str, "Elasticsearch version (integ-test-zip, Maven Central)"),
    ("opensearch_version", str, "OpenSearch version (integ-test-zip, Maven Central)"),
    ("java17_home", str, "JDK 17 home for Kafka and OpenSearch"),
    ("es_java_home", str, "JDK 21+ home for Elasticsearch"),
    ("heap_mb", int, "JVM heap per service, MiB"),
    ("start_timeout_s", int, "readiness deadline, seconds"),
    ("cache_dir", str, "downloads cache (default <repo>/.cache)"),
    ("run_dir", str, "pid files, data, logs (default <cache>/run)"),
    ("kafka_secure_sasl_port", int, "secure Kafka SASL_SSL port"),
    ("kafka_secure_mtls_port", int, "secure Kafka mTLS port"),
    ("kafka_secure_controller_port", int, "secure Kafka KRaft controller port"),
    ("es_secure_port", int, "secure Elasticsearch HTTPS port"),
    ("es_secure_transport_port", int, "secure Elasticsearch transport port"),
    ("opensearch_secure_port", int, "secure OpenSearch HTTPS port"),
    ("opensearch_secure_transport_port", int, "secure OpenSearch transport port"),
    ("opensearch_secure_version", str, "secure OpenSearch version (= its security plugin's)"),
    ("opensearch_security_plugin_version", str, "OpenSearch security plugin version"),
    ("es8_version", str, "Elasticsearch 8 version (--engines es8)"),
    ("es8_port", int, "Elasticsearch 8 HTTP port"),
    ("es8_transport_port", int, "Elasticsearch 8 transport port"),
    ("opensearch3_version", str, "OpenSearch 3 version (--engines os3)"),
    ("opensearch3_port", int, "OpenSearch 3 HTTP port"),
    ("opensearch3_transport_port", int, "OpenSearch 3 transport port"),
)
_PATH_OPTIONS = {"java17_home", "es_java_home", "cache_dir", "run_dir"}

SERVICES = click.Choice(
    (*ALL_SERVICE_NAMES, *ENGINE_SERVICE_NAMES, *SECURE_SERVICE_NAMES), case_sensitive=False
)


def profile_options(func: F) -> F:
    """``--secure`` and ``--engines``: which services, when none is named."""
    func = click.option(
        "--engines",
        default=None,
        metavar="LIST",
        help="search engines to run with Kafka and moto: es8, es9, os2, os3 (comma-separated; "
        "default es9,os2)",
    )(func)
    return click.option(
        "--secure",
        is_flag=True,
        help="the secure profile on its own ports: Kafka SASL_SSL (SCRAM-SHA-512) + mTLS, "
        "Elasticsearch 9 and OpenSearch 2.19 with TLS and users (see docs/local-stack.md)",
    )(func)


def _names(
    service: tuple[str, ...], secure: bool, engines: str | None, *, owned_only: bool = False
) -> tuple[str, ...]:
    """Named services win; otherwise the profile's (none: the default stack, ``()``)."""
    if service:
        return service
    try:
        chosen = profiles.engine_list(engines) if engines else None
        if not secure and chosen is None:
            return ()
        return profiles.service_names(secure, chosen, owned_only=owned_only)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc


def stack_options(func: F) -> F:
    """One flag per config field; the default comes from DYNABRIDGE_DEV_* or the built-in."""
    for name, kind, help_text in reversed(_OPTIONS):
        flag = "--" + name.replace("_", "-")
        func = click.option(
            flag, name, type=kind, default=None, help=f"{help_text} [env {env_var(name)}]"
        )(func)
    return func


def _config(options: dict[str, Any]) -> StackConfig:
    overrides = {
        k: (Path(v) if k in _PATH_OPTIONS and v is not None else v) for k, v in options.items()
    }
    try:
        return load(os.environ, overrides)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc


def _progress(message: str) -> None:
    click.echo(f"[dev] {message}", err=True)


_EXPECTED = (StartError, ArtifactError, PortInUseError, AccountError, ConfigError)


@click.group("dev")
def dev_group() -> None:
    """Run the real local stack as plain processes (no Docker needed).

    Kafka (KRaft) 127.0.0.1:9092, Elasticsearch http://127.0.0.1:9200, OpenSearch
    http://127.0.0.1:9201, moto (DynamoDB + Streams) http://127.0.0.1:5000.
    Downloads are cached in <repo>/.cache; state, pid files and logs in <repo>/.cache/run.
    """


@dev_group.command("fetch")
@click.argument("service", nargs=-1, type=SERVICES)
@profile_options
@stack_options
def fetch_command(
    service: tuple[str, ...], secure: bool, engines: str | None, **options: Any
) -> None:
    """Download the servers from Maven Central into the cache (skipped when present)."""
    config = _config(options)
    try:
        chosen = stack.selected(config, _names(service, secure, engines))
    except StartError as exc:
        raise click.ClickException(str(exc)) from exc
    wanted = list({s.artifact.home: s.artifact for s in chosen if s.artifact}.values())
    try:
        artifacts.fetch_all(config, wanted, _progress)
    except ArtifactError as exc:
        raise click.ClickException(str(exc)) from exc
    for artifact in wanted:
        click.echo(f"{artifact.service}: {artifact.home}")


@dev_group.command("up")
@click.argument("service", nargs=-1, type=SERVICES)
@click.option(
    "--with",
    "extra",
    multiple=True,
    type=SERVICES,
    help="also start this optional service with the default ones (streams-sim)",
)
@profile_options
@stack_options
def up_command(
    service: tuple[str, ...],
    extra: tuple[str, ...],
    secure: bool,
    engines: str | None,
    **options: Any,
) -> None:
    """Start the stack (or the named services); running ones are reused.

    The default stack is Kafka, Elasticsearch, OpenSearch and moto. The DynamoDB Streams
    simulator (streams-sim, docs/testing.md) starts only when named, with moto:
    `dev up streams-sim`, or `dev up --with streams-sim` for everything.

    Returns once every service answers a real request, or fails with the tail of the
    failed service's log. --secure and --engines pick a profile instead
    (docs/local-stack.md).
    """
    service = _names(service, secure, engines)
    if extra:
        service = (*(service or SERVICE_NAMES), *extra)
    config = _config(options)
    started = time.monotonic()
    try:
        stack.up(config, service, _progress)
    except _EXPECTED as exc:
        raise click.ClickException(str(exc)) from exc
    _progress(f"stack ready in {time.monotonic() - started:.1f} s")
    _print_table(stack.status(config, stack.with_needs(service)))


@dev_group.command("down")
@click.argument("service", nargs=-1, type=SERVICES)
@profile_options
@stack_options
def down_command(
    service: tuple[str, ...], secure: bool, engines: str | None, **options: Any
) -> None:
    """Stop the services the dev stack started (its pid files), and wait for them to exit.

    With --secure or --engines: only that profile's own servers (the shared Kafka and moto
    keep running).
    """
    config = _config(options)
    stopped = stack.down(config, _names(service, secure, engines, owned_only=True), _progress)
    if not stopped:
        _progress("nothing of ours was running")


@dev_group.command("status")
@click.argument("service", nargs=-1, type=SERVICES)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@profile_options
@stack_options
def status_command(
    service: tuple[str, ...], as_json: bool, secure: bool, engines: str | None, **options: Any
) -> None:
    """Each service's endpoint, state (running / unhealthy / stopped), pid, version, memory.

    Exits 1 unless every listed service is running.
    """
    config = _config(options)
    statuses = stack.status(config, _names(service, secure, engines))
    if as_json:
        click.echo(json.dumps({s.name: s.as_json() for s in statuses}, indent=2))
    else:
        _print_table(statuses)
    if any(s.state is not stack.State.RUNNING for s in statuses):
        raise SystemExit(1)


@dev_group.command("logs")
@click.argument("service", type=SERVICES)
@click.option("-n", "--lines", default=100, show_default=True, help="how many lines")
@stack_options
def logs_command(service: str, lines: int, **options: Any) -> None:
    """Print the tail of a service's log (stdout and stderr of its process)."""
    config = _config(options)
    (svc,) = stack.selected(config, [service])
    click.echo(stack.log_tail(svc, lines))


def _print_table(statuses: list[stack.ServiceStatus]) -> None:
    for s in statuses:
        rss = "-" if s.rss_bytes is None else f"{s.rss_bytes / 2**20:.0f} MiB"
        pid = "-" if s.pid is None else str(s.pid)
        click.echo(
            f"{s.name:<20} {s.state.value:<10} {s.endpoint:<23} {s.version:<7} pid {pid:<7} {rss}"
        )


@dev_group.command("config")
@click.option("--secure", is_flag=True, required=True, help="the secure profile (required)")
@click.option(
    "--kafka",
    "kafka_auth",
    type=click.Choice([a.value for a in KafkaAuth]),
    default=KafkaAuth.SASL.value,
    show_default=True,
    help="SASL_SSL with SCRAM-SHA-512, or mTLS with the profile's client certificate",
)
@click.option(
    "--search",
    "search_auth",
    type=click.Choice([a.value for a in SearchAuth]),
    default=SearchAuth.ES_BASIC.value,
    show_default=True,
    help="Elasticsearch with a user and password, or with an API key; OpenSearch with a user",
)
@click.option("--table", "tables", multiple=True, help="a DynamoDB table for bridge.tables")
@click.option("--env", "as_env", is_flag=True, help="print the secrets as `export` lines instead")
@stack_options
def config_command(
    secure: bool,
    kafka_auth: str,
    search_auth: str,
    tables: tuple[str, ...],
    as_env: bool,
    **options: Any,
) -> None:
    """Print a configuration for both processes against the running secure profile.

    The YAML names endpoints, users and the CA and certificate files; the secrets are not in
    it. `--env` prints them as `export DYNABRIDGE_...=...` lines for the same choices:

    \b
      dynabridge dev config --secure --table orders > secure.yaml
      eval "$(dynabridge dev config --secure --env)"
      dynabridge bridge run --config secure.yaml
    """
    config = _config(options)
    value = secure_profile.load_secrets(config)
    if value is None:
        raise click.ClickException(
            "the secure profile was never started: dynabridge dev up --secure"
        )
    kafka, search = KafkaAuth(kafka_auth), SearchAuth(search_auth)
    if as_env:
        if search is SearchAuth.ES_API_KEY and value.es_api_key is None:
            raise click.ClickException(
                "the secure Elasticsearch holds no API key: API keys live in the .security "
                "index, which the integ-test distribution cannot create (docs/local-stack.md)"
            )
        try:
            click.echo(
                client_config.export_lines(client_config.environment(value, kafka, search)),
                nl=False,
            )
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        return
    content = client_config.settings(
        config, secure_profile.tls(config), value, kafka, search, tables
    )
    click.echo(client_config.yaml_text(content, kafka, search), nl=False)


dev_group.add_command(streams_sim_command)
