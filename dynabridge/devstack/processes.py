"""Processes the dev stack started: spawn each in its own session, record it in a pid file,
find it again, stop it.

Invariant: we only ever signal a process group whose leader we started (``setsid``: the
group id and the session id are the pid in our pid file). Linux does not reuse a pid while a
session or group with that id still has members, so a non-empty group is still ours; when the
group is gone, the pid file is stale and is ignored.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class PidRecord:
    """What ``up`` wrote down about a service process it started."""

    service: str
    pid: int
    version: str
    endpoint: str
    started_at: float

    def dumps(self) -> str:
        return json.dumps(asdict(self), sort_keys=True) + "\n"

    @classmethod
    def loads(cls, text: str) -> PidRecord:
        data = json.loads(text)
        return cls(
            service=str(data["service"]),
            pid=int(data["pid"]),
            version=str(data["version"]),
            endpoint=str(data["endpoint"]),
            started_at=float(data["started_at"]),
        )


def read_pid_file(path: Path) -> PidRecord | None:
    """The record, or None if the file is missing or unreadable (a half-written file)."""
    try:
        return PidRecord.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError):
        return None


def write_pid_file(path: Path, record: PidRecord) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(record.dumps())
    tmp.replace(path)


@dataclass(frozen=True, slots=True)
class RunAs:
    """The unprivileged account a service runs as (Elasticsearch and OpenSearch refuse root)."""

    uid: int
    gid: int


def spawn(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    cwd: Path,
    log_path: Path,
    run_as: RunAs | None = None,
) -> int:
    """Start ``argv`` detached (new session), stdout and stderr appended to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            user=run_as.uid if run_as else None,
            group=run_as.gid if run_as else None,
            extra_groups=[] if run_as else None,
        )
    return proc.pid


@dataclass(frozen=True, slots=True)
class ProcStat:
    pid: int
    state: str
    pgid: int
    sid: int


def parse_stat(text: str) -> ProcStat:
    """Parse ``/proc/<pid>/stat``; the command name may itself contain spaces and parens."""
    head, _, tail = text.rpartition(")")
    pid = int(head.split("(", 1)[0])
    fields = tail.split()
    return ProcStat(pid=pid, state=fields[0], pgid=int(fields[2]), sid=int(fields[3]))


def _stat(pid: int) -> ProcStat | None:
    try:
        return parse_stat((PROC / str(pid) / "stat").read_text())
    except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
        return None


def group_members(leader: int) -> list[int]:
    """Live (non-zombie) processes of the session/group that ``leader`` created with setsid."""
    _reap(leader)
    members = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        stat = _stat(int(entry.name))
        if stat and stat.pgid == leader and stat.sid == leader and stat.state != "Z":
            members.append(stat.pid)
    return members


def alive(record: PidRecord) -> bool:
    return bool(group_members(record.pid))


def rss_bytes(record: PidRecord) -> int:
    """Resident memory of the whole group (ES runs a CLI JVM and a server JVM)."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for pid in group_members(record.pid):
        try:
            total += int((PROC / str(pid) / "statm").read_text().split()[1]) * page
        except (FileNotFoundError, ProcessLookupError, IndexError, ValueError):
            continue
    return total


def stop(record: PidRecord, timeout_s: float = 30.0) -> bool:
    """SIGTERM the group, wait for it to exit, SIGKILL after ``timeout_s``.

    Returns False if nothing of ours was running.
    """
    if not group_members(record.pid):
        return False
    _signal_group(record.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while group_members(record.pid):
        if time.monotonic() > deadline:
            _signal_group(record.pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
        time.sleep(0.2)
    return True


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _reap(pid: int) -> None:
    """Collect the exit status if the process is our own child (the fixture's case)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
