"""Which librdkafka errors are refusals, and the one line each becomes."""

from __future__ import annotations

import pytest

from bridge.runtime.kafka_security import (
    KafkaRefused,
    Refusal,
    SecurityWatch,
    explanation,
    first_answer,
    refusal,
)
from bridge.runtime.settings import ConfigError, KafkaSettings

SASL = KafkaSettings(
    bootstrap_servers="b1:9094",
    security_protocol="SASL_SSL",  # type: ignore[arg-type]
    sasl_mechanism="SCRAM-SHA-512",
    sasl_username="app",
    sasl_password="pa55-w0rd",  # type: ignore[arg-type]
)

# Texts as librdkafka 2.x wrote them against the secure profile's broker.
AUTH = (
    "sasl_ssl://127.0.0.1:9192/bootstrap: SASL authentication error: Authentication failed "
    "during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512 "
    "(after 525ms in state AUTH_REQ)"
)
UNTRUSTED = (
    "sasl_ssl://127.0.0.1:9192/bootstrap: SSL handshake failed: error:0A000086:SSL routines::"
    "certificate verify failed: broker certificate could not be verified (after 18ms in state "
    "SSL_HANDSHAKE)"
)
CLIENT_REFUSED = (
    "ssl://127.0.0.1:9193/bootstrap: Receive failed: error:0A000412:SSL routines::ssl/tls alert "
    "bad certificate: SSL alert number 42 (after 1ms in state APIVERSION_QUERY)"
)
DOWN = "127.0.0.1:9192/bootstrap: Connect to ipv4#127.0.0.1:9192 failed: Connection refused"


class _Error:
    def __init__(self, name: str, text: str) -> None:
        self._name, self._text = name, text

    def name(self) -> str:
        return self._name

    def str(self) -> str:
        return self._text


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("_AUTHENTICATION", AUTH, Refusal.CREDENTIALS),
        ("_SSL", UNTRUSTED, Refusal.SERVER_CERTIFICATE),
        ("_TRANSPORT", CLIENT_REFUSED, Refusal.CLIENT_CERTIFICATE),
        ("_TRANSPORT", DOWN, None),
        ("_TRANSPORT", "Receive failed: SSL alert number 70", None),  # protocol_version
        ("_ALL_BROKERS_DOWN", "1/1 brokers are down", None),
    ],
)
def test_only_refusals_are_refusals(name: str, text: str, expected: Refusal | None) -> None:
    assert refusal(name, text) is expected


def test_the_line_names_endpoint_mechanism_and_setting_and_no_secret() -> None:
    line = explanation(Refusal.CREDENTIALS, SASL, "invalid credentials")
    for part in ("b1:9094", "SASL_SSL SCRAM-SHA-512", "'app'", "kafka.sasl_password"):
        assert part in line
    assert "pa55-w0rd" not in line
    assert "\n" not in line
    assert "kafka.ssl_ca_location" in explanation(Refusal.SERVER_CERTIFICATE, SASL, "x")
    assert "kafka.ssl_certificate_location" in explanation(Refusal.CLIENT_CERTIFICATE, SASL, "x")


def test_the_watch_keeps_the_first_refusal_and_raises_a_config_error() -> None:
    watch = SecurityWatch(SASL)
    watch(_Error("_ALL_BROKERS_DOWN", "1/1 brokers are down"))
    watch.check()  # nothing yet
    watch(_Error("_AUTHENTICATION", AUTH))
    watch(_Error("_SSL", UNTRUSTED))
    with pytest.raises(KafkaRefused) as raised:
        watch.check()
    assert isinstance(raised.value, ConfigError)
    assert "refused the SASL credentials" in str(raised.value)
    assert "(after" not in str(raised.value)
    assert "sasl_ssl://" not in str(raised.value)


class _Down(Exception):  # noqa: N818 - a broker that is down
    pass


def test_first_answer_stops_at_a_refusal_without_waiting_for_the_deadline() -> None:
    watch = SecurityWatch(SASL)
    calls: list[float] = []

    def call(timeout_s: float) -> str:
        calls.append(timeout_s)
        raise _Down

    def serve(_: float) -> None:
        watch(_Error("_AUTHENTICATION", AUTH))

    with pytest.raises(KafkaRefused):
        first_answer(call, serve, _Down, watch, deadline_s=3600)
    assert len(calls) == 1


def test_first_answer_raises_the_failure_at_the_deadline_when_nothing_was_refused() -> None:
    watch = SecurityWatch(SASL)

    def call(timeout_s: float) -> str:
        raise _Down

    with pytest.raises(_Down):
        first_answer(call, lambda _: None, _Down, watch, deadline_s=0.0)
