"""The frame both long-running processes share: stop signals, the health endpoint, exit codes.

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

import click
from prometheus_client import CollectorRegistry

from bridge.health import HealthServer, Heartbeat
from bridge.logs import configure
from bridge.settings import ConfigError, Settings, load_settings
from bridge.shutdown import install_stop_signals

EXIT_OK, EXIT_FATAL, EXIT_CONFIG = 0, 1, 2


def settings_or_exit(
    command: str, process: str, config_path: Path | None, check: Callable[[Settings], object]
) -> Settings:
    """Load and check the settings, or print the problem and exit 2; then set up logging."""
    try:
        settings = load_settings(config_path)
        check(settings)
    except ConfigError as error:
        click.echo(f"dynabridge {command}: {error}", err=True)
        sys.exit(EXIT_CONFIG)
    configure(settings.logging.level, settings.logging.format, process)
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

    Without ``stop``, SIGTERM and SIGINT set a new one (tests pass their own).
    """
    log = logging.getLogger(name)
    if stop is None:
        stop = threading.Event()
        install_stop_signals(stop)
    server = None
    try:
        if settings.metrics.port:
            server = HealthServer(settings.metrics.host, settings.metrics.port, registry, heartbeat)
            server.start()
        work(stop)
    except ConfigError as error:
        log.critical("%s cannot start: %s", name, error)
        return EXIT_CONFIG
    except Exception as error:  # crash-only: any failure ends the process, restart resumes
        log.debug("fatal error", exc_info=True)
        log.critical("%s stopped on a fatal error: %s: %s", name, type(error).__name__, error)
        return EXIT_FATAL
    finally:
        if server is not None:
            server.stop()
    log.info("%s stopped cleanly", name)
    return EXIT_OK
