from __future__ import annotations

import stat
import zipfile
from pathlib import Path

from dynabridge.devstack.artifacts import MARKER, artifacts, extract_zip, present
from dynabridge.devstack.config import load


def test_extract_keeps_the_executable_bit(tmp_path: Path) -> None:
    archive = tmp_path / "dist.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        script = zipfile.ZipInfo("dist-1/bin/server")
        script.external_attr = (stat.S_IFREG | 0o755) << 16
        zf.writestr(script, "#!/bin/sh\n")
        zf.writestr("dist-1/config/server.yml", "a: 1\n")
    extract_zip(archive, tmp_path / "out")
    assert (tmp_path / "out/dist-1/bin/server").stat().st_mode & 0o777 == 0o755
    assert (tmp_path / "out/dist-1/config/server.yml").read_text() == "a: 1\n"


def test_an_artifact_is_present_only_with_a_marker_for_the_same_coordinates(
    tmp_path: Path,
) -> None:
    artifact = artifacts(load({"DYNABRIDGE_DEV_CACHE_DIR": str(tmp_path)}))["elasticsearch"]
    assert artifact.home == tmp_path / "elasticsearch-9.5.4"
    assert not present(artifact)
    artifact.home.mkdir()
    assert not present(artifact)  # an unpacked home without a marker is a half-finished fetch
    (artifact.home / MARKER).write_text("org.elasticsearch.distribution.integ-test-zip:x:9.0.0\n")
    assert not present(artifact)
    (artifact.home / MARKER).write_text(artifact.coordinates + "\n")
    assert present(artifact)
