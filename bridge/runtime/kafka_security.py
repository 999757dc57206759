"""Kafka errors that no retry can cure: the broker refused our credentials or our client
certificate, or we do not trust the broker's certificate.

librdkafka treats all three as transient (it reconnects forever, logging each attempt), so a
process would look alive while doing nothing. Each Kafka adapter hands its client errors to a
:class:`SecurityWatch` (as the client's ``error_cb``) and asks it after every failed call;
a refusal stops the process with :class:`KafkaRefused` (a ``ConfigError``: exit 2), one line
naming the endpoint, the mechanism and the settings to fix. Secrets never appear in it.

    librdkafka error          what it means here
    _AUTHENTICATION           SASL credentials refused (wrong user or password, or mechanism)
    _SSL                      TLS handshake failed on our side: the broker's certificate is not
                              trusted (or its name does not match)
    _TRANSPORT + TLS alert    the broker ended the handshake with a certificate alert: it
    42/43/44/45/46/48         refused our client certificate (mTLS), or we sent none
"""

from __future__ import annotations

import enum
import re
import threading
import time
from collections.abc import Callable
from typing import Protocol, TypeVar

from bridge.runtime.settings import ConfigError, KafkaSettings

T = TypeVar("T")

# RFC 8446 / 5246 alert numbers: bad_certificate, unsupported_certificate, certificate_revoked,
# certificate_expired, certificate_unknown, unknown_ca. librdkafka passes a TLS alert only as
# OpenSSL's text ("SSL alert number 42"); the number is the protocol's, not prose.
_CERTIFICATE_ALERTS = frozenset({42, 43, 44, 45, 46, 48})
_ALERT = re.compile(r"SSL alert number (\d+)")


class Refusal(enum.Enum):
    CREDENTIALS = "credentials"
    SERVER_CERTIFICATE = "server certificate"
    CLIENT_CERTIFICATE = "client certificate"


class KafkaRefused(ConfigError):  # noqa: N818 - a refusal, like the broker's
    """Kafka refused us (or we refused Kafka) for a reason only a configuration change fixes."""


class ClientError(Protocol):
    """What librdkafka's ``KafkaError`` offers (``confluent_kafka`` stays in the adapters)."""

    def name(self) -> str: ...

    def str(self) -> str: ...


def refusal(error_name: str, text: str) -> Refusal | None:
    """The refusal a librdkafka error (its name, its text) reports, or None."""
    if error_name == "_AUTHENTICATION":
        return Refusal.CREDENTIALS
    if error_name == "_SSL":
        return Refusal.SERVER_CERTIFICATE
    if error_name == "_TRANSPORT":
        alert = _ALERT.search(text)
        if alert is not None and int(alert.group(1)) in _CERTIFICATE_ALERTS:
            return Refusal.CLIENT_CERTIFICATE
    return None


def explanation(kind: Refusal, kafka: KafkaSettings, detail: str) -> str:
    """The one line an operator reads: endpoint, mechanism, what to fix."""
    endpoint = f"kafka {kafka.bootstrap_servers} ({kafka.security_protocol.value}"
    if kafka.sasl_mechanism:
        endpoint += f" {kafka.sasl_mechanism}"
    endpoint += ")"
    if kind is Refusal.CREDENTIALS:
        user = f" of user {kafka.sasl_username!r}" if kafka.sasl_username else ""
        fix = (
            "fix kafka.sasl_username / kafka.sasl_password (DYNABRIDGE_KAFKA__SASL_PASSWORD) "
            "or kafka.sasl_mechanism"
        )
        return f"{endpoint} refused the SASL credentials{user} ({detail}): {fix}"
    if kind is Refusal.SERVER_CERTIFICATE:
        return (
            f"{endpoint}: the broker's TLS certificate is not trusted ({detail}): set "
            "kafka.ssl_ca_location to the CA bundle that signed it"
        )
    return (
        f"{endpoint}: the broker refused our TLS client certificate ({detail}): set "
        "kafka.ssl_certificate_location / kafka.ssl_key_location to a certificate its CA signed"
    )


class SecurityWatch:
    """An ``error_cb`` that remembers the first refusal; ``check`` raises it.

    librdkafka calls ``error_cb`` from whichever thread serves the client's callbacks.
    """

    def __init__(self, kafka: KafkaSettings) -> None:
        self._kafka = kafka
        self._lock = threading.Lock()
        self._found: str | None = None

    def __call__(self, error: ClientError) -> None:
        kind = refusal(error.name(), error.str())
        if kind is None:
            return
        with self._lock:
            if self._found is None:
                self._found = explanation(kind, self._kafka, _detail(error.str()))

    @property
    def refused(self) -> str | None:
        return self._found

    def check(self) -> None:
        """Raise :class:`KafkaRefused` when a refusal was seen."""
        if self._found is not None:
            raise KafkaRefused(self._found)


def _detail(text: str) -> str:
    """librdkafka's text without its ``proto://host:port/id: `` prefix and timing suffix."""
    text = re.sub(r"^\S+://\S+: ", "", text)
    return re.sub(r" \(after \d+ms in state \w+\)$", "", text)


def first_answer(
    call: Callable[[float], T],
    serve: Callable[[float], object],
    failure: type[Exception],
    watch: SecurityWatch,
    deadline_s: float,
    step_s: float = 1.0,
) -> T:
    """``call(step_s)`` until it answers; a refusal seen meanwhile raises at once, any other
    failure is raised once ``deadline_s`` has passed (the broker is down or unreachable).

    ``serve(timeout_s)`` is the client's ``poll``: librdkafka hands errors to ``error_cb`` only
    from there.
    """
    deadline = time.monotonic() + deadline_s
    while True:
        try:
            return call(step_s)
        except failure:
            serve(0)
            watch.check()
            if time.monotonic() >= deadline:
                raise
