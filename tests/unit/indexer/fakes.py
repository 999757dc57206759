"""Fakes for the indexer loop: a scripted consumer, search engine and dead-letter topic."""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future

from bridge.contract import ChangeEvent, Encoder, EventName, kafka_key
from consumers.indexer.actions import Action, ActionKind, ItemResult
from consumers.indexer.backend import SearchUnavailable
from consumers.indexer.records import DeadLetter, DeadLetterError, Partition, Record
from consumers.indexer.worker import BulkAnswer, RebalanceListener

TOPIC = "ddb.orders"
P0 = Partition(TOPIC, 0)
P1 = Partition(TOPIC, 1)
OK = ItemResult(201, None, None)

_encoder = Encoder()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def event(doc: str, version: int, name: EventName = EventName.MODIFY) -> ChangeEvent:
    keys = {"id": {"S": doc}}
    image = None if name is EventName.REMOVE else {**keys, "v": {"N": str(version)}}
    return ChangeEvent(
        table="orders",
        event_name=name,
        event_id=f"e{version}",
        stream_arn="arn:aws:dynamodb:us-east-1:1:table/orders/stream/x",
        shard_id="shard-0",
        sequence_number=str(10**20 + version),
        approximate_creation_time_ms=1_700_000_000_000,
        version=version,
        keys=keys,
        new_image=image,
        old_image=None,
    )


def record(partition: Partition, offset: int, change: ChangeEvent | bytes) -> Record:
    value = change if isinstance(change, bytes) else _encoder.encode(change)
    key = b"k" if isinstance(change, bytes) else kafka_key(change.keys)
    return Record(partition.topic, partition.partition, offset, key, value, (("h", b"1"),))


class FakeConsumer:
    """Partitions with queued records; paused partitions deliver nothing; time passes on idle."""

    def __init__(self, clock: FakeClock, assignment: Sequence[Partition] = (P0,)) -> None:
        self.clock = clock
        self.queues: dict[Partition, list[Record]] = {p: [] for p in assignment}
        self.paused: set[Partition] = set()
        self.commits: list[dict[Partition, int]] = []
        self.consume_calls = 0
        self.resumed = 0
        self.consumes_while_paused = 0
        self.closed = False
        self.listener: RebalanceListener | None = None
        self.before_consume: list[Callable[[FakeConsumer], None]] = []
        self.prefetched: list[Record] = []
        """Returned by the next consume whatever the pause state (already fetched)."""
        self.stop = threading.Event()
        self.stop_when: Callable[[], bool] = lambda: False
        self.deadline = clock.now + 3600.0

    def add(self, *records: Record) -> None:
        for r in records:
            self.queues[r.source].append(r)

    def subscribe(self, listener: RebalanceListener) -> None:
        self.listener = listener

    def consume(self, max_records: int, timeout_s: float) -> list[Record]:
        self.consume_calls += 1
        if self.stop_when() or self.clock.now > self.deadline:
            self.stop.set()
        if self.paused:
            self.consumes_while_paused += 1
        hooks, self.before_consume = self.before_consume, []
        for hook in hooks:
            hook(self)
        out, self.prefetched = self.prefetched, []
        for partition, queue in self.queues.items():
            if partition in self.paused:
                continue
            take = queue[: max_records - len(out)]
            del queue[: len(take)]
            out.extend(take)
        if not out:
            self.clock.now += timeout_s
        return out

    def assignment(self) -> list[Partition]:
        return list(self.queues)

    def pause(self, partitions: Collection[Partition]) -> None:
        self.paused |= set(partitions)

    def resume(self, partitions: Collection[Partition]) -> None:
        self.resumed += len(self.paused & set(partitions))
        self.paused -= set(partitions)

    def commit(self, offsets: Mapping[Partition, int]) -> None:
        self.commits.append(dict(offsets))

    def committed(self, partition: Partition) -> int | None:
        for commit in reversed(self.commits):
            if partition in commit:
                return commit[partition]
        return None

    def high_watermark(self, partition: Partition) -> int | None:
        return None

    def close(self) -> None:
        self.closed = True

    def revoke(self, *partitions: Partition) -> None:
        assert self.listener is not None
        self.listener.on_revoked(list(partitions))
        for partition in partitions:
            self.queues.pop(partition, None)
            self.paused.discard(partition)


Script = Callable[[Sequence[Action]], list[ItemResult]]


class FakeSearch:
    """An engine in a dict, as a managed index behaves: external_gte versions, and a deleted
    document's version kept for good (a tombstone document), unless a script answers first.

    It passes the same contract suite as Elasticsearch and OpenSearch
    (``tests/contracts/search_backend.py``).
    """

    def __init__(self, clock: FakeClock, gc_deletes_s: float = 3600.0) -> None:
        self.clock = clock
        self.gc_deletes_s = gc_deletes_s
        self.docs: dict[tuple[str, str], tuple[int, dict[str, object] | None]] = {}
        self.tombstones: dict[tuple[str, str], tuple[int, float]] = {}
        """(index, id) -> (version of the delete, its event time in epoch s): documents."""
        self.forgotten: dict[tuple[str, str], tuple[int, float]] = {}
        """Real deletes (purged tombstones): remembered for ``gc_deletes_s`` only."""
        self.bulks: list[list[Action]] = []
        self.script: list[Script] = []
        self.down_until = 0.0
        self.pings = 0
        self.indices: set[str] = set()

    def ensure_index(self, index: str) -> None:
        if self.clock.now < self.down_until:
            raise SearchUnavailable("connection refused")
        self.indices.add(index)

    def bulk(self, actions: Sequence[Action]) -> list[ItemResult]:
        if self.clock.now < self.down_until:
            raise SearchUnavailable("connection refused")
        self.bulks.append(list(actions))
        if self.script:
            return self.script.pop(0)(actions)
        for index in {action.index for action in actions}:
            self.indices.add(index)
        return [self.apply(a) for a in actions]

    def apply(self, action: Action) -> ItemResult:
        key = (action.index, action.doc_id)
        current = self.docs.get(key)
        known = current[0] if current is not None else self._remembered_delete(key)
        if known is not None and known > action.version:
            return ItemResult(409, "version_conflict_engine_exception", "stale")
        if action.kind is ActionKind.PURGE:
            tombstone = self.tombstones.pop(key, None)
            if tombstone is None:
                return ItemResult(404, None, None)
            self.forgotten[key] = (action.version, self.clock.now)
            return ItemResult(200, None, None)
        if action.kind is ActionKind.DELETE:
            self.docs.pop(key, None)
            created = current is None and key not in self.tombstones
            self.tombstones[key] = (action.version, action.event_time_ms / 1000)
            return ItemResult(201 if created else 200, None, None)
        self.tombstones.pop(key, None)
        self.docs[key] = (action.version, action.document)
        return OK if current is None else ItemResult(200, None, None)

    def _remembered_delete(self, key: tuple[str, str]) -> int | None:
        # A managed index's delete is a tombstone document: its version outlives gc_deletes;
        # a real delete (a purge) is remembered for gc_deletes only.
        tombstone = self.tombstones.get(key)
        if tombstone is not None:
            return tombstone[0]
        forgotten = self.forgotten.get(key)
        if forgotten is None or self.clock.now - forgotten[1] >= self.gc_deletes_s:
            return None
        return forgotten[0]

    def purge_tombstones(self, older_than_ms: int, limit: int = 1000) -> int:
        """Tombstones applied before ``older_than_ms`` on the fake's clock (as epoch ms)."""
        old = [key for key, (_, at) in self.tombstones.items() if at * 1000 < older_than_ms]
        for index, doc in old[:limit]:
            version = self.tombstones[(index, doc)][0]
            self.apply(Action(ActionKind.PURGE, index, doc, version, None))
        return min(len(old), limit)

    def ping(self) -> bool:
        self.pings += 1
        return self.clock.now >= self.down_until

    def close(self) -> None:
        return


class FakeDeadLetters:
    def __init__(self) -> None:
        self.letters: list[DeadLetter] = []
        self.fail = False

    def publish(self, letters: Sequence[DeadLetter]) -> None:
        if self.fail:
            raise DeadLetterError("broker unreachable")
        self.letters.extend(letters)


def inline(call: Callable[[], BulkAnswer]) -> Future[BulkAnswer]:
    """Run the bulk at once on the loop's thread: deterministic tests of the in-flight logic."""
    future: Future[BulkAnswer] = Future()
    try:
        future.set_result(call())
    except Exception as error:  # noqa: BLE001 - a future carries whatever the call raised
        future.set_exception(error)
    return future


class DeferredBulks:
    """A ``submit`` that holds every bulk until the test finishes it, in whatever order the test
    picks: the engine applies a bulk's writes only when it is finished."""

    def __init__(self) -> None:
        self.pending: list[tuple[Callable[[], BulkAnswer], Future[BulkAnswer]]] = []
        self.most_in_flight = 0

    def __call__(self, call: Callable[[], BulkAnswer]) -> Future[BulkAnswer]:
        future: Future[BulkAnswer] = Future()
        self.pending.append((call, future))
        self.most_in_flight = max(self.most_in_flight, len(self.pending))
        return future

    def finish(self, position: int = 0) -> None:
        """Run the ``position``-th pending bulk (0: the oldest) against the engine now."""
        call, future = self.pending.pop(position)
        try:
            future.set_result(call())
        except Exception as error:  # noqa: BLE001 - a future carries whatever the call raised
            future.set_exception(error)
