"""Kafka's cluster id: kept across restarts, and never one the storage tool reads as an option."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dynabridge.devstack import services


def _ids(*first_bytes: int) -> Iterator[uuid.UUID]:
    for byte in first_bytes:
        yield uuid.UUID(bytes=bytes([byte]) + bytes(15))


def test_an_id_starting_with_a_dash_is_never_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert base64.urlsafe_b64encode(bytes([0xF8]) + bytes(15)).startswith(b"-")
    ids = _ids(0xF8, 0xFB, 0x10)
    monkeypatch.setattr(uuid, "uuid4", lambda: next(ids))
    chosen = services._cluster_id(tmp_path / "cluster.id")
    assert chosen == base64.urlsafe_b64encode(bytes([0x10]) + bytes(15)).decode().rstrip("=")
    assert (tmp_path / "cluster.id").read_text().strip() == chosen


def test_a_kept_id_is_reused_unless_it_starts_with_a_dash(tmp_path: Path) -> None:
    path = tmp_path / "cluster.id"
    path.write_text("AAAAAAAAAAAAAAAAAAAAAA\n")
    assert services._cluster_id(path) == "AAAAAAAAAAAAAAAAAAAAAA"
    path.write_text("-AAAAAAAAAAAAAAAAAAAAA\n")  # never formatted anything: replaced
    replaced = services._cluster_id(path)
    assert not replaced.startswith("-")
    assert len(replaced) == 22
    assert path.read_text().strip() == replaced
