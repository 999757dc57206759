"""DynamoDB calls (``DynamoDB_20120810.*``): passed to moto as they came, except that

- injected throttling answers ProvisionedThroughputExceededException for tables matching a
  pattern, at a rate (lease-table throttling tests);
- DescribeTable, CreateTable and UpdateTable answers about a simulated table carry the
  simulator's stream (``LatestStreamArn``, ``LatestStreamLabel``, ``StreamSpecification``), and
  UpdateTable's ``StreamSpecification`` turns the simulated stream off and on (new ARN) without
  touching moto's (moto breaks a table whose stream is disabled);
- with ``auto_manage``, a moto table seen with an enabled stream becomes simulated (default
  stream settings) the first time one of those answers passes;
- tables that exist only in the simulator (synthetic) are answered here: DescribeTable,
  UpdateTable (stream), DeleteTable, GetItem, Scan, and ListTables lists them.
"""

from __future__ import annotations

import fnmatch
import logging
import threading
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from dynabridge.streamsim import errors
from dynabridge.streamsim.config import StreamConfig
from dynabridge.streamsim.errors import ApiError
from dynabridge.streamsim.moto import Moto, Reply, region_of
from dynabridge.streamsim.world import KeyAttribute, SimTable, Source, World, WorldError

log = logging.getLogger(__name__)

TARGET_PREFIX = "DynamoDB_20120810."
_DESCRIBING = frozenset({"DescribeTable", "CreateTable", "UpdateTable"})
_DESCRIPTION_KEY = {"DescribeTable": "Table", "CreateTable": "TableDescription",
                    "UpdateTable": "TableDescription"}  # fmt: skip


@dataclass(frozen=True, slots=True)
class ThrottleRule:
    pattern: str
    """fnmatch pattern on table names (``leases-*``)."""
    rate: float
    operations: tuple[str, ...] = ()
    """Only these operations (empty: all)."""

    def matches(self, operation: str, tables: list[str]) -> bool:
        if self.operations and operation not in self.operations:
            return False
        return any(fnmatch.fnmatchcase(table, self.pattern) for table in tables)

    def as_json(self) -> dict[str, Any]:
        return {"pattern": self.pattern, "rate": self.rate, "operations": list(self.operations)}


Manage = Callable[[SimTable], None]
"""Starts what feeds a newly simulated moto table (its MotoFeed)."""


class TablesApi:
    def __init__(
        self,
        world: World,
        moto: Moto | None,
        *,
        default_region: str,
        default_config: StreamConfig,
        auto_manage: bool,
        on_managed: Manage,
        synthetic_reads: Callable[[SimTable, str, dict[str, Any]], dict[str, Any]],
    ) -> None:
        self._world = world
        self._moto = moto
        self._default_region = default_region
        self.default_config = default_config
        self.auto_manage = auto_manage
        self._on_managed = on_managed
        self._synthetic_reads = synthetic_reads
        self._rules_lock = threading.Lock()
        self.throttle_rules: list[ThrottleRule] = []

    def set_throttling(self, rules: list[ThrottleRule]) -> None:
        with self._rules_lock:
            self.throttle_rules = list(rules)

    def handle(self, operation: str, headers: Mapping[str, str], body: bytes) -> Reply:
        stats = self._world.stats
        stats.call(operation)
        try:
            request = orjson.loads(body) if body else {}
        except orjson.JSONDecodeError:
            request = None
        try:
            if isinstance(request, dict):
                self._throttle(operation, request)
                if operation == "UpdateTable" and "StreamSpecification" in request:
                    return self._update_table(headers, request)
                local = self._local(operation, request)
                if local is not None:
                    return _json_reply(local)
            return self._forwarded(operation, headers, body, request)
        except ApiError as error:
            stats.error(operation, error.code)
            return Reply(
                error.status, [("Content-Type", "application/x-amz-json-1.0")], error.body()
            )

    # -- faults --------------------------------------------------------------------------

    def _throttle(self, operation: str, request: dict[str, Any]) -> None:
        with self._rules_lock:
            rules = self.throttle_rules
        if not rules:
            return
        tables = _table_names(request)
        for rule in rules:
            if rule.matches(operation, tables) and self._world.rng.random() < rule.rate:
                raise errors.throughput_exceeded()

    # -- tables answered here ------------------------------------------------------------

    def _update_table(self, headers: Mapping[str, str], request: dict[str, Any]) -> Reply:
        """UpdateTable with a StreamSpecification: the simulated stream changes here; for a
        moto table, the rest of the update (if any) goes to moto without it."""
        name = request.get("TableName")
        table = self._world.find(name) if isinstance(name, str) else None
        if table is None:
            return self._forwarded("UpdateTable", headers, orjson.dumps(request), request)
        self._update_stream(table, request["StreamSpecification"])
        if table.source is Source.SYNTHETIC:
            return _json_reply({"TableDescription": self.description(table)})
        rest = {k: v for k, v in request.items() if k != "StreamSpecification"}
        if len(rest) > 1:
            return self._forwarded("UpdateTable", headers, orjson.dumps(rest), rest)
        # Nothing else to update: moto's own description, with the simulated stream.
        asked = {**headers, "x-amz-target": TARGET_PREFIX + "DescribeTable"}
        described = self._forwarded("DescribeTable", asked, orjson.dumps(rest), rest)
        if described.status != 200:
            return described
        answer = orjson.loads(described.data)
        return _json_reply({"TableDescription": answer["Table"]}, described)

    def _local(self, operation: str, request: dict[str, Any]) -> dict[str, Any] | None:
        name = request.get("TableName")
        table = self._world.find(name) if isinstance(name, str) else None
        if table is None or table.source is not Source.SYNTHETIC:
            return None
        if operation == "DescribeTable":
            return {"Table": self.description(table)}
        if operation == "DeleteTable":
            description = self.description(table)
            description["TableStatus"] = "DELETING"
            self.drop(table.name)
            return {"TableDescription": description}
        if operation in ("GetItem", "Scan"):
            return self._synthetic_reads(table, operation, request)
        raise errors.validation(
            f"{operation} is not supported on table {table.name}: it is a synthetic table of the "
            "Streams simulator, written only by its generator (DescribeTable, UpdateTable, "
            "DeleteTable, GetItem and Scan work)"
        )

    def _update_stream(self, table: SimTable, spec: Any) -> None:
        if not isinstance(spec, dict) or not isinstance(spec.get("StreamEnabled"), bool):
            raise errors.validation("StreamSpecification needs StreamEnabled (true or false)")
        if spec["StreamEnabled"]:
            if table.stream_enabled:
                raise ApiError(
                    "ValidationException",
                    f"Table already has an enabled stream: {table.latest.arn}",
                )
            view_type = spec.get("StreamViewType")
            try:
                self._world.enable_stream(table, view_type if isinstance(view_type, str) else None)
            except WorldError as exc:
                raise errors.validation(str(exc)) from None
        else:
            if not table.stream_enabled:
                raise errors.validation("Table does not have an enabled stream")
            self._world.disable_stream(table)

    def description(self, table: SimTable) -> dict[str, Any]:
        """A DescribeTable ``Table`` of a synthetic table (moto's, rewritten, otherwise)."""
        count = size = 0
        if table.state is not None:
            with table.state.lock:
                count = len(table.state.items)
                size = sum(stored.size for stored in table.state.items.values())
        description: dict[str, Any] = {
            "TableName": table.name,
            "TableStatus": "ACTIVE",
            "TableArn": f"arn:aws:dynamodb:{table.region}:{self._world.account}:table/{table.name}",
            "TableId": f"{zlib.crc32(table.name.encode()):08x}-0000-4000-8000-000000000000",
            "CreationDateTime": round(table.created_s, 3),
            "KeySchema": [
                {"AttributeName": k.name, "KeyType": k.key_type} for k in table.key_schema
            ],
            "AttributeDefinitions": [
                {"AttributeName": k.name, "AttributeType": k.type} for k in table.key_schema
            ],
            "ItemCount": count,
            "TableSizeBytes": size,
            "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
            "ProvisionedThroughput": {
                "NumberOfDecreasesToday": 0, "ReadCapacityUnits": 0, "WriteCapacityUnits": 0,
            },
        }  # fmt: skip
        return self._with_stream(description, table)

    def _with_stream(self, description: dict[str, Any], table: SimTable) -> dict[str, Any]:
        latest = table.latest
        description["LatestStreamArn"] = latest.arn
        description["LatestStreamLabel"] = latest.model.label
        if table.stream_enabled:
            description["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": table.view_type,
            }
        else:
            description["StreamSpecification"] = {"StreamEnabled": False}
        return description

    def drop(self, name: str) -> SimTable | None:
        table = self._world.drop_table(name)
        if table is not None:
            table.stop()
        return table

    # -- moto ----------------------------------------------------------------------------

    def _forwarded(
        self, operation: str, headers: Mapping[str, str], body: bytes, request: Any
    ) -> Reply:
        if self._moto is None:
            raise errors.not_found(
                f"{operation}: no such table in the simulator, and it runs without moto "
                "(start it with --moto-endpoint to pass DynamoDB calls through)"
            )
        reply = self._moto.forward(headers, body)
        if reply.status != 200:
            return reply
        if operation == "ListTables":
            return self._with_synthetic_names(reply)
        if operation == "DeleteTable" and isinstance(request, dict):
            self.drop(str(request.get("TableName", "")))
            return reply
        if operation not in _DESCRIBING:
            return reply
        answer = orjson.loads(reply.data)
        description = answer.get(_DESCRIPTION_KEY[operation])
        if not isinstance(description, dict):
            return reply
        table = self._world.find(str(description.get("TableName")))
        if table is None:
            table = self._adopted(description, region_of(headers, self._default_region))
            if table is None:
                return reply
        self._with_stream(description, table)
        return _json_reply(answer, reply)

    def _adopted(self, description: dict[str, Any], region: str) -> SimTable | None:
        spec = description.get("StreamSpecification") or {}
        if not self.auto_manage or not spec.get("StreamEnabled"):
            return None
        try:
            table = self.adopt(description, region, self.default_config)
        except WorldError:  # another request adopted it first
            return self._world.find(str(description["TableName"]))
        log.info("simulating the stream of moto table %s", table.name)
        return table

    def adopt(self, description: dict[str, Any], region: str, config: StreamConfig) -> SimTable:
        """Simulate the stream of a moto table (its DescribeTable ``Table``) and feed it."""
        types = {
            d["AttributeName"]: d["AttributeType"] for d in description["AttributeDefinitions"]
        }
        ordered = sorted(description["KeySchema"], key=lambda key: key["KeyType"] != "HASH")
        spec = description.get("StreamSpecification") or {}
        if not spec.get("StreamEnabled"):
            raise WorldError(
                f"moto table {description['TableName']!r} has no enabled stream, so there is "
                "nothing to copy: create it with StreamSpecification StreamEnabled=true"
            )
        table = self._world.add_table(
            str(description["TableName"]),
            source=Source.MOTO,
            region=region,
            key_schema=tuple(
                KeyAttribute(k["AttributeName"], types[k["AttributeName"]], k["KeyType"])
                for k in ordered
            ),
            view_type=str(spec.get("StreamViewType", "NEW_AND_OLD_IMAGES")),
            config=config,
        )
        self._on_managed(table)
        return table

    def _with_synthetic_names(self, reply: Reply) -> Reply:
        synthetic = [t.name for t in self._world.all_tables() if t.source is Source.SYNTHETIC]
        if not synthetic:
            return reply
        answer = orjson.loads(reply.data)
        answer["TableNames"] = sorted({*answer.get("TableNames", []), *synthetic})
        return _json_reply(answer, reply)


def _table_names(request: dict[str, Any]) -> list[str]:
    names = []
    if isinstance(request.get("TableName"), str):
        names.append(request["TableName"])
    for key in ("RequestItems",):
        if isinstance(request.get(key), dict):
            names.extend(request[key])
    for entry in request.get("TransactItems", []) or []:
        if isinstance(entry, dict):
            for action in entry.values():
                if isinstance(action, dict) and isinstance(action.get("TableName"), str):
                    names.append(action["TableName"])
    return names


def _json_reply(answer: Any, original: Reply | None = None) -> Reply:
    """A JSON answer; DynamoDB's ``x-amz-crc32`` is recomputed (botocore checks it)."""
    body = orjson.dumps(answer)
    kept = [
        (k, v) for k, v in (original.headers if original else [])
        if k.lower() not in ("x-amz-crc32", "content-type")
    ]  # fmt: skip
    headers = [
        *kept,
        ("Content-Type", "application/x-amz-json-1.0"),
        ("x-amz-crc32", str(zlib.crc32(body))),
    ]
    return Reply(200, headers, body)
