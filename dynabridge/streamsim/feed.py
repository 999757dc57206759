"""The feed of a moto-backed table: moto's own stream (one shard, every change of the table in
order) copied into the table's simulated stream, where each change is re-dealt to the shard
covering its key's hash and given a new sequence number.

Invariant: changes enter the simulated stream in moto's order, one thread per table, so the
records of one item keep their order along the simulated lineage. ``Keys`` are rebuilt from
the images (moto double-encodes binary keys there), ``awsRegion`` is the table's region.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from dynabridge.streamsim.moto import Moto, MotoError
from dynabridge.streamsim.records import Change, keys_of
from dynabridge.streamsim.world import SimTable, World

log = logging.getLogger(__name__)

STREAMS = "DynamoDBStreams_20120810."
PAGE = 1000


class MotoFeed:
    def __init__(
        self,
        world: World,
        table: SimTable,
        moto: Moto,
        *,
        idle_min_s: float = 0.002,
        idle_max_s: float = 0.05,
    ) -> None:
        self._world = world
        self._table = table
        self._moto = moto
        self._idle = (idle_min_s, idle_max_s)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._progress = threading.Condition()
        self._polls_started = 0
        self._caught_up = 0
        """The number of the last poll that found nothing more in moto's stream."""
        self.copied = 0
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name=f"feed-{table.name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def sync(self, timeout_s: float = 30.0) -> None:
        """Return once every change moto had recorded when called is in the stream."""
        with self._progress:
            wanted = self._polls_started + 1
            self._wake.set()
            done = self._progress.wait_for(
                lambda: self._caught_up >= wanted or not self._thread.is_alive(), timeout_s
            )
        if not done:
            raise TimeoutError(
                f"moto's stream of {self._table.name!r} was not caught up within {timeout_s:g} s"
            )

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive() and threading.current_thread() is not self._thread:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        wait_s = self._idle[0]
        iterator: str | None = None
        while not self._stop.is_set():
            try:
                if iterator is None:
                    iterator = self._first_iterator()
                with self._progress:
                    self._polls_started += 1
                    number = self._polls_started
                answer = self._call("GetRecords", {"ShardIterator": iterator, "Limit": PAGE})
            except MotoError as error:
                if error.code == "ResourceNotFoundException":
                    self.error = f"moto no longer has table {self._table.name!r}: feed stopped"
                    log.info("%s", self.error)
                    with self._progress:
                        self._progress.notify_all()
                    return
                self.error = str(error)
                log.warning("feed of %s: %s; retrying", self._table.name, error)
                iterator = None
                self._stop.wait(1.0)
                continue
            except OSError as error:
                self.error = f"moto unreachable: {error}"
                log.warning("feed of %s: %s; retrying", self._table.name, self.error)
                self._stop.wait(1.0)
                continue
            records: list[dict[str, Any]] = answer.get("Records", [])
            iterator = answer.get("NextShardIterator")
            if records:
                changes = [self._change(record) for record in records]
                self._world.append(self._table.latest, changes)
                self.copied += len(changes)
                wait_s = self._idle[0]
                continue
            with self._progress:
                self._caught_up = number
                self._progress.notify_all()
            self._wake.wait(wait_s)
            self._wake.clear()
            wait_s = min(self._idle[1], wait_s * 2)

    def _first_iterator(self) -> str:
        table = self._call_tables("DescribeTable", {"TableName": self._table.name})["Table"]
        arn = table.get("LatestStreamArn")
        if not arn:
            raise MotoError(400, "ValidationException", "the moto table has no stream")
        shards = self._call("DescribeStream", {"StreamArn": arn})["StreamDescription"]["Shards"]
        # moto has exactly one shard per stream, which never closes.
        iterator = self._call(
            "GetShardIterator",
            {
                "StreamArn": arn,
                "ShardId": shards[0]["ShardId"],
                "ShardIteratorType": "TRIM_HORIZON",
            },
        )
        return str(iterator["ShardIterator"])

    def _change(self, record: dict[str, Any]) -> Change:
        body = record["dynamodb"]
        new = body.get("NewImage")
        old = body.get("OldImage")
        image = new if new is not None else old
        keys = keys_of(image, self._table.key_names) if image is not None else body["Keys"]
        return Change(
            event_name=record["eventName"],
            keys=keys,
            new_image=new,
            old_image=old,
            created_s=float(body.get("ApproximateCreationDateTime", time.time())),
            event_id=record["eventID"],
        )

    def _call(self, operation: str, request: dict[str, Any]) -> Any:
        return self._moto.call(STREAMS + operation, request, self._table.region)

    def _call_tables(self, operation: str, request: dict[str, Any]) -> Any:
        return self._moto.call("DynamoDB_20120810." + operation, request, self._table.region)
