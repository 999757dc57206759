"""``dynabridge dev ...``: the real local stack (Kafka, Elasticsearch, OpenSearch, moto)."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from dynabridge.devstack import artifacts, stack
from dynabridge.devstack.accounts import AccountError
from dynabridge.devstack.artifacts import ArtifactError
from dynabridge.devstack.config import ConfigError, StackConfig, env_var, load
from dynabridge.devstack.ports import PortInUseError
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
)
_PATH_OPTIONS = {"java17_home", "es_java_home", "cache_dir", "run_dir"}

SERVICES = click.Choice(ALL_SERVICE_NAMES)


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
@stack_options
def fetch_command(service: tuple[str, ...], **options: Any) -> None:
    """Download the servers from Maven Central into the cache (skipped when present)."""
    config = _config(options)
    wanted = [
        a for name, a in artifacts.artifacts(config).items() if not service or name in service
    ]
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
@stack_options
def up_command(service: tuple[str, ...], extra: tuple[str, ...], **options: Any) -> None:
    """Start the stack (or the named services); running ones are reused.

    The default stack is Kafka, Elasticsearch, OpenSearch and moto. The DynamoDB Streams
    simulator (streams-sim, docs/testing.md) starts only when named, with moto:
    `dev up streams-sim`, or `dev up --with streams-sim` for everything.

    Returns once every service answers a real request, or fails with the tail of the
    failed service's log.
    """
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
@stack_options
def down_command(service: tuple[str, ...], **options: Any) -> None:
    """Stop the services the dev stack started (its pid files), and wait for them to exit."""
    config = _config(options)
    stopped = stack.down(config, service, _progress)
    if not stopped:
        _progress("nothing of ours was running")


@dev_group.command("status")
@click.argument("service", nargs=-1, type=SERVICES)
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@stack_options
def status_command(service: tuple[str, ...], as_json: bool, **options: Any) -> None:
    """Each service's endpoint, state (running / unhealthy / stopped), pid, version, memory.

    Exits 1 unless every listed service is running.
    """
    config = _config(options)
    statuses = stack.status(config, service)
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
            f"{s.name:<14} {s.state.value:<10} {s.endpoint:<23} {s.version:<7} pid {pid:<7} {rss}"
        )


dev_group.add_command(streams_sim_command)
