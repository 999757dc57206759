from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from dynabridge.devstack.ports import PortClaim, PortInUseError, check_free, in_use


@pytest.fixture
def listening_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_a_listening_port_is_in_use(listening_port: int) -> None:
    assert in_use("127.0.0.1", listening_port)


def test_a_closed_port_is_free() -> None:
    assert not in_use("127.0.0.1", _free_port())


def test_an_occupied_port_names_the_port_and_the_service(listening_port: int) -> None:
    claims = [
        PortClaim(_free_port(), "kafka", "broker"),
        PortClaim(listening_port, "elasticsearch", "http"),
    ]
    with pytest.raises(PortInUseError, match=f"port {listening_port} \\(elasticsearch http\\)"):
        check_free("127.0.0.1", claims)
