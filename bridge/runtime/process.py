"""The frame both long-running processes share: settings or exit 2, stop signals, the health
endpoint, exit codes (``bridge.runtime.exits``).

Crash-only: the work function either returns after ``stop`` (exit 0), or raises; a
configuration problem exits 2, anything else exits 1 with one CRITICAL line naming the error,
and the restart resumes from the last checkpoint (bridge) or commit (indexer).
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import click
from prometheus_client import CollectorRegistry

from bridge.runtime.exits import ExitCode
from bridge.runtime.health import HealthServer, Heartbeat
from bridge.runtime.logs import configure
from bridge.runtime.settings import ConfigError, Settings, load_settings
from bridge.runtime.shutdown import install_stop_signals


def fail(command: str, message: str, code: ExitCode) -> NoReturn:
    """Print ``dynabridge <command>: <message>`` on stderr and exit with ``code``."""
    click.echo(f"dynabridge {command}: {message}", err=True)
    sys.exit(code)


def settings_or_exit(
    command: str,
    config_path: Path | None,
    check: Callable[[Settings], object] | None = None,
    *,
    log_as: str | None = None,
) -> Settings:
    """Load and check the settings, or print the problem and exit 2.

    With ``log_as`` (the process or tool name in text logs), logging is set up from the
    settings too; operator commands that print their own output pass nothing.
    """
    try:
        settings = load_settings(config_path)
        if check is not None:
            check(settings)
    except ConfigError as error:
        fail(command, str(error), ExitCode.CONFIG)
    if log_as is not None:
        configure(settings.logging.level, settings.logging.format, log_as)
    return settings


def run_process(
    name: str,
    settings: Settings,
    registry: CollectorRegistry,
    heartbeat: Heartbeat,
    work: Callable[[threading.Event], object],
    stop: threading.Event | None = None,
) -> int:
    """Serve /metrics, /healthz and /readyz, run ``work(stop)``; return the exit code.

    ``name`` is ``bridge`` or ``indexer``: it picks the default metrics port. Without ``stop``,
    SIGTERM and SIGINT set a new one (tests pass their own).
    """
    log = logging.getLogger(name)
    if stop is None:
        stop = threading.Event()
        install_stop_signals(stop)
    server = None
    try:
        port = settings.metrics.port_of(name)
        if port:
            server = _serve(name, settings.metrics.host, port, registry, heartbeat)
        work(stop)
    except ConfigError as error:
        log.critical("%s cannot start: %s", name, error)
        return ExitCode.CONFIG
    except Exception as error:  # crash-only: any failure ends the process, restart resumes
        log.debug("fatal error", exc_info=True)
        log.critical("%s stopped on a fatal error: %s: %s", name, type(error).__name__, error)
        return ExitCode.FATAL
    finally:
        if server is not None:
            server.stop()
    log.info("%s stopped cleanly", name)
    return ExitCode.OK


def _serve(
    name: str, host: str, port: int, registry: CollectorRegistry, heartbeat: Heartbeat
) -> HealthServer:
    try:
        server = HealthServer(host, port, registry, heartbeat)
    except OSError as error:
        raise ConfigError(
            f"cannot serve metrics.port {port} on {host} ({error.strerror}): another process "
            f"holds it; give the {name} its own port (metrics.port, or "
            "DYNABRIDGE_METRICS__PORT for this process only; 0 turns the endpoint off)"
        ) from None
    server.start()
    return server
