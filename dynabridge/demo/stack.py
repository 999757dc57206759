"""The local stack for a demo: reuse whatever answers, start the rest with ``dev up``'s code.

Services answering without a pid file of ours (docker compose, another checkout) are used as
they are and never handed to ``dev up``, which would find their ports taken.
"""

from __future__ import annotations

from collections.abc import Callable

from bridge.runtime.settings import SearchBackend
from dynabridge.demo.errors import DemoError
from dynabridge.demo.runconfig import Endpoints
from dynabridge.devstack import readiness
from dynabridge.devstack import stack as devstack
from dynabridge.devstack.accounts import AccountError
from dynabridge.devstack.artifacts import ArtifactError
from dynabridge.devstack.config import ConfigError, StackConfig
from dynabridge.devstack.ports import PortInUseError
from dynabridge.devstack.services import StartError

Progress = Callable[[str], None]


def endpoints(config: StackConfig, backend: SearchBackend) -> Endpoints:
    search = config.opensearch_url if backend is SearchBackend.OPENSEARCH else config.es_url
    return Endpoints(config.kafka_bootstrap, search, config.moto_endpoint, backend)


def ensure(config: StackConfig, backend: SearchBackend, progress: Progress) -> Endpoints:
    """Return the endpoints once Kafka, moto and the chosen search engine answer."""
    chosen = endpoints(config, backend)
    search_service = "opensearch" if backend is SearchBackend.OPENSEARCH else "elasticsearch"
    probes: dict[str, Callable[[], bool]] = {
        "kafka": lambda: readiness.kafka_ready(chosen.kafka),
        search_service: lambda: readiness.search_ready(chosen.search),
        "moto": lambda: readiness.moto_ready(chosen.moto),
    }
    missing = [name for name, probe in probes.items() if not probe()]
    if not missing:
        progress("local stack is up: reusing it")
        return chosen
    progress(f"starting {', '.join(missing)} with `dynabridge dev up` (first time: downloads)")
    try:
        devstack.up(config, missing, progress)
    except (StartError, ArtifactError, PortInUseError, AccountError, ConfigError) as error:
        raise DemoError(f"could not start the local stack: {error}") from None
    return chosen
