"""``SimClient``: the typed client of the simulator's control API (``/_sim/...``), for tests,
benchmarks and hands. Plain HTTP; the AWS APIs on the same port are for boto3.

    sim = SimClient("http://127.0.0.1:5100")
    sim.simulate_moto_table("orders", shards=4, rotate_every_records=100)
    sim.rotate("orders", sim.shards("orders")[0].shard_id)
    sim.records("orders")          # every record emitted, per shard: the oracle
"""

from __future__ import annotations

import http.client
import itertools
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson


class SimError(Exception):
    """The control API refused a request; ``status`` is its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class ShardInfo:
    shard_id: str
    parent_shard_id: str | None
    hash_range: tuple[int, int]
    starting_sequence_number: str
    ending_sequence_number: str | None
    open: bool
    created_s: float
    closed_s: float | None
    appended: int
    """Records ever dealt into the shard."""
    live_records: int
    """Records not trimmed yet."""
    listed: bool
    """Shown by DescribeStream now (a recent child may lag, a gone shard is not)."""
    gone: bool
    """Trimmed away: no longer in the stream."""

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> ShardInfo:
        return cls(
            shard_id=raw["shard_id"],
            parent_shard_id=raw["parent_shard_id"],
            hash_range=(int(raw["hash_range"][0]), int(raw["hash_range"][1])),
            starting_sequence_number=raw["starting_sequence_number"],
            ending_sequence_number=raw["ending_sequence_number"],
            open=raw["open"],
            created_s=raw["created_s"],
            closed_s=raw["closed_s"],
            appended=raw["appended"],
            live_records=raw["live_records"],
            listed=raw["listed"],
            gone=raw["gone"],
        )


@dataclass(frozen=True, slots=True)
class EmittedRecord:
    shard_id: str
    sequence_number: str
    event_name: str
    event_id: str
    keys: dict[str, Any]
    appended_s: float


@dataclass(frozen=True, slots=True)
class Poll:
    started_s: float
    ended_s: float
    records: int


@dataclass(frozen=True, slots=True)
class ShardStats:
    table: str
    max_readers: int
    throttled: int
    get_records: int
    polls: tuple[Poll, ...]
    """Every GetRecords of the shard (wall-clock start and end, records returned)."""

    def intervals_s(self) -> list[float]:
        """Seconds between the starts of consecutive GetRecords (how often it is polled)."""
        starts = sorted(poll.started_s for poll in self.polls)
        return [later - earlier for earlier, later in itertools.pairwise(starts)]

    def gaps_after_records_s(self) -> list[float]:
        """For each GetRecords that returned records, seconds from its end to the start of the
        next one (how long the reader took before asking for more)."""
        ordered = sorted(self.polls, key=lambda poll: poll.started_s)
        return [
            later.started_s - earlier.ended_s
            for earlier, later in itertools.pairwise(ordered)
            if earlier.records
        ]


@dataclass(frozen=True, slots=True)
class Stats:
    calls: dict[str, int]
    errors: dict[str, int]
    """``"<Operation>:<ErrorCode>"`` -> how many times it was answered."""
    shards: dict[str, ShardStats]


class SimClient:
    def __init__(self, endpoint: str, *, timeout_s: float = 60.0) -> None:
        parsed = urllib.parse.urlsplit(endpoint)
        if not parsed.hostname:
            raise ValueError(f"simulator endpoint must be http://host:port, got {endpoint!r}")
        self.endpoint = endpoint.rstrip("/")
        self._host = parsed.hostname
        self._port = parsed.port or 80
        self._timeout_s = timeout_s

    # -- server --------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        return self._call("GET", "/health")  # type: ignore[no-any-return]

    def stats(self, table: str | None = None, *, polls: bool = True) -> Stats:
        query = {"polls": "1" if polls else "0", **({"table": table} if table else {})}
        raw = self._call("GET", "/stats", query=query)
        return Stats(
            calls=raw["calls"],
            errors=raw["errors"],
            shards={
                shard_id: ShardStats(
                    table=entry["table"],
                    max_readers=entry["max_readers"],
                    throttled=entry["throttled"],
                    get_records=entry["get_records"],
                    polls=tuple(Poll(*poll) for poll in entry.get("polls", [])),
                )
                for shard_id, entry in raw["shards"].items()
            },
        )

    def reset_stats(self) -> None:
        self._call("DELETE", "/stats")

    def throttle_tables(
        self, pattern: str, rate: float, operations: Sequence[str] = ()
    ) -> list[dict[str, Any]]:
        """Answer ProvisionedThroughputExceededException to ``rate`` of the DynamoDB calls on
        tables matching ``pattern`` (fnmatch), replacing earlier rules."""
        rule = {"pattern": pattern, "rate": rate, "operations": list(operations)}
        return self._call("PUT", "/throttle", {"rules": [rule]})["rules"]  # type: ignore[no-any-return]

    def clear_throttling(self) -> None:
        self._call("DELETE", "/throttle")

    # -- tables --------------------------------------------------------------------------

    def simulate_moto_table(
        self, table: str, *, region: str | None = None, **stream: Any
    ) -> dict[str, Any]:
        """Simulate the stream of an existing moto table (created with an enabled stream):
        every change written to moto from then on, and before, is dealt into its shards."""
        body = {"table": table, "source": "moto", "stream": stream}
        if region:
            body["region"] = region
        return self._call("POST", "/tables", body)  # type: ignore[no-any-return]

    def create_synthetic_table(
        self,
        table: str,
        *,
        key_schema: Sequence[tuple[str, str]] = (("pk", "S"),),
        view_type: str = "NEW_AND_OLD_IMAGES",
        region: str | None = None,
        generator: dict[str, Any] | None = None,
        backlog: dict[str, Any] | None = None,
        **stream: Any,
    ) -> dict[str, Any]:
        """A table that exists only in the simulator. ``key_schema``: (name, S|N|B), hash key
        first; ``generator``: start writing changes (see ``generate``); ``backlog``:
        ``{"records_per_shard": M, "record_bytes": 2048}`` prefilled in every shard."""
        body: dict[str, Any] = {
            "table": table,
            "source": "synthetic",
            "key_schema": [{"name": name, "type": kind} for name, kind in key_schema],
            "view_type": view_type,
            "stream": stream,
        }
        if region:
            body["region"] = region
        if generator is not None:
            body["generator"] = generator
        if backlog is not None:
            body["backlog"] = backlog
        return self._call("POST", "/tables", body)  # type: ignore[no-any-return]

    def table(self, table: str) -> dict[str, Any]:
        return self._call("GET", f"/tables/{_q(table)}")  # type: ignore[no-any-return]

    def tables(self) -> list[dict[str, Any]]:
        return self._call("GET", "/tables")["tables"]  # type: ignore[no-any-return]

    def drop(self, table: str, *, missing_ok: bool = False) -> None:
        try:
            self._call("DELETE", f"/tables/{_q(table)}")
        except SimError as error:
            if not (missing_ok and error.status == 404):
                raise

    def configure(self, table: str, **changes: Any) -> dict[str, Any]:
        """Change stream settings at runtime (e.g. ``throttle_rate=0.1``); returns them all."""
        return self._call("PATCH", f"/tables/{_q(table)}/stream", changes)["stream"]  # type: ignore[no-any-return]

    def disable_stream(self, table: str) -> dict[str, Any]:
        return self._call("POST", f"/tables/{_q(table)}/stream/disable")  # type: ignore[no-any-return]

    def enable_stream(self, table: str, view_type: str | None = None) -> dict[str, Any]:
        """A new stream (new ARN and label); the old one stays readable until trimmed."""
        body = {"view_type": view_type} if view_type else {}
        return self._call("POST", f"/tables/{_q(table)}/stream/enable", body)  # type: ignore[no-any-return]

    # -- shards --------------------------------------------------------------------------

    def shards(self, table: str, stream_arn: str | None = None) -> list[ShardInfo]:
        """Every shard of the stream (default: the latest), gone ones included, in id order."""
        raw = self._call("GET", f"/tables/{_q(table)}/shards", query=_stream(stream_arn))
        return [ShardInfo.from_json(shard) for shard in raw["shards"]]

    def rotate(self, table: str, shard_id: str) -> list[ShardInfo]:
        """Close an open shard; returns its child (same hash range)."""
        raw = self._call("POST", f"/tables/{_q(table)}/shards/{_q(shard_id)}/rotate")
        return [ShardInfo.from_json(child) for child in raw["children"]]

    def split(self, table: str, shard_id: str) -> list[ShardInfo]:
        """Close an open shard; returns its two children (halves of its range)."""
        raw = self._call("POST", f"/tables/{_q(table)}/shards/{_q(shard_id)}/split")
        return [ShardInfo.from_json(child) for child in raw["children"]]

    def trim(self, table: str, *, older_than_s: float = 0.0, shard_id: str | None = None) -> int:
        """Trim records older than ``older_than_s`` (0: all) of one shard or every shard."""
        body: dict[str, Any] = {"older_than_s": older_than_s}
        if shard_id:
            body["shard_id"] = shard_id
        return int(self._call("POST", f"/tables/{_q(table)}/trim", body)["trimmed"])

    def records(self, table: str, stream_arn: str | None = None) -> list[EmittedRecord]:
        """Every record the stream emitted (trimmed ones too), shard by shard in id order,
        each shard's in sequence order. Needs the stream setting ``oracle`` (default on)."""
        raw = self._call("GET", f"/tables/{_q(table)}/records", query=_stream(stream_arn))
        return [
            EmittedRecord(
                shard_id=shard_id,
                sequence_number=entry["SequenceNumber"],
                event_name=entry["eventName"],
                event_id=entry["eventID"],
                keys=entry["Keys"],
                appended_s=entry["appended_s"],
            )
            for shard_id, entries in raw["shards"].items()
            for entry in entries
        ]

    # -- synthetic tables ----------------------------------------------------------------

    def items(self, table: str) -> list[dict[str, Any]]:
        """A synthetic table's items as its changes left them (the expected final state)."""
        return self._call("GET", f"/tables/{_q(table)}/items")["items"]  # type: ignore[no-any-return]

    def generate(self, table: str, **settings: Any) -> dict[str, Any]:
        """Start (or change) a synthetic table's generator: ``rate_per_s``, ``total``,
        ``items``, ``remove_share``, ``ttl_share``, ``item_bytes_min``/``max``,
        ``large_share``, ``large_item_bytes``, ``shape``, ``stamp_write_time``, ``seed``."""
        return self._call("PUT", f"/tables/{_q(table)}/generator", settings)  # type: ignore[no-any-return]

    def generator(self, table: str) -> dict[str, Any]:
        return self._call("GET", f"/tables/{_q(table)}/generator")  # type: ignore[no-any-return]

    def stop_generator(self, table: str) -> dict[str, Any]:
        return self._call("DELETE", f"/tables/{_q(table)}/generator")  # type: ignore[no-any-return]

    # -- transport -----------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        *,
        query: dict[str, str] | None = None,
    ) -> Any:
        target = "/_sim" + path
        if query:
            target += "?" + urllib.parse.urlencode(query)
        connection = http.client.HTTPConnection(self._host, self._port, timeout=self._timeout_s)
        try:
            payload = orjson.dumps(body) if body is not None else b""
            connection.request(method, target, payload, {"Content-Type": "application/json"})
            response = connection.getresponse()
            data = response.read()
        finally:
            connection.close()
        answer = orjson.loads(data) if data else {}
        if response.status != 200:
            raise SimError(response.status, str(answer.get("error", data[:200])))
        return answer


def _q(part: str) -> str:
    return urllib.parse.quote(part, safe="")


def _stream(stream_arn: str | None) -> dict[str, str] | None:
    return {"stream": stream_arn} if stream_arn else None
