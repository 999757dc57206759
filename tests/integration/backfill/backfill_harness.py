"""Shared pieces of the backfill integration tests: a loaded table, the two processes, and
"index equals table" read from both sides."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge.backfill.plan import snapshot_event
from bridge.contract import Item
from consumers.indexer.documents import build_action, index_name
from tests.indices import drop_table_indices
from tests.tables import create_pk_sk_table

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

KEY_NAMES = ("pk", "sk")


@dataclass
class Env:
    dynamodb: DynamoDBClient
    kafka: str
    moto: str
    es: str
    table: str
    prefix: str
    lease_table: str
    logs: Path

    @property
    def topic(self) -> str:
        return self.prefix + self.table

    @property
    def index(self) -> str:
        return index_name(self.prefix, self.table)

    def variables(self) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "DYNABRIDGE_AWS__ENDPOINT_URL": self.moto,
            "DYNABRIDGE_KAFKA__BOOTSTRAP_SERVERS": self.kafka,
            "DYNABRIDGE_KAFKA__TOPIC_PREFIX": self.prefix,
            "DYNABRIDGE_TOPICS__PARTITIONS": "3",
            "DYNABRIDGE_BRIDGE__TABLES": self.table,
            "DYNABRIDGE_BRIDGE__LEASE_TABLE": self.lease_table,
            "DYNABRIDGE_BRIDGE__LEASE_DURATION_S": "6",
            "DYNABRIDGE_BRIDGE__LEASE_RENEW_INTERVAL_S": "2",
            "DYNABRIDGE_SEARCH__HOSTS": self.es,
            "DYNABRIDGE_SEARCH__INDEX_PREFIX": self.prefix,
            "DYNABRIDGE_INDEXER__GROUP_ID": self.prefix + "indexer",
            "DYNABRIDGE_INDEXER__LINGER_MS": "20",
            "DYNABRIDGE_METRICS__PORT": "0",
            "DYNABRIDGE_LOGGING__FORMAT": "text",
        }

    def start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        return subprocess.Popen(
            [sys.executable, "-c", "from dynabridge.cli import main; main()", *args],
            env={**os.environ, **self.variables()},
            stdout=subprocess.PIPE if name.startswith("backfill") else log,
            stderr=log,
        )


def typed_item(i: int) -> Item:
    """Every DynamoDB type, with values that break lossy conversions."""
    return {
        "pk": {"S": f"user-{i % 97}"},
        "sk": {"N": str(i)},
        "s": {"S": f"naïve ✓ {i}"},
        "big": {"N": "1234567890123456789012345678901234567" + str(i % 10)},
        "dec": {"N": f"{i}.25"},
        "b": {"B": bytes([i % 256, 0, 255])},
        "flag": {"BOOL": i % 2 == 0},
        "nothing": {"NULL": True},
        # One type per list: the engines' dynamic mapping refuses mixed arrays (a mapping matter).
        "m": {"M": {"inner": {"L": [{"N": str(i)}, {"NULL": True}]}, "t": {"S": "x"}}},
        "ss": {"SS": [f"a{i}", "b"]},
        "ns": {"NS": [str(i), "0.5"]},
        "bs": {"BS": [b"\x01", bytes([i % 200 + 2])]},
    }


def create_loaded_table(dynamodb: DynamoDBClient, table: str, count: int) -> None:
    """Created without a stream, loaded, and only then given a stream (the onboarding case)."""
    create_pk_sk_table(dynamodb, table, stream=False)
    for start in range(0, count, 25):
        batch = [
            {"PutRequest": {"Item": typed_item(i)}} for i in range(start, min(count, start + 25))
        ]
        dynamodb.batch_write_item(RequestItems={table: batch})  # type: ignore[dict-item]
    dynamodb.update_table(
        TableName=table,
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    )


def drop(env: Env) -> None:
    for name in (env.table, env.lease_table):
        with contextlib.suppress(env.dynamodb.exceptions.ResourceNotFoundException):
            env.dynamodb.delete_table(TableName=name)
    with contextlib.suppress(urllib.error.HTTPError):
        drop_table_indices(env.es, env.index)


def request(base: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(  # noqa: S310 - the local test server, http only
        f"{base}/{path}", data=data, method=method, headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=30) as response:  # noqa: S310 - local test server
        return json.loads(response.read() or b"{}")


def doc_id_and_document(table: str, item: Item) -> tuple[str, Any]:
    action = build_action(snapshot_event(table, item, KEY_NAMES, 0, "x"), "")
    return action.doc_id, _plain(action.document)


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=lambda d: str(Decimal(d))))


def table_documents(env: Env) -> dict[str, Any]:
    docs: dict[str, Any] = {}
    kwargs: dict[str, Any] = {"TableName": env.table, "ConsistentRead": True}
    while True:
        page = env.dynamodb.scan(**kwargs)
        for item in page["Items"]:
            doc_id, document = doc_id_and_document(env.table, item)  # type: ignore[arg-type]
            docs[doc_id] = document
        if "LastEvaluatedKey" not in page:
            return docs
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def index_documents(env: Env) -> dict[str, Any]:
    try:
        request(env.es, "POST", f"{env.index}/_refresh")
        hits = request(env.es, "POST", f"{env.index}/_search", {"size": 10000})["hits"]["hits"]
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return {}
        raise
    return {hit["_id"]: _plain(hit["_source"]) for hit in hits}


def differences(table: dict[str, Any], index: dict[str, Any]) -> dict[str, Any]:
    return {
        "missing": sorted(set(table) - set(index))[:5],
        "extra": sorted(set(index) - set(table))[:5],
        "different": [k for k in table.keys() & index.keys() if table[k] != index[k]][:5],
    }


def wait_index_equals_table(env: Env, timeout_s: float) -> dict[str, Any]:
    """Polls until the index holds exactly the table's items; returns the last differences."""
    deadline = time.monotonic() + timeout_s
    while True:
        diff = differences(table_documents(env), index_documents(env))
        if not any(diff.values()) or time.monotonic() > deadline:
            return diff
        time.sleep(1.0)
