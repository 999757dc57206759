"""``demo --cleanup``: drop what a run created (table, lease table, topic, index), best effort.

Each step is independent; a failure is reported and the next step still runs.
"""

from __future__ import annotations

from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException  # noqa: TID251 - the demo's cleanup adapter
from confluent_kafka.admin import AdminClient  # noqa: TID251 - the demo's cleanup adapter

from bridge.runtime.settings import SearchSettings
from consumers.indexer.backend import build_backend
from consumers.indexer.documents import index_name
from consumers.search.errors import SearchFailure
from dynabridge.demo.errors import DemoError
from dynabridge.demo.runconfig import Endpoints, RunNames
from dynabridge.demo.table import DemoTable, client

Progress = Callable[[str], None]


def remove_run(names: RunNames, endpoints: Endpoints, progress: Progress) -> None:
    dynamodb = client(endpoints.moto, "us-east-1")
    steps: list[tuple[str, Callable[[], None]]] = [
        (f"table {names.table}", DemoTable(dynamodb, names.table).drop),
        (f"lease table {names.lease_table}", DemoTable(dynamodb, names.lease_table).drop),
        (f"topic {names.topic}", lambda: _delete_topics(endpoints.kafka, names.topic)),
        (f"index {index_name('', names.table)}", lambda: _delete_index(endpoints, names.table)),
    ]
    for what, step in steps:
        try:
            step()
        except DemoError as error:
            progress(f"cleanup: {what}: {error}")
        else:
            progress(f"cleanup: removed {what}")


def _delete_topics(bootstrap: str, topic: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    futures = admin.delete_topics([topic, topic + ".dlq"], operation_timeout=10)
    for name, future in futures.items():
        try:
            future.result(timeout=15)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise DemoError(f"deleting topic {name}: {error}") from None


def _delete_index(endpoints: Endpoints, table: str) -> None:
    settings = SearchSettings(backend=endpoints.backend, hosts=[endpoints.search])
    backend = build_backend(settings)
    try:
        backend.drop(index_name("", table))
    except SearchFailure as error:
        raise DemoError(f"deleting the index of {table}: {error}") from None
    finally:
        backend.close()
