"""The two pipeline processes as children: started in their own session, stopped for sure.

Invariant: every child this module starts is gone when :meth:`Children.stop` returns (SIGTERM,
a bounded wait, then SIGKILL of its process group). On Linux a child also gets SIGTERM if the
demo itself dies without cleaning up (``PR_SET_PDEATHSIG``).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from dynabridge.demo.errors import DemoError

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1
LOCAL_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "demo",
    "AWS_SECRET_ACCESS_KEY": "demo",
    "AWS_SESSION_TOKEN": "",
}
"""moto accepts any credentials; these keep real ones from the environment out of the demo."""


def child_env(**extra: str) -> dict[str, str]:
    return {**os.environ, **LOCAL_AWS_ENV, **extra}


def dynabridge_argv() -> list[str]:
    """How to run ``dynabridge`` from this interpreter's environment, installed script or not."""
    script = Path(sys.executable).with_name("dynabridge")
    if script.is_file():
        return [str(script)]
    found = shutil.which("dynabridge")
    if found:
        return [found]
    return [sys.executable, "-c", "import sys; from dynabridge.cli import main; sys.exit(main())"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: the kernel sends SIGTERM when the demo exits.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    health_port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.health_port}"

    def exited(self) -> int | None:
        return self.process.poll()

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class Children:
    def __init__(self) -> None:
        self._children: list[Child] = []

    def __iter__(self) -> Iterator[Child]:
        return iter(self._children)

    def start(self, name: str, args: Sequence[str], log_path: Path) -> Child:
        """Start ``dynabridge ARGS`` with stdout and stderr to ``log_path``, its health endpoint
        on a free port (``DYNABRIDGE_METRICS__PORT``: both children read one config file)."""
        health_port = free_port()
        env = child_env(DYNABRIDGE_METRICS__PORT=str(health_port))
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as out:
            process = subprocess.Popen(
                [*dynabridge_argv(), *args],
                stdin=subprocess.DEVNULL,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the demo only; it stops the children
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        child = Child(name, process, log_path, health_port)
        self._children.append(child)
        return child

    def stop(self, timeout_s: float = 20.0) -> dict[str, int]:
        """SIGTERM every child, wait up to ``timeout_s``, SIGKILL what is left; exit codes."""
        for child in self._children:
            if child.exited() is None:
                _signal_group(child, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        codes: dict[str, int] = {}
        for child in self._children:
            try:
                codes[child.name] = child.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s: killing it", child.name, timeout_s)
                _signal_group(child, signal.SIGKILL)
                codes[child.name] = child.process.wait()
        self._children.clear()
        return codes


def _signal_group(child: Child, signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.process.pid, signum)


def wait_ready(children: Sequence[Child], timeout_s: float) -> None:
    """Until every child answers ``/readyz`` with 200; fails early when one exits."""
    deadline = time.monotonic() + timeout_s
    waiting = list(children)
    while waiting:
        for child in list(waiting):
            code = child.exited()
            if code is not None:
                raise DemoError(
                    f"{child.name} exited with code {code} while starting; "
                    f"last lines of {child.log_path}:\n{child.log_tail()}"
                )
            if _get(child.url + "/readyz") is not None:
                waiting.remove(child)
        if waiting and time.monotonic() > deadline:
            names = ", ".join(c.name for c in waiting)
            raise DemoError(f"{names} not ready after {timeout_s:.0f} s (logs in the run dir)")
        if waiting:
            time.sleep(0.2)


def metric_total(child: Child, name: str) -> float | None:
    """The sum over every label set of counter ``name`` on the child's /metrics, None if
    unreachable."""
    body = _get(child.url + "/metrics")
    if body is None:
        return None
    total = 0.0
    for family in text_string_to_metric_families(body):
        if family.name == name:
            total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return total


def _get(url: str, timeout_s: float = 1.0) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:  # noqa: S310 - our child
            return str(response.read().decode("utf-8"))
    except (urllib.error.URLError, OSError):
        return None
