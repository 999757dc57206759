"""Which services ``dev up --secure --engines ...`` means: pure name mapping, no I/O."""

from __future__ import annotations

from dynabridge.devstack.config import ConfigError
from dynabridge.devstack.services import SERVICE_NAMES

PLAIN_ENGINES = {
    "es8": "elasticsearch8",
    "es9": "elasticsearch",
    "os2": "opensearch",
    "os3": "opensearch3",
}
SECURE_ENGINES = {"es9": "elasticsearch-secure", "os2": "opensearch-secure"}
DEFAULT_ENGINES = ("es9", "os2")


def engine_list(text: str) -> tuple[str, ...]:
    """``"es8, os3"`` -> ``("es8", "os3")``; an unknown engine is an error naming the choices."""
    wanted = tuple(part.strip().lower() for part in text.split(",") if part.strip())
    unknown = [e for e in wanted if e not in PLAIN_ENGINES]
    if unknown or not wanted:
        raise ConfigError(
            f"--engines {text!r}: choose from {', '.join(PLAIN_ENGINES)} (comma-separated)"
        )
    return wanted


SHARED = ("kafka", "moto")
"""Services a profile uses but does not own: ``down --secure`` or ``down --engines`` keeps them
(the plain stack's Kafka and moto serve other work)."""


def service_names(
    secure: bool, engines: tuple[str, ...] | None, *, owned_only: bool = False
) -> tuple[str, ...]:
    """The services of a profile: Kafka and moto plus the chosen engines (default es9, os2).

    Without ``--secure`` and ``--engines`` this is the plain stack's four. ``owned_only``
    (``down``): without the shared Kafka and moto.
    """
    if not secure and engines is None:
        return SERVICE_NAMES
    names = _profile(secure, engines or DEFAULT_ENGINES)
    return tuple(n for n in names if n not in SHARED) if owned_only else names


def _profile(secure: bool, chosen: tuple[str, ...]) -> tuple[str, ...]:
    if not secure:
        return ("kafka", *(PLAIN_ENGINES[e] for e in chosen), "moto")
    plain_only = [e for e in chosen if e not in SECURE_ENGINES]
    if plain_only:
        raise ConfigError(
            f"--secure has no {', '.join(plain_only)}: the secure profile runs "
            f"{', '.join(SECURE_ENGINES)} (OpenSearch's security plugin is on Maven Central "
            "for 2.19.3, 2.19.4 and 3.4.0 only)"
        )
    return ("kafka-secure", *(SECURE_ENGINES[e] for e in chosen), "moto")
