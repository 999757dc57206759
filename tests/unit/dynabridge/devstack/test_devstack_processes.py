from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from dynabridge.devstack.processes import (
    PidRecord,
    alive,
    group_members,
    parse_stat,
    read_pid_file,
    spawn,
    stop,
    write_pid_file,
)


def _record(pid: int) -> PidRecord:
    return PidRecord("moto", pid, "5.2.1", "http://127.0.0.1:5000", 1700000000.5)


def test_pid_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "run" / "moto.pid"
    write_pid_file(path, _record(4242))
    assert read_pid_file(path) == _record(4242)


def test_missing_or_garbled_pid_file_reads_as_nothing(tmp_path: Path) -> None:
    assert read_pid_file(tmp_path / "absent.pid") is None
    garbled = tmp_path / "garbled.pid"
    garbled.write_text('{"pid": ')
    assert read_pid_file(garbled) is None


def test_parse_stat_survives_parentheses_and_spaces_in_the_command_name() -> None:
    stat = parse_stat("1234 (java (x) y) S 1 1234 1234 0 -1 4194560 0 0")
    assert (stat.pid, stat.state, stat.pgid, stat.sid) == (1234, "S", 1234, 1234)


def test_a_record_of_someone_elses_process_is_not_ours() -> None:
    # Our own pid is a live process, but not the leader of a session we created.
    assert not alive(_record(os.getpid()))


def test_spawn_then_stop_the_whole_group(tmp_path: Path) -> None:
    # The leader forks a child, like the Elasticsearch CLI forks the server JVM.
    script = "import subprocess, time; subprocess.Popen(['sleep', '60']); time.sleep(60)"
    log = tmp_path / "svc.log"
    pid = spawn([sys.executable, "-c", script], env=dict(os.environ), cwd=tmp_path, log_path=log)
    record = _record(pid)
    deadline = time.monotonic() + 10
    while len(group_members(pid)) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(group_members(pid)) == 2
    assert alive(record)

    assert stop(record, timeout_s=5)
    assert group_members(pid) == []
    assert not stop(record)
