"""Is a TCP port free? Checked before starting, because Elasticsearch and OpenSearch would
otherwise move silently to another port and Kafka would die with a less helpful error."""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PortClaim:
    port: int
    service: str
    purpose: str


class PortInUseError(RuntimeError):
    def __init__(self, claim: PortClaim, host: str) -> None:
        self.claim = claim
        super().__init__(
            f"port {claim.port} ({claim.service} {claim.purpose}) is already in use on {host} "
            f"by a process the dev stack did not start; stop it or choose another port"
        )


def in_use(host: str, port: int) -> bool:
    """True when something listens on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same flag the servers use, so a port held only by TIME_WAIT sockets counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return True
            raise
    return False


def check_free(host: str, claims: list[PortClaim]) -> None:
    """Raise ``PortInUseError`` for the first claimed port that is taken."""
    for claim in claims:
        if in_use(host, claim.port):
            raise PortInUseError(claim, host)
