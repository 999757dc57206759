"""The simulator's tables and their streams: who owns which ARN, the lock of each stream, and
the one way changes enter a stream (``World.append``).

Each stream has its own lock, held only while the model is read or changed, never while a
request waits out an injected latency; so 64 shards at 40 ms answer as 64 parallel 40 ms
calls. A table has one latest stream; disabling and re-enabling its stream gives a new ARN
and label, and the old stream stays readable (closed) until trimmed or the table is dropped.
"""

from __future__ import annotations

import datetime as dt
import enum
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dynabridge.streamsim.config import StreamConfig
from dynabridge.streamsim.hashing import key_hash
from dynabridge.streamsim.model import Stream, StreamDisabled, StreamStatus
from dynabridge.streamsim.records import Change, encoder
from dynabridge.streamsim.stats import Stats

if TYPE_CHECKING:
    from dynabridge.streamsim.feed import MotoFeed
    from dynabridge.streamsim.generator import Generator
    from dynabridge.streamsim.synthetic import TableState

ACCOUNT = "123456789012"
"""moto's default account, so ARNs of both look alike."""
VIEW_TYPES = ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES")


class Source(enum.StrEnum):
    MOTO = "moto"
    """The table lives in moto; its changes come from moto's own stream."""
    SYNTHETIC = "synthetic"
    """The table exists only here; the simulator writes its changes (or a prefilled backlog)."""


@dataclass(frozen=True, slots=True)
class KeyAttribute:
    name: str
    type: str  # S, N or B
    key_type: str  # HASH or RANGE


class SimStream:
    """A model stream with what serving it needs: its lock, readers per shard, call times."""

    def __init__(self, table: SimTable, model: Stream) -> None:
        self.table = table
        self.model = model
        self.lock = threading.Lock()
        self.readers: dict[str, int] = {}
        self.describe_calls: deque[float] = deque()

    @property
    def arn(self) -> str:
        return self.model.arn


@dataclass(slots=True)
class SimTable:
    name: str
    source: Source
    region: str
    key_schema: tuple[KeyAttribute, ...]
    view_type: str
    config: StreamConfig
    created_s: float
    streams: list[SimStream] = field(default_factory=list)
    """Oldest first; the last one is the table's latest stream."""
    feed: MotoFeed | None = None
    """A moto table's changes, copied from moto's stream."""
    state: TableState | None = None
    """A synthetic table's items."""
    generator: Generator | None = None
    backlog_records: int = 0

    def sync(self) -> None:
        """Wait until every change made so far (in moto) is in the stream."""
        if self.feed is not None:
            self.feed.sync()

    def stop(self) -> None:
        for driver in (self.feed, self.generator):
            if driver is not None:
                driver.stop()

    @property
    def latest(self) -> SimStream:
        return self.streams[-1]

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(key.name for key in self.key_schema)

    @property
    def stream_enabled(self) -> bool:
        return bool(self.streams) and self.latest.model.status is StreamStatus.ENABLED


class WorldError(ValueError):
    """A control request the simulator refuses; the message names the table and the fix."""


class World:
    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        seed: int | None = None,
        account: str = ACCOUNT,
    ) -> None:
        self.clock = clock
        self.rng = random.Random(seed)
        self.account = account
        self.stats = Stats()
        self._lock = threading.Lock()
        self.tables: dict[str, SimTable] = {}
        self._streams: dict[str, SimStream] = {}

    def add_table(
        self,
        name: str,
        *,
        source: Source,
        region: str,
        key_schema: tuple[KeyAttribute, ...],
        view_type: str,
        config: StreamConfig,
    ) -> SimTable:
        if view_type not in VIEW_TYPES:
            raise WorldError(f"StreamViewType {view_type!r} is not one of {', '.join(VIEW_TYPES)}")
        with self._lock:
            if name in self.tables:
                raise WorldError(
                    f"table {name!r} is already simulated; DELETE /_sim/tables/{name} first, "
                    "or change its stream with PATCH"
                )
            table = SimTable(name, source, region, key_schema, view_type, config, self.clock())
            self.tables[name] = table
            self._new_stream(table)
        return table

    def table(self, name: str) -> SimTable:
        found = self.tables.get(name)
        if found is None:
            raise WorldError(f"table {name!r} is not simulated (POST /_sim/tables to add it)")
        return found

    def find(self, name: str) -> SimTable | None:
        return self.tables.get(name)

    def all_tables(self) -> list[SimTable]:
        """A snapshot (other threads add and drop tables)."""
        with self._lock:
            return list(self.tables.values())

    def stream(self, arn: str) -> SimStream | None:
        return self._streams.get(arn)

    def streams(self) -> list[SimStream]:
        with self._lock:
            return list(self._streams.values())

    def drop_table(self, name: str) -> SimTable | None:
        with self._lock:
            table = self.tables.pop(name, None)
            if table is not None:
                for stream in table.streams:
                    self._streams.pop(stream.arn, None)
        return table

    def disable_stream(self, table: SimTable) -> None:
        """Turn the table's stream off, once every change made before is in it."""
        table.sync()
        stream = table.latest
        with stream.lock:
            stream.model.disable(self.clock())

    def enable_stream(self, table: SimTable, view_type: str | None = None) -> SimStream:
        """A new stream (new ARN and label) for a table whose stream is disabled."""
        if table.stream_enabled:
            raise WorldError(f"table {table.name!r} already has an enabled stream")
        table.sync()  # changes made while it was off are not in any stream
        if view_type is not None:
            table.view_type = view_type
        with self._lock:
            return self._new_stream(table)

    def reconfigure(self, table: SimTable, changes: dict[str, Any]) -> StreamConfig:
        config = table.config.updated(changes)
        stream = table.latest
        with stream.lock:
            stream.model.reconfigure(self.clock(), config)
        table.config = config
        return config

    def append(self, stream: SimStream, changes: Iterable[Change]) -> int:
        """Deal changes into the stream, in order; a disabled stream drops them (as DynamoDB
        does not record changes while a table's stream is off). Returns how many were kept."""
        table = stream.table
        hash_name = table.key_schema[0].name
        kept = 0
        with stream.lock:
            model = stream.model
            now = self.clock()
            model.advance(now)
            for change in changes:
                try:
                    model.append(
                        now,
                        key_hash(change.keys[hash_name]),
                        encoder(change, region=table.region, view_type=table.view_type),
                    )
                except StreamDisabled:
                    return kept
                kept += 1
        return kept

    def _new_stream(self, table: SimTable) -> SimStream:
        now = self.clock()
        label = _label(now)
        previous = table.streams[-1].model.label if table.streams else ""
        while label <= previous:  # two streams of one table never share a label
            now += 0.001
            label = _label(now)
        arn = f"arn:aws:dynamodb:{table.region}:{self.account}:table/{table.name}/stream/{label}"
        model = Stream(
            table=table.name,
            arn=arn,
            label=label,
            created_s=now,
            view_type=table.view_type,
            config=table.config,
            rng=random.Random(self.rng.getrandbits(64)),
        )
        stream = SimStream(table, model)
        table.streams.append(stream)
        self._streams[arn] = stream
        return stream


def _label(now: float) -> str:
    """AWS's stream label: the creation time, UTC, in milliseconds."""
    moment = dt.datetime.fromtimestamp(now, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"
