"""The thread that writes a synthetic table's changes at a steady rate, and the backlog prefill
for throughput benchmarks.

Pacing: the generator owes ``rate * elapsed`` changes and writes what it owes in batches (at
most ``BATCH`` per hold of the stream's lock, so readers are never locked out for long); it
never bursts to catch up more than one second behind, and reports how far behind it is.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from dynabridge.streamsim.records import Change, encoder, item_size
from dynabridge.streamsim.synthetic import ChangeMaker, GeneratorConfig, TableState
from dynabridge.streamsim.world import SimTable, World

log = logging.getLogger(__name__)

BATCH = 200


class Generator:
    def __init__(
        self,
        world: World,
        table: SimTable,
        state: TableState,
        config: GeneratorConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._world = world
        self._table = table
        self._maker = ChangeMaker(state, config, world.clock)
        self._clock = clock
        self._stop = threading.Event()
        self._lock = state.lock
        self.written = 0
        self.behind = 0
        self._restart_pace = True
        self._thread: threading.Thread | None = None

    @property
    def config(self) -> GeneratorConfig:
        return self._maker.config

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"generator-{self._table.name}", daemon=True
        )
        self._thread.start()

    def reconfigure(self, config: GeneratorConfig) -> None:
        with self._lock:
            self._maker.reseed(config)
            self._restart_pace = True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def status(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "written": self.written,
            "behind": self.behind,
            "config": self.config.as_json(),
        }

    def _run(self) -> None:
        started = owed_base = 0.0
        while not self._stop.is_set():
            with self._lock:
                config = self._maker.config
                if self._restart_pace:
                    started, owed_base, self._restart_pace = self._clock(), self.written, False
                if config.total and self.written >= config.total:
                    return
                owed = int(owed_base + (self._clock() - started) * config.rate_per_s)
                if config.total:
                    owed = min(owed, config.total)
                due = owed - self.written
                if due > config.rate_per_s:  # more than a second behind: do not burst
                    started, owed_base = self._clock(), self.written
                self.behind = max(0, due - BATCH)
                batch = [self._maker.next() for _ in range(min(due, BATCH))]
            if batch:
                self._world.append(self._table.latest, batch)
                self.written += len(batch)
                continue
            pause = 1.0 / config.rate_per_s if config.rate_per_s else 0.1
            self._stop.wait(min(0.005, pause))


def prefill(world: World, table: SimTable, records_per_shard: int, record_bytes: int) -> int:
    """Fill every open shard of the table's stream with ``records_per_shard`` records of about
    ``record_bytes`` of JSON each (two images of about half that), serialized once, so serving
    a page costs the server a slice and a join. The items are spread over the shards by
    index, not by key hash. Returns the number of records written."""
    shards = table.latest.model.open_shards
    keys_of = TableState(table.key_schema).keys

    def change(index: int, padding: str) -> Change:
        keys = keys_of(index)
        old = {**keys, "n": {"N": str(index)}, "payload": {"S": padding}}
        new = {**keys, "n": {"N": str(index + 1)}, "payload": {"S": padding}}
        size = item_size(keys) + item_size(old) + item_size(new)
        return Change("MODIFY", keys, new, old, world.clock(), uuid.uuid4().hex, size_bytes=size)

    # The envelope, keys and counters of a record, measured once: the padding makes up the rest.
    sample = encoder(change(0, ""), region=table.region, view_type=table.view_type)
    envelope = len(sample("1" * table.config.sequence_digits).body)
    padding = "x" * max(16, (record_bytes - envelope) // 2)
    written = 0
    for shard_index, shard in enumerate(shards):
        first = shard_index * records_per_shard
        changes = [change(first + i, padding) for i in range(records_per_shard)]
        written += _append_to(world, table, shard.hash_range.start, changes)
    return written


def _append_to(world: World, table: SimTable, hash_value: int, changes: list[Change]) -> int:
    """Append to the shard owning ``hash_value``, whatever the changes' keys hash to."""
    stream = table.latest
    with stream.lock:
        now = world.clock()
        for change in changes:
            stream.model.append(
                now, hash_value, encoder(change, region=table.region, view_type=table.view_type)
            )
    return len(changes)
