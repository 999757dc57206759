"""The unprivileged account Elasticsearch and OpenSearch run as: both refuse root, with no
override. As root we create a system user (once) and hand it the services' state dirs; as
any other user the services simply run as that user.
"""

from __future__ import annotations

import grp
import os
import pwd
import stat
import subprocess
import threading
from pathlib import Path

from dynabridge.devstack.processes import RunAs

# Elasticsearch and OpenSearch are prepared in parallel threads: create the account once.
_CREATING = threading.Lock()


class AccountError(RuntimeError):
    """The service account cannot be created or cannot reach its files."""


def service_account(name: str) -> RunAs | None:
    """The account to switch to, creating it if needed; None when we are not root."""
    if os.geteuid() != 0:
        return None
    with _CREATING:
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            create_account(name)
            entry = pwd.getpwnam(name)
    return RunAs(uid=entry.pw_uid, gid=entry.pw_gid)


def create_account(name: str) -> None:
    try:
        grp.getgrnam(name)
        group = ["--gid", name]
    except KeyError:
        group = ["--user-group"]
    argv = [
        "useradd", "--system", *group, "--no-create-home",
        "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name,
    ]  # fmt: skip
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise AccountError(f"cannot create service user {name!r}: {result.stderr.strip()}")


def blocking_parent(path: Path) -> Path | None:
    """The first directory on the way to ``path`` that other users cannot traverse.

    The service user is neither owner nor group of root-owned parents, so it needs ``o+x``
    on every one of them (a checkout under /root, mode 0700, fails here).
    """
    for parent in [*reversed(path.resolve().parents), path.resolve()]:
        if not parent.exists():
            break
        if not parent.stat().st_mode & stat.S_IXOTH:
            return parent
    return None


def hand_over(run_as: RunAs | None, *paths: Path) -> None:
    """Give the service account its writable dirs (config, data, logs, tmp)."""
    if run_as is None:
        return
    for root in paths:
        os.chown(root, run_as.uid, run_as.gid)
        for dirpath, dirnames, filenames in os.walk(root):
            for name in [*dirnames, *filenames]:
                os.chown(Path(dirpath) / name, run_as.uid, run_as.gid, follow_symlinks=False)
