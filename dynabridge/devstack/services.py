"""The four services of the local stack: how each is configured, launched and probed.

A ``Service`` is data plus two callables: ``prepare`` (render configs, format storage, hand
dirs to the service user; returns the ``Launch``) and ``probe`` (is it ready?).
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from dynabridge.devstack import accounts, readiness
from dynabridge.devstack.artifacts import Artifact, artifacts
from dynabridge.devstack.config import HOST, StackConfig, env_var
from dynabridge.devstack.ports import PortClaim
from dynabridge.devstack.processes import RunAs
from dynabridge.devstack.templates import relocated_jvm_options, render

SERVICE_NAMES = ("kafka", "elasticsearch", "opensearch", "moto")
"""What ``dev up`` starts when no service is named."""
OPTIONAL_SERVICE_NAMES = ("streams-sim",)
"""Started only when named (``dev up streams-sim``, ``dev up --with streams-sim``)."""
ALL_SERVICE_NAMES = SERVICE_NAMES + OPTIONAL_SERVICE_NAMES
NEEDS = {"streams-sim": ("moto",)}
"""Services a named service cannot work without; ``up`` starts (or reuses) them too."""


class StartError(RuntimeError):
    """A service could not be started; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    run_as: RunAs | None = None


@dataclass(frozen=True, slots=True)
class Service:
    name: str
    version: str
    endpoint: str
    ports: tuple[PortClaim, ...]
    state_dir: Path
    probe: Callable[[], bool]
    prepare: Callable[[], Launch]
    artifact: Artifact | None = None
    java_home: Path | None = None
    java_env_var: str = ""
    needs_service_user: bool = field(default=False)
    after_ready: Callable[[], None] | None = None
    """Runs once the probe answers (also for a reused service): e.g. create an API key."""

    @property
    def log_path(self) -> Path:
        return self.state_dir / f"{self.name}.log"

    @property
    def pid_path(self) -> Path:
        return self.state_dir / f"{self.name}.pid"


def services(config: StackConfig) -> dict[str, Service]:
    arts = artifacts(config)
    return {
        "kafka": _kafka(config, arts["kafka"]),
        "elasticsearch": _elasticsearch(config, arts["elasticsearch"]),
        "opensearch": _opensearch(config, arts["opensearch"]),
        "moto": _moto(config),
        "streams-sim": _streams_sim(config),
    }


def check_java(service: Service) -> None:
    if service.java_home is None:
        return
    java = service.java_home / "bin" / "java"
    if not java.is_file():
        raise StartError(
            f"{service.name} needs Java at {java}, which does not exist; "
            f"install it or set {service.java_env_var} to a JDK home"
        )


def _heap(config: StackConfig) -> list[str]:
    return [f"-Xms{config.heap_mb}m", f"-Xmx{config.heap_mb}m"]


def _kafka(config: StackConfig, artifact: Artifact) -> Service:
    state = config.state_dir / "kafka"
    java_home = config.java17_home

    def prepare() -> Launch:
        properties = state / "server.properties"
        render(
            config.templates_dir / "kafka" / "server.properties.tmpl",
            properties,
            {
                "HOST": HOST,
                "BROKER_PORT": config.kafka_port,
                "CONTROLLER_PORT": config.kafka_controller_port,
                "DATA_DIR": state / "data",
            },
        )
        java = str(java_home / "bin" / "java")
        classpath = ["-cp", str(artifact.home / "libs" / "*")]
        logging = [
            f"-Dlog4j2.configurationFile={config.templates_dir / 'kafka' / 'log4j2.properties'}"
        ]
        # --ignore-formatted keeps the data (and the cluster id) across down/up.
        format_argv = [
            java, "-Xmx256m", *logging, *classpath, "kafka.tools.StorageTool", "format",
            "--cluster-id", _cluster_id(state / "cluster.id"), "--config", str(properties),
            "--ignore-formatted",
        ]  # fmt: skip
        result = subprocess.run(format_argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise StartError(f"kafka storage format failed:\n{result.stdout}{result.stderr}")
        argv = [
            java, *_heap(config), "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true", *logging, *classpath, "kafka.Kafka", str(properties),
        ]  # fmt: skip
        return Launch(argv=argv, env=_base_env(), cwd=state)

    return Service(
        name="kafka",
        version=config.kafka_version,
        endpoint=config.kafka_bootstrap,
        ports=(
            PortClaim(config.kafka_port, "kafka", "broker"),
            PortClaim(config.kafka_controller_port, "kafka", "controller"),
        ),
        state_dir=state,
        probe=lambda: readiness.kafka_ready(config.kafka_bootstrap),
        prepare=prepare,
        artifact=artifact,
        java_home=java_home,
        java_env_var=env_var("java17_home"),
    )


def _cluster_id(path: Path) -> str:
    """A 22-character base64url UUID (the only form ``Uuid.fromString`` accepts), kept on disk.

    Never one starting with ``-`` (1 in 64): the storage tool would read it as an option and
    refuse to format (Kafka's own ``Uuid.randomUuid`` skips those too). A kept one starting
    with ``-`` never formatted anything, so it is replaced."""
    if path.exists() and not (kept := path.read_text().strip()).startswith("-"):
        return kept
    cluster_id = "-"
    while cluster_id.startswith("-"):
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(cluster_id + "\n")
    return cluster_id


@dataclass(frozen=True, slots=True)
class _SearchFlavour:
    name: str
    version: str
    http_port: int
    transport_port: int
    java_home: Path
    java_env_var: str
    env_prefix: str  # ES or OPENSEARCH: ES_JAVA_HOME, OPENSEARCH_PATH_CONF, ...
    yml: str
    program: str = ""
    """bin/<program> of the distribution; empty: the flavour's name."""
    template_dir: str = ""
    """deploy/local/<template_dir>/<yml>.tmpl; empty: the flavour's name."""
    values: Callable[[], Mapping[str, object]] | None = None
    """More template placeholders, computed at prepare time."""
    setup: Callable[[Path, Launch], None] | None = None
    """After the config dir is rendered and handed over: (config dir, launch) -> files."""
    url: str = ""
    """Empty: http://HOST:http_port."""
    probe: Callable[[], bool] | None = None
    after_ready: Callable[[], None] | None = None


def _elasticsearch(config: StackConfig, artifact: Artifact) -> Service:
    flavour = _SearchFlavour(
        "elasticsearch", config.es_version, config.es_port, config.es_transport_port,
        config.es_java_home, env_var("es_java_home"), "ES", "elasticsearch.yml",
    )  # fmt: skip
    return _search_service(config, artifact, flavour)


def _opensearch(config: StackConfig, artifact: Artifact) -> Service:
    flavour = _SearchFlavour(
        "opensearch", config.opensearch_version, config.opensearch_port,
        config.opensearch_transport_port, config.java17_home, env_var("java17_home"),
        "OPENSEARCH", "opensearch.yml",
    )  # fmt: skip
    return _search_service(config, artifact, flavour)


def _search_service(config: StackConfig, artifact: Artifact, flavour: _SearchFlavour) -> Service:
    state = config.state_dir / flavour.name
    url = flavour.url or f"http://{HOST}:{flavour.http_port}"

    def prepare() -> Launch:
        run_as = accounts.service_account(config.service_user)
        for path in (state, artifact.home):
            blocked = accounts.blocking_parent(path)
            if run_as is not None and blocked is not None:
                raise StartError(
                    f"{flavour.name} runs as user {config.service_user!r}, which cannot traverse "
                    f"{blocked}; put the cache elsewhere ({env_var('cache_dir')})"
                )
        conf = state / "config"
        # The distribution's config dir (jvm.options, log4j2.properties) plus our yml;
        # the keystore that the first start writes into conf/ is kept.
        shutil.copytree(artifact.home / "config", conf, dirs_exist_ok=True)
        jvm_options = conf / "jvm.options"
        jvm_options.write_text(relocated_jvm_options(jvm_options.read_text(), state))
        render(
            config.templates_dir / (flavour.template_dir or flavour.name) / f"{flavour.yml}.tmpl",
            conf / flavour.yml,
            {
                "HOST": HOST,
                "HTTP_PORT": flavour.http_port,
                "TRANSPORT_PORT": flavour.transport_port,
                "DATA_DIR": state / "data",
                "LOGS_DIR": state / "logs",
                **(flavour.values() if flavour.values else {}),
            },
        )
        for sub in ("data", "logs", "tmp"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        state.chmod(0o755)
        accounts.hand_over(run_as, conf, state / "data", state / "logs", state / "tmp")
        prefix = flavour.env_prefix
        env = {
            **_base_env(),
            "HOME": str(state / "tmp"),
            f"{prefix}_JAVA_HOME": str(flavour.java_home),
            f"{prefix}_PATH_CONF": str(conf),
            f"{prefix}_TMPDIR": str(state / "tmp"),
            # After jvm.options, so these win over its -Xms1g/-Xmx1g (OpenSearch).
            f"{prefix}_JAVA_OPTS": " ".join(_heap(config)),
        }
        program = artifact.home / "bin" / (flavour.program or flavour.name)
        launch = Launch([str(program)], env, state, run_as)
        if flavour.setup is not None:
            flavour.setup(conf, launch)
        return launch

    return Service(
        name=flavour.name,
        version=flavour.version,
        endpoint=url,
        ports=(
            PortClaim(flavour.http_port, flavour.name, "http"),
            PortClaim(flavour.transport_port, flavour.name, "transport"),
        ),
        state_dir=state,
        probe=flavour.probe or (lambda: readiness.search_ready(url)),
        prepare=prepare,
        artifact=artifact,
        java_home=flavour.java_home,
        java_env_var=flavour.java_env_var,
        needs_service_user=True,
        after_ready=flavour.after_ready,
    )


def _moto(config: StackConfig) -> Service:
    state = config.state_dir / "moto"

    def prepare() -> Launch:
        argv = [sys.executable, "-m", "moto.server", "-H", HOST, "-p", str(config.moto_port)]
        return Launch(argv, _base_env(), state)

    return Service(
        name="moto",
        version=metadata.version("moto"),
        endpoint=config.moto_endpoint,
        ports=(PortClaim(config.moto_port, "moto", "http"),),
        state_dir=state,
        probe=lambda: readiness.moto_ready(config.moto_endpoint),
        prepare=prepare,
    )


def _streams_sim(config: StackConfig) -> Service:
    """The project's DynamoDB Streams simulator in front of moto (docs/testing.md)."""
    state = config.state_dir / "streams-sim"
    endpoint = config.streams_sim_endpoint

    def prepare() -> Launch:
        argv = [
            sys.executable, "-m", "dynabridge.streamsim", "--host", HOST,
            "--port", str(config.streams_sim_port), "--moto-endpoint", config.moto_endpoint,
        ]  # fmt: skip
        return Launch(argv, _base_env(), state)

    return Service(
        name="streams-sim",
        version=metadata.version("dynabridge"),
        endpoint=endpoint,
        ports=(PortClaim(config.streams_sim_port, "streams-sim", "http"),),
        state_dir=state,
        probe=lambda: readiness.streams_sim_ready(endpoint),
        prepare=prepare,
    )


def _base_env() -> dict[str, str]:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
