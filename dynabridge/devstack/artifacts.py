"""Fetch the servers from Maven Central into the ignored cache dir, once per pinned version.

An artifact counts as present only when its version marker exists and names the same Maven
coordinates; the marker is written last, so an interrupted fetch is redone, never half-used.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from dynabridge.devstack.config import StackConfig

MARKER = ".dynabridge-artifact"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"


class ArtifactError(RuntimeError):
    """A download or unpack failed; the message names the artifact."""


@dataclass(frozen=True, slots=True)
class Artifact:
    service: str
    coordinates: str
    home: Path
    kind: str  # "classpath" (Kafka jars via a pom) or "zip" (a distribution to unpack)
    plugin: str = ""
    """Maven coordinates of a plugin zip installed into the unpacked distribution (OpenSearch's
    security plugin), with ``plugin_java_home`` running the distribution's plugin tool."""
    plugin_java_home: Path | None = None
    extend: Callable[[Path], None] | None = None
    """Runs on the unpacked distribution (its home) before the marker is written."""

    @property
    def marker(self) -> Path:
        return self.home / MARKER


def artifacts(config: StackConfig) -> dict[str, Artifact]:
    cache = config.artifacts_dir
    return {
        "kafka": Artifact(
            "kafka",
            f"org.apache.kafka:kafka_2.13:{config.kafka_version}"
            f" + org.apache.logging.log4j:log4j-slf4j-impl:{config.log4j_version}",
            cache / f"kafka-{config.kafka_version}",
            "classpath",
        ),
        "elasticsearch": Artifact(
            "elasticsearch",
            f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{config.es_version}:zip",
            cache / f"elasticsearch-{config.es_version}",
            "zip",
        ),
        "opensearch": Artifact(
            "opensearch",
            f"org.opensearch.distribution.integ-test-zip:opensearch:{config.opensearch_version}:zip",
            cache / f"opensearch-{config.opensearch_version}",
            "zip",
        ),
    }


def present(artifact: Artifact) -> bool:
    try:
        return artifact.marker.read_text().strip() == artifact.coordinates
    except FileNotFoundError:
        return False


def fetch_all(
    config: StackConfig, wanted: Iterable[Artifact], progress: Callable[[str], None]
) -> None:
    """Fetch the missing artifacts in parallel (each is one Maven JVM, mostly waiting on I/O)."""
    missing = [a for a in wanted if not present(a)]
    for artifact in missing:
        progress(f"fetching {artifact.service}: {artifact.coordinates}")
    if not missing:
        return
    _ensure_traversable_dir(config.artifacts_dir)
    with ThreadPoolExecutor(max_workers=len(missing)) as pool:
        for future in [pool.submit(fetch, config, a) for a in missing]:
            future.result()


def fetch(config: StackConfig, artifact: Artifact) -> None:
    if shutil.which("mvn") is None:
        raise ArtifactError(
            f"cannot fetch {artifact.coordinates}: `mvn` (Maven 3.8+) is not on PATH"
        )
    cache = config.artifacts_dir
    with tempfile.TemporaryDirectory(prefix=f".fetch-{artifact.service}-", dir=cache) as tmp:
        staging = Path(tmp)
        if artifact.kind == "classpath":
            _fetch_classpath(config, artifact, staging / "home" / "libs")
        else:
            _fetch_zip(artifact, staging)
            if artifact.plugin:
                _install_plugin(artifact, staging)
            if artifact.extend is not None:
                artifact.extend(staging / "home")
        home = staging / "home"
        _make_world_readable(home)
        (home / MARKER).write_text(artifact.coordinates + "\n")
        if artifact.home.exists():
            shutil.rmtree(artifact.home)
        home.rename(artifact.home)


def _fetch_classpath(config: StackConfig, artifact: Artifact, libs: Path) -> None:
    _mvn(
        artifact,
        "-f",
        str(config.templates_dir / "kafka" / "pom.xml"),
        f"-Dkafka.version={config.kafka_version}",
        f"-Dlog4j.version={config.log4j_version}",
        f"{DEPENDENCY_PLUGIN}:copy-dependencies",
        f"-DoutputDirectory={libs}",
        "-DincludeScope=runtime",
    )
    if not any(libs.glob("kafka_2.13-*.jar")):
        raise ArtifactError(f"fetching {artifact.coordinates} produced no kafka_2.13 jar in {libs}")


def _fetch_zip(artifact: Artifact, staging: Path) -> None:
    download = staging / "download"
    _mvn(
        artifact,
        f"{DEPENDENCY_PLUGIN}:copy",
        # "<distribution> + <plugin>" when a plugin is installed into it.
        f"-Dartifact={artifact.coordinates.split(' + ')[0]}",
        f"-DoutputDirectory={download}",
    )
    zips = list(download.glob("*.zip"))
    if len(zips) != 1:
        raise ArtifactError(f"fetching {artifact.coordinates} gave {len(zips)} zip files")
    unpacked = staging / "unpacked"
    try:
        extract_zip(zips[0], unpacked)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ArtifactError(f"cannot unpack {artifact.coordinates} ({zips[0]}): {exc}") from exc
    tops = list(unpacked.iterdir())
    if len(tops) != 1 or not (tops[0] / "bin").is_dir():
        raise ArtifactError(f"{artifact.coordinates}: unexpected layout {[p.name for p in tops]}")
    tops[0].rename(staging / "home")


def _install_plugin(artifact: Artifact, staging: Path) -> None:
    download = staging / "plugin"
    _mvn(
        artifact,
        f"{DEPENDENCY_PLUGIN}:copy",
        f"-Dartifact={artifact.plugin}",
        f"-DoutputDirectory={download}",
    )
    (plugin_zip,) = download.glob("*.zip")
    home = staging / "home"
    tool = home / "bin" / "opensearch-plugin"
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "OPENSEARCH_JAVA_HOME": str(artifact.plugin_java_home),
        "OPENSEARCH_PATH_CONF": str(home / "config"),
    }
    result = subprocess.run(
        [str(tool), "install", "--batch", plugin_zip.as_uri()],
        capture_output=True, text=True, check=False, env=env,
    )  # fmt: skip
    if result.returncode != 0:
        raise ArtifactError(
            f"installing {artifact.plugin} into {artifact.coordinates} failed:\n"
            f"{result.stdout}{result.stderr}"
        )


def _mvn(artifact: Artifact, *args: str) -> None:
    argv = ["mvn", "-B", "-q", "-Dstyle.color=never", *args]
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-25:])
        raise ArtifactError(
            f"cannot fetch {artifact.coordinates} from Maven Central "
            f"(mvn exit {result.returncode}):\n{tail}"
        )


def extract_zip(archive: Path, target: Path) -> None:
    """Unzip, keeping the Unix permission bits (zipfile drops them; bin/* must stay executable)."""
    with zipfile.ZipFile(archive) as zf:
        for info in zf.infolist():
            path = target / info.filename
            if not path.resolve().is_relative_to(target.resolve()):
                raise ArtifactError(f"{archive}: entry {info.filename!r} escapes the target dir")
            zf.extract(info, target)
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                path.chmod(mode)


def _make_world_readable(root: Path) -> None:
    """The service user reads the unpacked homes; root owns them (``a+rX``)."""
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames:
            _add_mode(Path(dirpath) / name, 0o755)
        for name in filenames:
            path = Path(dirpath) / name
            executable = path.stat().st_mode & stat.S_IXUSR
            _add_mode(path, 0o755 if executable else 0o644)
    _add_mode(root, 0o755)


def _add_mode(path: Path, bits: int) -> None:
    path.chmod(path.stat().st_mode | bits)


def _ensure_traversable_dir(path: Path) -> None:
    path.mkdir(parents=True, exist_ok=True)
    _add_mode(path, 0o755)
