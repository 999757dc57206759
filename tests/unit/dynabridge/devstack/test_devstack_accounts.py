from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from dynabridge.devstack.accounts import blocking_parent


@pytest.fixture
def open_base() -> Iterator[Path]:
    # Not tmp_path: pytest's basetemp chain is itself mode 0700, the very thing under test.
    base = Path(tempfile.mkdtemp(prefix="dynabridge-test-", dir="/tmp"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base)


def test_a_private_parent_blocks_the_service_user(open_base: Path) -> None:
    private = open_base / "private"
    target = private / "run" / "elasticsearch"
    target.mkdir(parents=True)
    private.chmod(0o700)
    assert blocking_parent(target) == private


def test_world_traversable_dirs_do_not_block(open_base: Path) -> None:
    target = open_base / "run" / "elasticsearch"
    target.mkdir(parents=True)
    assert blocking_parent(target) is None


def test_pytest_basetemp_blocks(tmp_path: Path) -> None:
    assert blocking_parent(tmp_path) is not None
