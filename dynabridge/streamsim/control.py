"""The control API (``/_sim/...`` on the server's port): tables and their streams, faults,
the oracle and the stats, in JSON. The reference is in docs/testing.md; ``SimClient`` wraps it.

A refused request answers 400 (bad input), 404 (unknown table or shard) or 409 (state
conflict) with ``{"error": "<what is wrong and what to do>"}``.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from dynabridge.streamsim.config import ConfigError, StreamConfig
from dynabridge.streamsim.generator import Generator, prefill
from dynabridge.streamsim.model import InvalidPosition, ShardGone
from dynabridge.streamsim.moto import MotoError
from dynabridge.streamsim.shard import Shard
from dynabridge.streamsim.synthetic import GeneratorConfig, TableState
from dynabridge.streamsim.tables_api import ThrottleRule
from dynabridge.streamsim.world import KeyAttribute, SimStream, SimTable, Source, WorldError

if TYPE_CHECKING:
    from dynabridge.streamsim.server import Simulator

PREFIX = "/_sim"


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Request:
    method: str
    params: dict[str, str]
    query: dict[str, str]
    body: Any


Handler = Callable[["Simulator", Request], Any]
_ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    compiled = re.compile("^" + PREFIX + re.sub(r"{(\w+)}", r"(?P<\1>[^/]+)", pattern) + "$")

    def register(handler: Handler) -> Handler:
        _ROUTES.append((method, compiled, handler))
        return handler

    return register


def dispatch(sim: Simulator, method: str, target: str, body: bytes) -> tuple[int, bytes]:
    """Status and JSON body of a control request."""
    parsed = urllib.parse.urlsplit(target)
    query = dict(urllib.parse.parse_qsl(parsed.query))
    allowed = []
    for verb, pattern, handler in _ROUTES:
        match = pattern.match(parsed.path)
        if match is None:
            continue
        if verb != method:
            allowed.append(verb)
            continue
        try:
            payload = orjson.loads(body) if body else {}
            if not isinstance(payload, dict):
                return 400, _error("the body must be a JSON object")
            params = {k: urllib.parse.unquote(v) for k, v in match.groupdict().items()}
            answer = handler(sim, Request(method, params, query, payload))
        except orjson.JSONDecodeError as exc:
            return 400, _error(f"the body is not JSON: {exc}")
        except ControlError as exc:
            return exc.status, _error(str(exc))
        except (ConfigError, InvalidPosition) as exc:
            return 400, _error(str(exc))
        except WorldError as exc:
            status = 404 if "not simulated" in str(exc) else 409
            return status, _error(str(exc))
        except ShardGone as exc:
            return 404, _error(f"no shard {exc} in this stream")
        return 200, orjson.dumps(answer)
    if allowed:
        return 405, _error(f"{method} is not allowed on {parsed.path}; use {', '.join(allowed)}")
    return 404, _error(f"no control endpoint {parsed.path}; see docs/testing.md")


def _error(message: str) -> bytes:
    return orjson.dumps({"error": message})


# -- server ---------------------------------------------------------------------------------


@route("GET", "/health")
def health(sim: Simulator, request: Request) -> Any:
    return {
        "status": "ok",
        "moto_endpoint": sim.moto.endpoint if sim.moto else None,
        "auto_manage": sim.tables.auto_manage,
        "tables": len(sim.world.all_tables()),
    }


@route("GET", "/stats")
def stats(sim: Simulator, request: Request) -> Any:
    return sim.world.stats.as_json(
        request.query.get("table"), polls=request.query.get("polls") != "0"
    )


@route("DELETE", "/stats")
def reset_stats(sim: Simulator, request: Request) -> Any:
    sim.world.stats.reset()
    return {}


@route("GET", "/throttle")
def throttle_rules(sim: Simulator, request: Request) -> Any:
    return {"rules": [rule.as_json() for rule in sim.tables.throttle_rules]}


@route("PUT", "/throttle")
def set_throttle_rules(sim: Simulator, request: Request) -> Any:
    rules = []
    for raw in _field(request.body, "rules", list):
        rate = _field(raw, "rate", float)
        if not 0 <= rate <= 1:
            raise ControlError(400, f"throttle rate is a fraction in [0, 1], got {rate}")
        operations = raw.get("operations") or []
        rules.append(ThrottleRule(_field(raw, "pattern", str), rate, tuple(operations)))
    sim.tables.set_throttling(rules)
    return {"rules": [rule.as_json() for rule in rules]}


@route("DELETE", "/throttle")
def clear_throttle_rules(sim: Simulator, request: Request) -> Any:
    sim.tables.set_throttling([])
    return {"rules": []}


# -- tables ---------------------------------------------------------------------------------


@route("GET", "/tables")
def tables(sim: Simulator, request: Request) -> Any:
    return {"tables": [_table_json(table) for table in sim.world.all_tables()]}


@route("POST", "/tables")
def create_table(sim: Simulator, request: Request) -> Any:
    body = request.body
    name = _field(body, "table", str)
    sources = [source.value for source in Source]
    if body.get("source", "synthetic") not in sources:
        raise ControlError(400, f"source is one of {', '.join(sources)}, got {body['source']!r}")
    source = Source(body.get("source", "synthetic"))
    region = body.get("region") or sim.region
    config = StreamConfig.from_json(_object(body, "stream"))
    if source is Source.MOTO:
        if sim.moto is None:
            raise ControlError(400, "the simulator runs without moto (--moto-endpoint)")
        try:
            description = sim.moto.call(
                "DynamoDB_20120810.DescribeTable", {"TableName": name}, region
            )["Table"]
        except MotoError as exc:
            raise ControlError(
                404 if exc.code == "ResourceNotFoundException" else 502, str(exc)
            ) from None
        table = sim.tables.adopt(description, region, config)
    else:
        # Everything is checked before the table exists, so a refused request leaves nothing.
        key_schema = _key_schema(body.get("key_schema"))
        generator = GeneratorConfig.from_json(_object(body, "generator"))
        backlog = _object(body, "backlog")
        records_per_shard = _field(backlog, "records_per_shard", int) if backlog else 0
        record_bytes = int(backlog.get("record_bytes", 2048))
        table = sim.world.add_table(
            name,
            source=source,
            region=region,
            key_schema=key_schema,
            view_type=body.get("view_type", "NEW_AND_OLD_IMAGES"),
            config=config,
        )
        table.state = TableState(table.key_schema)
        if records_per_shard:
            table.backlog_records = prefill(sim.world, table, records_per_shard, record_bytes)
        if body.get("generator") is not None:
            table.generator = Generator(sim.world, table, table.state, generator)
            table.generator.start()
    return _table_json(table)


@route("GET", "/tables/{table}")
def describe(sim: Simulator, request: Request) -> Any:
    return _table_json(sim.world.table(request.params["table"]))


@route("DELETE", "/tables/{table}")
def drop(sim: Simulator, request: Request) -> Any:
    """Forget a simulated table (a moto table stays in moto, unsimulated)."""
    name = request.params["table"]
    if sim.tables.drop(name) is None:
        raise ControlError(404, f"table {name!r} is not simulated")
    return {}


@route("PATCH", "/tables/{table}/stream")
def reconfigure(sim: Simulator, request: Request) -> Any:
    table = sim.world.table(request.params["table"])
    return {"stream": sim.world.reconfigure(table, request.body).as_json()}


@route("POST", "/tables/{table}/stream/disable")
def disable(sim: Simulator, request: Request) -> Any:
    table = sim.world.table(request.params["table"])
    if not table.stream_enabled:
        raise ControlError(409, f"the stream of {table.name!r} is already disabled")
    sim.world.disable_stream(table)
    return _table_json(table)


@route("POST", "/tables/{table}/stream/enable")
def enable(sim: Simulator, request: Request) -> Any:
    table = sim.world.table(request.params["table"])
    sim.world.enable_stream(table, request.body.get("view_type"))
    return _table_json(table)


# -- shards ---------------------------------------------------------------------------------


@route("GET", "/tables/{table}/shards")
def shards(sim: Simulator, request: Request) -> Any:
    stream = _stream(sim, request)
    now = sim.world.clock()
    with stream.lock:
        model = stream.model
        model.advance(now)
        listed = {shard.shard_id for shard in model.listing(now)}
        return {
            "stream_arn": model.arn,
            "status": model.status.value,
            "shards": [
                _shard_json(s, s.shard_id in listed, s.shard_id in model.gone)
                for s in model.all_shards()
            ],
        }


@route("POST", "/tables/{table}/shards/{shard}/rotate")
def rotate(sim: Simulator, request: Request) -> Any:
    return _reshape(sim, request, split=False)


@route("POST", "/tables/{table}/shards/{shard}/split")
def split(sim: Simulator, request: Request) -> Any:
    return _reshape(sim, request, split=True)


@route("POST", "/tables/{table}/trim")
def trim(sim: Simulator, request: Request) -> Any:
    stream = _stream(sim, request)
    older_than_s = float(request.body.get("older_than_s", 0.0))
    with stream.lock:
        trimmed = stream.model.trim(
            sim.world.clock(), older_than_s=older_than_s, shard_id=request.body.get("shard_id")
        )
    return {"trimmed": trimmed}


@route("GET", "/tables/{table}/records")
def records(sim: Simulator, request: Request) -> Any:
    """Every record the stream ever emitted, per shard (trimmed ones included): the oracle."""
    stream = _stream(sim, request)
    wanted = request.query.get("shard")
    with stream.lock:
        emitted = {
            shard.shard_id: list(shard.emitted)
            for shard in stream.model.all_shards()
            if wanted is None or shard.shard_id == wanted
        }
        oracle = stream.model.config.oracle
    return {
        "stream_arn": stream.arn,
        "oracle": oracle,
        "shards": {
            shard_id: [
                {
                    "SequenceNumber": str(e.sequence_number),
                    "eventName": e.event_name,
                    "eventID": e.event_id,
                    "Keys": orjson.Fragment(e.keys),
                    "appended_s": e.appended_s,
                }
                for e in entries
            ]
            for shard_id, entries in emitted.items()
        },
    }


# -- synthetic tables -----------------------------------------------------------------------


@route("GET", "/tables/{table}/items")
def items(sim: Simulator, request: Request) -> Any:
    table = sim.world.table(request.params["table"])
    state = table.state
    if state is None:
        raise ControlError(400, f"{table.name!r} is a moto table: read its items from moto")
    with state.lock:
        return state.as_json()


@route("PUT", "/tables/{table}/generator")
def generator(sim: Simulator, request: Request) -> Any:
    table = sim.world.table(request.params["table"])
    return _start_generator(sim, table, request.body)


@route("GET", "/tables/{table}/generator")
def generator_status(sim: Simulator, request: Request) -> Any:
    found = sim.world.table(request.params["table"]).generator
    if found is None:
        raise ControlError(404, "no generator on this table (PUT one)")
    return found.status()


@route("DELETE", "/tables/{table}/generator")
def stop_generator(sim: Simulator, request: Request) -> Any:
    table = sim.world.table(request.params["table"])
    found, table.generator = table.generator, None
    if found is None:
        raise ControlError(404, "no generator on this table")
    found.stop()
    return found.status()


# -- helpers --------------------------------------------------------------------------------


def _start_generator(sim: Simulator, table: SimTable, raw: Any) -> Any:
    state = table.state
    if state is None:
        raise ControlError(400, f"{table.name!r} is a moto table: write to it through moto")
    current = table.generator
    if current is not None and current.running:
        current.reconfigure(current.config.updated(raw))
        return current.status()
    found = Generator(sim.world, table, state, GeneratorConfig.from_json(raw))
    table.generator = found
    found.start()
    return found.status()


def _reshape(sim: Simulator, request: Request, *, split: bool) -> Any:
    stream = _stream(sim, request)
    with stream.lock:
        now = sim.world.clock()
        shard_id = request.params["shard"]
        model = stream.model
        children = model.split(now, shard_id) if split else model.rotate(now, shard_id)
        closed = model.shard(shard_id)
        return {
            "closed": _shard_json(closed, True, False),
            "children": [_shard_json(child, True, False) for child in children],
        }


def _stream(sim: Simulator, request: Request) -> SimStream:
    table = sim.world.table(request.params["table"])
    arn = request.query.get("stream")
    if not arn and isinstance(request.body, dict):
        arn = request.body.get("stream_arn")
    if not arn:
        return table.latest
    for stream in table.streams:
        if stream.arn == arn:
            return stream
    raise ControlError(404, f"table {table.name!r} has no stream {arn}")


def _table_json(table: SimTable) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "table": table.name,
        "source": table.source.value,
        "region": table.region,
        "key_schema": [
            {"name": key.name, "type": key.type, "key_type": key.key_type}
            for key in table.key_schema
        ],
        "view_type": table.view_type,
        "stream": table.config.as_json(),
        "latest_stream_arn": table.latest.arn,
        "stream_enabled": table.stream_enabled,
        "streams": [
            {"arn": s.arn, "label": s.model.label, "status": s.model.status.value}
            for s in table.streams
        ],
    }
    if table.feed is not None:
        answer["feed"] = {"copied": table.feed.copied, "error": table.feed.error}
    if table.generator is not None:
        answer["generator"] = table.generator.status()
    if table.backlog_records:
        answer["backlog_records"] = table.backlog_records
    return answer


def _shard_json(shard: Shard, listed: bool, gone: bool) -> dict[str, Any]:
    return {
        "shard_id": shard.shard_id,
        "parent_shard_id": shard.parent_id,
        "hash_range": [str(shard.hash_range.start), str(shard.hash_range.end)],
        "starting_sequence_number": str(shard.starting),
        "ending_sequence_number": None if shard.ending is None else str(shard.ending),
        "open": shard.is_open,
        "created_s": shard.created_s,
        "closed_s": shard.closed_s,
        "appended": shard.appended,
        "live_records": shard.live_records,
        "trimmed_through": str(shard.trimmed_through),
        "listed": listed,
        "gone": gone,
    }


def _key_schema(raw: Any) -> tuple[KeyAttribute, ...]:
    """``[{"name": "pk", "type": "S"}, {"name": "sk", "type": "N"}]`` (hash key first);
    default: hash key ``pk`` (S)."""
    if raw is None:
        return (KeyAttribute("pk", "S", "HASH"),)
    if not isinstance(raw, list) or not 1 <= len(raw) <= 2:
        raise ControlError(400, "key_schema is a list of one or two {name, type} (hash key first)")
    keys = []
    for index, entry in enumerate(raw):
        kind = _field(entry, "type", str)
        if kind not in ("S", "N", "B"):
            raise ControlError(400, f"key attribute type is S, N or B, got {kind!r}")
        keys.append(
            KeyAttribute(_field(entry, "name", str), kind, "HASH" if index == 0 else "RANGE")
        )
    return tuple(keys)


def _object(body: dict[str, Any], name: str) -> dict[str, Any]:
    """``body[name]``, a JSON object (empty when absent)."""
    value = body.get(name) or {}
    if not isinstance(value, dict):
        raise ControlError(400, f"{name!r} must be a JSON object, got {value!r}")
    return value


def _field(body: Any, name: str, kind: type) -> Any:
    if not isinstance(body, dict) or name not in body:
        raise ControlError(400, f"missing {name!r} in the request body")
    value = body[name]
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise ControlError(400, f"{name!r} must be a {kind.__name__}, got {value!r}")
    return value
