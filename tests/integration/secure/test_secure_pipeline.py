"""Both processes end to end through the secure profile, and the operator commands on it.

Kafka through SASL_SSL (SCRAM-SHA-512) or mTLS; the engine over TLS with basic auth or an API
key (Elasticsearch 9), or basic auth (OpenSearch 2.19 with its security plugin). The index must
equal the table (oracle: tests/oracle.py, independent of the indexer), and no secret may appear
anywhere the programs print: logs, errors, ``status --json``, metrics.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest

from dynabridge.devstack.client_config import KafkaAuth, SearchAuth
from dynabridge.devstack.config import StackConfig
from tests.integration.secure.conftest import MakeRun, SecureEngine
from tests.integration.secure.harness import SecureRun, secret_strings
from tests.oracle import expected_id, expected_source
from tests.polling import wait_for

ITEMS = 40
Item = dict[str, Any]  # DynamoDB typed JSON


def _write(dynamodb: Any, table: str, seed: int) -> dict[str, Item | None]:
    """Inserts, updates and deletes; the table's final state by document id."""
    rng = random.Random(seed)
    final: dict[str, Item | None] = {}
    for turn in range(2):
        for number in range(ITEMS):
            item: dict[str, Any] = {
                "pk": {"S": f"item-{number}"},
                "sk": {"N": str(number % 3)},
                "price": {"N": rng.choice(["10", "9.99", "-3", "12345678901234567890"])},
                "tags": {"SS": sorted({f"t{rng.randrange(5)}" for _ in range(3)})},
                "mixed": {"L": [{"S": "x"}, {"N": "1"}, {"M": {"deep": {"S": "y"}}}]},
                "text": {"S": f"héllo {turn}"},
                "flag": {"BOOL": rng.random() < 0.5},
            }
            dynamodb.put_item(TableName=table, Item=item)
            final[expected_id({"pk": item["pk"], "sk": item["sk"]})] = item
    for number in range(0, ITEMS, 7):
        keys = {"pk": {"S": f"item-{number}"}, "sk": {"N": str(number % 3)}}
        dynamodb.delete_item(TableName=table, Key=keys)
        final[expected_id(keys)] = None
    return final


def _index_equals(
    engine: SecureEngine, index: str, final: dict[str, Item | None]
) -> Callable[[], bool]:
    def equal() -> bool:
        for doc_id, item in final.items():
            found = engine.document(index, doc_id)
            if (found is None) != (item is None):
                return False
            if item is not None and found != expected_source(item):
                return False
        return True

    return equal


def _assert_no_secret(run: SecureRun) -> None:
    printed = run.printed()
    assert printed, "nothing was captured: the check would pass vacuously"
    for secret in secret_strings(run.secrets):
        assert secret not in printed, "a secret appears in the output"


@pytest.mark.parametrize(
    ("kafka", "search", "every_command"),
    [
        (KafkaAuth.SASL, SearchAuth.ES_BASIC, True),
        (KafkaAuth.MTLS, SearchAuth.ES_API_KEY, False),
        (KafkaAuth.SASL, SearchAuth.OPENSEARCH_BASIC, True),
    ],
    ids=["sasl_ssl-es9-basic", "mtls-es9-api_key", "sasl_ssl-opensearch-basic"],
)
def test_the_pipeline_runs_end_to_end_on_the_secure_profile(
    make_run: MakeRun,
    secure_stack: StackConfig,
    secure_dynamodb: Any,
    kafka: KafkaAuth,
    search: SearchAuth,
    every_command: bool,
) -> None:
    """``every_command``: also replay, backfill and reindex (the costly part: once per engine)."""
    run = make_run(kafka, search)
    engine = SecureEngine(secure_stack, search)
    bridge, bridge_port = run.start("bridge")
    final = _write(secure_dynamodb, run.table, seed=7)
    indexer, indexer_port = run.start("index")

    def settled() -> bool:
        assert bridge.poll() is None, run.log_of(bridge)
        assert indexer.poll() is None, run.log_of(indexer)
        return _index_equals(engine, run.index, final)()

    wait_for(settled, 180, "the index to equal the table", every_s=1.0)
    assert "dynabridge_" in run.metrics(bridge_port) + run.metrics(indexer_port)

    verify = run.run("verify", "--table", run.table, "--json", "--quiet")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert json.loads(verify.stdout)["equal"] is True
    status = run.run("status", "--table", run.table, "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    assert json.loads(status.stdout)["tables"][0]["table"] == run.table
    kept = next(i for i in final.values() if i is not None)
    key = json.dumps({"pk": kept["pk"], "sk": kept["sk"]})
    trace = run.run("trace", "--table", run.table, "--key", key, "--json")
    assert trace.returncode == 0, trace.stdout + trace.stderr

    codes = run.stop_all()
    assert codes == {"bridge": 0, "index": 0}, codes
    if not every_command:
        _assert_no_secret(run)
        return
    replay = run.run("replay", "--table", run.table, "--to", "earliest", "--json")
    assert replay.returncode == 0, replay.stdout + replay.stderr
    backfill = run.run("backfill", "--table", run.table, "--json")
    assert backfill.returncode == 0, backfill.stdout + backfill.stderr

    # The replayed and backfilled history indexed again, then rebuilt into a new generation.
    indexer, _ = run.start("index")
    wait_for(_index_equals(engine, run.index, final), 180, "the replay to settle", every_s=1.0)
    reindex = run.run("reindex", "--table", run.table, "--json", timeout_s=300)
    assert reindex.returncode == 0, reindex.stdout + reindex.stderr
    assert _index_equals(engine, run.index, final)()
    assert run.stop_all()["index"] == 0
    _assert_no_secret(run)
