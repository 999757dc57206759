"""The secure profile (``dev up --secure``): Kafka, Elasticsearch and OpenSearch that require
TLS and credentials, on ports of their own, beside the plain stack.

- ``kafka-secure``: SASL_SSL with SCRAM-SHA-512 (the user is created when the storage is
  formatted) and an SSL listener that requires a client certificate (mTLS).
- ``elasticsearch-secure``: x-pack security, TLS on HTTP, a file-realm user, an API key made
  once the node answers.
- ``opensearch-secure``: the security plugin (Maven Central serves it for 2.19.3, 2.19.4 and
  3.4.0 only, each for exactly that OpenSearch), TLS on HTTP and transport, a bcrypt user.

Secrets are generated once and kept in ``<run>/secure/secrets.json`` (mode 0600), so a restart
keeps the users the servers already hold; they reach a configuration only as environment
variables (``dev config --secure --env``).
"""

from __future__ import annotations

import base64
import json
import secrets as random_secrets
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from dynabridge.devstack import accounts, certs, readiness
from dynabridge.devstack.artifacts import Artifact, ArtifactError
from dynabridge.devstack.config import HOST, StackConfig, env_var
from dynabridge.devstack.ports import PortClaim
from dynabridge.devstack.services import (
    Launch,
    Service,
    StartError,
    _base_env,
    _cluster_id,
    _heap,
    _search_service,
    _SearchFlavour,
)
from dynabridge.devstack.templates import render

SECURE_SERVICE_NAMES = ("kafka-secure", "elasticsearch-secure", "opensearch-secure")
SCRAM = "SCRAM-SHA-512"


@dataclass(frozen=True, slots=True)
class Secrets:
    """The profile's credentials: one user per server (superuser / all_access), one API key."""

    kafka_username: str
    kafka_password: str
    es_username: str
    es_password: str
    opensearch_username: str
    opensearch_password: str
    es_api_key: str | None = None
    """The ``encoded`` form (base64 of ``id:key``), as the ``ApiKey`` header carries it."""


def secure_dir(config: StackConfig) -> Path:
    return config.state_dir / "secure"


# The three services are prepared in parallel threads: the first to arrive makes the CA and
# the secrets, the others must read the same ones (two CAs or two passwords would not match).
_MAKING = threading.Lock()


def tls(config: StackConfig) -> certs.Tls:
    with _MAKING:
        return certs.ensure(secure_dir(config) / "tls")


def _secrets_path(config: StackConfig) -> Path:
    return secure_dir(config) / "secrets.json"


def load_secrets(config: StackConfig) -> Secrets | None:
    try:
        return Secrets(**json.loads(_secrets_path(config).read_text()))
    except FileNotFoundError:
        return None


def ensure_secrets(config: StackConfig) -> Secrets:
    """The kept secrets, or new ones (hex: safe in a SCRAM spec, a YAML file and a shell)."""
    with _MAKING:
        found = load_secrets(config)
        if found is not None:
            return found
        return _new_secrets(config)


def _new_secrets(config: StackConfig) -> Secrets:
    made = Secrets(
        kafka_username="dynabridge",
        kafka_password=random_secrets.token_hex(16),
        es_username="dynabridge",
        es_password=random_secrets.token_hex(16),
        opensearch_username="dynabridge",
        opensearch_password=random_secrets.token_hex(16),
    )
    _save_secrets(config, made)
    return made


def _save_secrets(config: StackConfig, value: Secrets) -> None:
    path = _secrets_path(config)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.parent.chmod(0o755)
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_text(json.dumps(asdict(value), indent=2) + "\n")
    tmp.replace(path)


def kafka_sasl_security(config: StackConfig, value: Secrets) -> dict[str, str]:
    """librdkafka properties of the SASL_SSL listener."""
    return {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": SCRAM,
        "sasl.username": value.kafka_username,
        "sasl.password": value.kafka_password,
        "ssl.ca.location": str(tls(config).ca),
    }


def kafka_mtls_security(config: StackConfig) -> dict[str, str]:
    """librdkafka properties of the mTLS listener."""
    material = tls(config)
    return {
        "security.protocol": "SSL",
        "ssl.ca.location": str(material.ca),
        "ssl.certificate.location": str(material.client_cert),
        "ssl.key.location": str(material.client_key),
    }


SHIM = "pattern-capture-shim"


def _pattern_capture_shim(config: StackConfig) -> Callable[[Path], None]:
    """Compile deploy/local/elasticsearch-secure/PatternCaptureShim.java into a plugin of the
    distribution at ``home``.

    API keys live in the .security index, whose "email" analyzer names analysis-common's
    ``uax_url_email`` tokenizer and ``pattern_capture``, ``lowercase``, ``unique`` filters; the
    integ-test zip has no analysis-common (nor is it on Maven Central), so without them no API
    key can be created. The plugin registers those names over Lucene's own classes
    (``pattern_capture`` passes tokens through): it only analyses the users' e-mail field of
    that index, which the profile does not use.
    """

    def build(home: Path) -> None:
        source = config.templates_dir / "elasticsearch-secure" / "PatternCaptureShim.java"
        bin_dir = config.es_java_home / "bin"
        with tempfile.TemporaryDirectory() as tmp:
            classes = Path(tmp) / "classes"
            target = home / "plugins" / SHIM
            target.mkdir(parents=True)
            steps = [
                [str(bin_dir / "javac"), "--release", "21", "-cp", f"{home / 'lib'}/*",
                 "-d", str(classes), str(source)],
                [str(bin_dir / "jar"), "cf", str(target / f"{SHIM}.jar"), "-C", str(classes), "."],
            ]  # fmt: skip
            for argv in steps:
                result = subprocess.run(argv, capture_output=True, text=True, check=False)
                if result.returncode != 0:
                    raise ArtifactError(f"building the {SHIM} plugin failed:\n{result.stderr}")
        (target / "plugin-descriptor.properties").write_text(
            "description=pass-through pattern_capture token filter (dynabridge dev stack)\n"
            f"version={config.es_version}\nname={SHIM}\n"
            "classname=org.dynabridge.devshim.PatternCaptureShim\n"
            f"java.version=21\nelasticsearch.version={config.es_version}\n"
        )

    return build


def artifacts(config: StackConfig) -> dict[str, Artifact]:
    cache = config.artifacts_dir
    os_version, plugin = config.opensearch_secure_version, config.opensearch_security_plugin_version
    return {
        "elasticsearch-secure": Artifact(
            "elasticsearch-secure",
            f"org.elasticsearch.distribution.integ-test-zip:elasticsearch:{config.es_version}:zip"
            f" + {SHIM} v2 (deploy/local/elasticsearch-secure)",
            cache / f"elasticsearch-{config.es_version}-{SHIM}",
            "zip",
            extend=_pattern_capture_shim(config),
        ),
        "opensearch-secure": Artifact(
            "opensearch-secure",
            f"org.opensearch.distribution.integ-test-zip:opensearch:{os_version}:zip"
            f" + org.opensearch.plugin:opensearch-security:{plugin}:zip",
            cache / f"opensearch-{os_version}-security-{plugin}",
            "zip",
            plugin=f"org.opensearch.plugin:opensearch-security:{plugin}:zip",
            plugin_java_home=config.java17_home,
        ),
    }


def services(config: StackConfig, plain: dict[str, Service]) -> dict[str, Service]:
    """The secure services; ``plain`` lends them its Kafka download."""
    kafka = plain["kafka"].artifact
    assert kafka is not None
    own = artifacts(config)
    return {
        "kafka-secure": _kafka(config, kafka),
        "elasticsearch-secure": _elasticsearch(config, own["elasticsearch-secure"]),
        "opensearch-secure": _opensearch(config, own["opensearch-secure"]),
    }


# ---------------------------------------------------------------------------------- Kafka


def _pem_inline(path: Path) -> str:
    """A PEM file as one .properties value: Java's Properties turns ``\\n`` back into newlines."""
    return path.read_text().strip().replace("\n", "\\n")


def _kafka(config: StackConfig, artifact: Artifact) -> Service:
    state = config.state_dir / "kafka-secure"
    java_home = config.java17_home

    def prepare() -> Launch:
        material, value = tls(config), ensure_secrets(config)
        properties = state / "server.properties"
        render(
            config.templates_dir / "kafka" / "server-secure.properties.tmpl",
            properties,
            {
                "HOST": HOST,
                "SASL_PORT": config.kafka_secure_sasl_port,
                "MTLS_PORT": config.kafka_secure_mtls_port,
                "CONTROLLER_PORT": config.kafka_secure_controller_port,
                "DATA_DIR": state / "data",
                "CERT_CHAIN": _pem_inline(material.server_cert),
                "PRIVATE_KEY": _pem_inline(material.server_key),
                "CA": _pem_inline(material.ca),
            },
        )
        properties.chmod(0o600)
        java = str(java_home / "bin" / "java")
        classpath = ["-cp", str(artifact.home / "libs" / "*")]
        logging = [
            f"-Dlog4j2.configurationFile={config.templates_dir / 'kafka' / 'log4j2.properties'}"
        ]
        scram_user = f"{SCRAM}=[name={value.kafka_username},password={value.kafka_password}]"
        # The SCRAM user goes into the metadata log when the storage is formatted; with
        # --ignore-formatted a restart keeps the user (and secrets.json keeps its password).
        format_argv = [
            java, "-Xmx256m", *logging, *classpath, "kafka.tools.StorageTool", "format",
            "--cluster-id", _cluster_id(state / "cluster.id"), "--config", str(properties),
            "--ignore-formatted", "--add-scram", scram_user,
        ]  # fmt: skip
        result = subprocess.run(format_argv, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            output = (result.stdout + result.stderr).replace(value.kafka_password, "***")
            raise StartError(f"kafka-secure storage format failed:\n{output}")
        argv = [
            java, *_heap(config), "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true", *logging, *classpath, "kafka.Kafka", str(properties),
        ]  # fmt: skip
        return Launch(argv=argv, env=_base_env(), cwd=state)

    def probe() -> bool:
        value = load_secrets(config)
        return value is not None and readiness.kafka_ready(
            config.kafka_secure_sasl_bootstrap, security=kafka_sasl_security(config, value)
        )

    return Service(
        name="kafka-secure",
        version=config.kafka_version,
        endpoint=f"{config.kafka_secure_sasl_bootstrap} (SASL_SSL), "
        f"{config.kafka_secure_mtls_bootstrap} (mTLS)",
        ports=(
            PortClaim(config.kafka_secure_sasl_port, "kafka-secure", "SASL_SSL"),
            PortClaim(config.kafka_secure_mtls_port, "kafka-secure", "mTLS"),
            PortClaim(config.kafka_secure_controller_port, "kafka-secure", "controller"),
        ),
        state_dir=state,
        probe=probe,
        prepare=prepare,
        artifact=artifact,
        java_home=java_home,
        java_env_var=env_var("java17_home"),
    )


# -------------------------------------------------------------------------- search engines


def _install_certs(config: StackConfig, conf: Path, launch: Launch) -> None:
    material = tls(config)
    target = conf / "certs"
    target.mkdir(exist_ok=True)
    for source in (material.ca, material.server_cert, material.server_key):
        shutil.copyfile(source, target / source.name)
    accounts.hand_over(launch.run_as, target)


def _context(config: StackConfig) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls(config).ca))


def https_json(
    config: StackConfig,
    method: str,
    url: str,
    *,
    basic_auth: tuple[str, str] | None = None,
    api_key: str | None = None,
    body: Any = None,
) -> tuple[int, Any]:
    """One request to a secure engine, trusting the profile's CA: (status, JSON answer)."""
    headers = {"Content-Type": "application/json"}
    if basic_auth is not None:
        token = base64.b64encode(":".join(basic_auth).encode()).decode("ascii")
        headers["Authorization"] = f"Basic {token}"
    if api_key is not None:
        headers["Authorization"] = f"ApiKey {api_key}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)  # noqa: S310
    try:
        with urllib.request.urlopen(  # noqa: S310
            request, timeout=30, context=_context(config)
        ) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def _elasticsearch(config: StackConfig, artifact: Artifact) -> Service:
    url = config.es_secure_url

    def setup(conf: Path, launch: Launch) -> None:
        _install_certs(config, conf, launch)
        value = ensure_secrets(config)
        # The distribution's empty file-realm files were copied over ours: add the user again.
        tool = artifact.home / "bin" / "elasticsearch-users"
        argv = [str(tool), "useradd", value.es_username, "-p", value.es_password, "-r", "superuser"]
        run_as = launch.run_as
        result = subprocess.run(
            argv, env=launch.env, cwd=launch.cwd, capture_output=True, text=True, check=False,
            user=run_as.uid if run_as else None, group=run_as.gid if run_as else None,
            extra_groups=[] if run_as else None,
        )  # fmt: skip
        if result.returncode != 0:
            output = (result.stdout + result.stderr).replace(value.es_password, "***")
            raise StartError(f"elasticsearch-users useradd failed:\n{output}")

    def probe() -> bool:
        value = load_secrets(config)
        return value is not None and readiness.search_ready(
            url, ca=tls(config).ca, basic_auth=(value.es_username, value.es_password)
        )

    def after_ready() -> None:
        value = ensure_secrets(config)
        if value.es_api_key is not None:
            status, _ = https_json(
                config, "GET", f"{url}/_security/_authenticate", api_key=value.es_api_key
            )
            if status == 200:
                return
        status, answer = https_json(
            config, "POST", f"{url}/_security/api_key",
            basic_auth=(value.es_username, value.es_password), body={"name": "dynabridge-dev"},
        )  # fmt: skip
        if status == 200 and "encoded" in answer:
            _save_secrets(config, replace(value, es_api_key=str(answer["encoded"])))
            return
        # Without the pattern_capture shim (an older cache) the .security index cannot be
        # created: users and TLS work regardless; `dev config --search es-api-key` says so.
        reason = answer.get("error", {}).get("reason") if isinstance(answer, dict) else None
        _save_secrets(config, replace(value, es_api_key=None))
        print(f"[dev] no API key on {url}: HTTP {status} {reason}", file=sys.stderr)

    flavour = _SearchFlavour(
        "elasticsearch-secure", config.es_version, config.es_secure_port,
        config.es_secure_transport_port, config.es_java_home, env_var("es_java_home"), "ES",
        "elasticsearch.yml", program="elasticsearch", setup=setup, url=url, probe=probe,
        after_ready=after_ready,
    )  # fmt: skip
    return _search_service(config, artifact, flavour)


def _internal_users(value: Secrets) -> str:
    """internal_users.yml of the security plugin: our user, mapped to all_access via "admin"."""
    import bcrypt

    hashed = bcrypt.hashpw(value.opensearch_password.encode(), bcrypt.gensalt(12)).decode()
    return (
        '_meta:\n  type: "internalusers"\n  config_version: 2\n'
        f"{value.opensearch_username}:\n"
        f'  hash: "{hashed}"\n  reserved: true\n  backend_roles: ["admin"]\n'
        '  description: "dynabridge dev stack user"\n'
    )


def _opensearch(config: StackConfig, artifact: Artifact) -> Service:
    url = config.opensearch_secure_url

    def setup(conf: Path, launch: Launch) -> None:
        _install_certs(config, conf, launch)
        users = conf / "opensearch-security" / "internal_users.yml"
        users.write_text(_internal_users(ensure_secrets(config)))
        accounts.hand_over(launch.run_as, users)

    def probe() -> bool:
        value = load_secrets(config)
        return value is not None and readiness.search_ready(
            url,
            ca=tls(config).ca,
            basic_auth=(value.opensearch_username, value.opensearch_password),
        )

    flavour = _SearchFlavour(
        "opensearch-secure", config.opensearch_secure_version, config.opensearch_secure_port,
        config.opensearch_secure_transport_port, config.java17_home, env_var("java17_home"),
        "OPENSEARCH", "opensearch.yml", program="opensearch", setup=setup, url=url, probe=probe,
        values=lambda: {
            "ADMIN_DN": certs.distinguished_name(tls(config).admin_cert),
            "NODE_DN": certs.distinguished_name(tls(config).server_cert),
        },
    )  # fmt: skip
    return _search_service(config, artifact, flavour)
