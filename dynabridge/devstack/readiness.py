"""Readiness probes: each asks the server a real question, never just "is the port open".

Kafka: broker metadata through the AdminClient; Elasticsearch/OpenSearch: cluster health
yellow; moto: a DynamoDB ListTables call; the Streams simulator: its health check. A probe
answers True or False and never raises.
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import boto3  # noqa: TID251 - the dev stack talks to the servers it manages
import botocore.config  # noqa: TID251
import botocore.exceptions  # noqa: TID251
from confluent_kafka import KafkaException  # noqa: TID251
from confluent_kafka.admin import AdminClient  # noqa: TID251


def kafka_ready(
    bootstrap: str, timeout_s: float = 2.0, security: Mapping[str, str] | None = None
) -> bool:
    """``security``: librdkafka properties of a secured listener (protocol, SASL, TLS)."""
    # log_level 0: librdkafka would print every refused connection while the broker starts.
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0, **(security or {})})
    try:
        return bool(admin.list_topics(timeout=timeout_s).brokers)
    except KafkaException:
        return False


def search_ready(
    url: str,
    timeout_s: float = 2.0,
    *,
    ca: Path | None = None,
    basic_auth: tuple[str, str] | None = None,
) -> bool:
    """Cluster health at least yellow (a single node never gets replicas assigned).

    ``ca`` and ``basic_auth``: an engine with TLS and users (the secure profile).
    """
    health = f"{url}/_cluster/health?wait_for_status=yellow&timeout={int(timeout_s)}s"
    request = urllib.request.Request(health)  # noqa: S310 - our own http(s) URL
    if basic_auth is not None:
        token = base64.b64encode(":".join(basic_auth).encode()).decode("ascii")
        request.add_header("Authorization", f"Basic {token}")
    context = ssl.create_default_context(cafile=str(ca)) if ca is not None else None
    try:
        with urllib.request.urlopen(  # noqa: S310
            request, timeout=timeout_s + 3, context=context
        ) as response:
            body = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return isinstance(body, dict) and body.get("status") in ("yellow", "green")


def streams_sim_ready(endpoint: str, timeout_s: float = 2.0) -> bool:
    """The simulator's control API answers its health check."""
    try:
        with urllib.request.urlopen(f"{endpoint}/_sim/health", timeout=timeout_s) as response:  # noqa: S310
            body = json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return isinstance(body, dict) and body.get("status") == "ok"


def moto_ready(endpoint: str, timeout_s: float = 2.0) -> bool:
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="dev",
        aws_secret_access_key="dev",  # noqa: S106 - moto accepts any credentials
        config=botocore.config.Config(
            connect_timeout=timeout_s, read_timeout=timeout_s, retries={"max_attempts": 1}
        ),
    )
    try:
        client.list_tables(Limit=1)
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        return False
    return True
