"""Bring the local stack up, report on it, take it down.

``up`` reuses what its pid files say is running, refuses occupied ports before starting
anything, starts the rest in parallel and waits for each to answer a real request.
``down`` stops only the process groups named in its pid files.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from enum import Enum

from dynabridge.devstack import artifacts, engines, ports, processes, secure
from dynabridge.devstack.config import HOST, StackConfig
from dynabridge.devstack.services import (
    ALL_SERVICE_NAMES,
    NEEDS,
    SERVICE_NAMES,
    Service,
    StartError,
    check_java,
    services,
)

Progress = Callable[[str], None]
PROGRESS_EVERY_S = 5.0


class State(Enum):
    RUNNING = "running"
    UNHEALTHY = "unhealthy"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    name: str
    endpoint: str
    state: State
    pid: int | None
    version: str
    rss_bytes: int | None

    def as_json(self) -> dict[str, object]:
        return {
            "endpoint": self.endpoint,
            "state": self.state.value,
            "pid": self.pid,
            "version": self.version,
            "rss_mib": None if self.rss_bytes is None else round(self.rss_bytes / 2**20),
        }


def catalog(config: StackConfig) -> dict[str, Service]:
    """Every service ``dev`` knows: the plain stack, more engine versions, the secure profile."""
    plain = services(config)
    return {**plain, **engines.services(config), **secure.services(config, plain)}


def selected(config: StackConfig, names: Iterable[str]) -> list[Service]:
    """The named services (none named: the default four), in start order."""
    chosen = list(names) or list(SERVICE_NAMES)
    available = catalog(config)
    unknown = [n for n in chosen if n not in available]
    if unknown:
        raise StartError(f"unknown service {unknown[0]!r}; choose from {', '.join(available)}")
    return [service for name, service in available.items() if name in chosen]


def with_needs(names: Iterable[str]) -> list[str]:
    """``names`` and the services they need (the simulator needs moto)."""
    chosen = list(names)
    return chosen + [need for name in chosen for need in NEEDS.get(name, ()) if need not in chosen]


def started_ones(config: StackConfig) -> list[str]:
    """The default services, and the optional ones whose pid file names a live process."""
    optional = [n for n in ALL_SERVICE_NAMES if n not in SERVICE_NAMES]
    return list(SERVICE_NAMES) + [
        s.name for s in selected(config, optional) if running_record(s) is not None
    ]


def running_record(service: Service) -> processes.PidRecord | None:
    record = processes.read_pid_file(service.pid_path)
    return record if record is not None and processes.alive(record) else None


def up(config: StackConfig, names: Iterable[str], progress: Progress) -> dict[str, str]:
    """Start (or reuse) the services; returns ``{name: "started" | "reused"}``."""
    chosen = selected(config, with_needs(names))
    outcome: dict[str, str] = {}
    to_start: list[Service] = []
    for service in chosen:
        if running_record(service) is not None:
            outcome[service.name] = "reused"
        else:
            to_start.append(service)
    for service in to_start:
        check_java(service)
    ports.check_free(HOST, [claim for s in to_start for claim in s.ports])
    artifacts.fetch_all(config, [s.artifact for s in to_start if s.artifact], progress)
    config.state_dir.mkdir(parents=True, exist_ok=True)
    config.state_dir.chmod(0o755)

    started = time.monotonic()
    deadline = started + config.start_timeout_s
    with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
        pending: dict[Future[None], Service] = {}
        for service in chosen:
            fresh = service in to_start
            progress(f"{'starting' if fresh else 'reusing'} {service.name} at {service.endpoint}")
            pending[pool.submit(_start_and_wait, service, fresh, deadline)] = service
        failures = _await(pending, started, progress)
    if failures:
        raise StartError("\n\n".join(failures))
    outcome.update({s.name: "started" for s in to_start})
    return outcome


def _await(pending: dict[Future[None], Service], started: float, progress: Progress) -> list[str]:
    failures = []
    while pending:
        done, _ = wait(pending, timeout=PROGRESS_EVERY_S, return_when=FIRST_COMPLETED)
        elapsed = time.monotonic() - started
        for future in done:
            service = pending.pop(future)
            error = future.exception()
            if error is None:
                progress(f"{service.name} ready after {elapsed:.1f} s ({service.endpoint})")
            else:
                progress(f"{service.name} FAILED after {elapsed:.1f} s")
                failures.append(f"{error}\n{_log_tail(service, 40)}")
        if pending and not done:
            waiting = ", ".join(sorted(s.name for s in pending.values()))
            progress(f"waiting for {waiting} ({elapsed:.0f} s)")
    return failures


def _start_and_wait(service: Service, fresh: bool, deadline: float) -> None:
    if fresh:
        launch = service.prepare()
        pid = processes.spawn(
            launch.argv, env=launch.env, cwd=launch.cwd, log_path=service.log_path,
            run_as=launch.run_as,
        )  # fmt: skip
        record = processes.PidRecord(
            service.name, pid, service.version, service.endpoint, time.time()
        )
        processes.write_pid_file(service.pid_path, record)
    else:
        reused = running_record(service)
        if reused is None:
            raise StartError(f"{service.name} exited while being reused")
        record = reused
    while not service.probe():
        if not processes.alive(record):
            service.pid_path.unlink(missing_ok=True)
            raise StartError(f"{service.name} exited during startup (log: {service.log_path})")
        if time.monotonic() > deadline:
            if fresh:
                processes.stop(record)
                service.pid_path.unlink(missing_ok=True)
            raise StartError(
                f"{service.name} was not ready at {service.endpoint} within the deadline "
                f"(log: {service.log_path})"
            )
        time.sleep(0.5)
    if service.after_ready is not None:
        service.after_ready()


def _log_tail(service: Service, lines: int) -> str:
    return f"--- last {lines} lines of {service.log_path} ---\n" + log_tail(service, lines)


def log_tail(service: Service, lines: int) -> str:
    try:
        text = service.log_path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log yet)"
    return "\n".join(text.splitlines()[-lines:])


def down(config: StackConfig, names: Iterable[str], progress: Progress) -> list[str]:
    """Stop the services this stack started (none named: every one, optional ones too);
    returns the names actually stopped."""
    stopped = []
    for service in selected(config, list(names) or ALL_SERVICE_NAMES):
        record = processes.read_pid_file(service.pid_path)
        if record is None:
            continue
        if processes.stop(record):
            progress(f"stopped {service.name} (pid {record.pid})")
            stopped.append(service.name)
        service.pid_path.unlink(missing_ok=True)
    return stopped


def status(config: StackConfig, names: Iterable[str] = ()) -> list[ServiceStatus]:
    """The named services (none named: the default four and the optional ones running)."""
    result = []
    for service in selected(config, list(names) or started_ones(config)):
        record = running_record(service)
        if record is None:
            result.append(
                ServiceStatus(
                    service.name, service.endpoint, State.STOPPED, None, service.version, None
                )
            )
            continue
        state = State.RUNNING if service.probe() else State.UNHEALTHY
        rss = processes.rss_bytes(record)
        result.append(
            ServiceStatus(service.name, record.endpoint, state, record.pid, record.version, rss)
        )
    return result
