"""The bridge's one loop: leases -> GetRecords -> versioned events -> Kafka -> checkpoints.

GetRecords run in the fetch stage (``bridge.fetcher``), many shards at once and at most one
call per shard; everything that decides what is published and checkpointed stays here, on the
loop's thread: applying a page to its reader, versions, publishing, acknowledgements,
checkpoints, leases. A shard is checkpointed only at the last record of its contiguous
Kafka-acknowledged prefix and finished (SHARD_END) only once drained and fully acknowledged. A
lease reported lost is dropped at once and never checkpointed again, and a fetch still in flight
for it is discarded. Leases are renewed by the lease keeper's thread, which runs from the first
turn until the final checkpoints, and stops before the leases are released. Fatal errors
propagate, the keeper's and the fetch stage's included (crash-only: the restart resumes from the
checkpoints, and re-read records are byte-identical duplicates).
"""

from __future__ import annotations

import functools
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from bridge.acks import DeliveryError, Position
from bridge.checkpoint_writer import InlineCheckpointWriter, Kind, Outcome, Write
from bridge.contract.event import ChangeEvent
from bridge.fetcher import DEFAULT_BYTES_PER_RECORD, Completed, InlineFetcher, page_limit
from bridge.lease_snapshots import LeaseSnapshots, LeaseSource
from bridge.leases import SHARD_END, LeaseTableUnavailable
from bridge.load import ShardLoad
from bridge.metrics import BridgeMetrics
from bridge.reader import FetchRequest, Gap, ReadResult, ShardReader, StreamsClient
from bridge.records import ShardSource
from bridge.runtime.health import Heartbeat
from bridge.runtime.settings import BridgeSettings
from bridge.scaling import BridgeTargets, fleet

log = logging.getLogger(__name__)

CHECKPOINT_INTERVAL_S = 1.0
"""Checkpoint writes are DynamoDB writes: at most one per shard per second, plus at the end."""
MAX_WAIT_S = 0.1
"""Longest nap between turns, so leases, signals and the heartbeat are served promptly."""
FETCH_WAKE_S = 0.005
"""While fetches and Kafka deliveries are both outstanding, the loop serves delivery reports in
slices this long and looks for finished fetches between them (librdkafka's poll cannot be
woken by another thread)."""
SCALING_REPORT_INTERVAL_S = 5.0
"""How often the scaling metrics are computed from the lease rows (a take round's pace)."""


class TrimmedDataLostError(Exception):
    """Records were trimmed before being read and ``bridge.trimmed_policy`` is ``fail``."""


class LeaseView(Protocol):
    """What the worker reads of a lease (``bridge.leases.Lease`` satisfies it)."""

    @property
    def lease_key(self) -> str: ...
    @property
    def table(self) -> str: ...
    @property
    def stream_arn(self) -> str: ...
    @property
    def shard_id(self) -> str: ...
    @property
    def owner(self) -> str | None: ...
    @property
    def checkpoint(self) -> str: ...
    @property
    def last_version(self) -> int: ...
    @property
    def load(self) -> ShardLoad: ...


class Coordinator(Protocol):
    """Leases, lineage and checkpoints (``bridge.coordinator.LeaseCoordinator``)."""

    def readable(self) -> Sequence[LeaseView]: ...
    def checkpoint(self, lease_key: str, sequence_number: str, last_version: int) -> bool: ...
    def shard_end(self, lease_key: str, last_version: int) -> bool: ...
    def record_gap(self, lease_key: str, gap: str) -> bool: ...
    def lost(self) -> set[str]: ...
    def release_all(self) -> None: ...
    def drain(self) -> None:
        """Take no more leases: the worker is stopping."""
        ...

    def leases(self) -> Sequence[LeaseView]: ...
    def observe(
        self, lease_key: str, records: int, last_creation_ms: int | None, caught_up: bool
    ) -> None:
        """Count a page read into the shard's load, carried by the lease's next write."""
        ...

    def workers(self) -> set[str]:
        """Live workers as the lease table shows them, ourselves included."""
        ...


class Keeper(Protocol):
    """Renews and takes leases off the loop (``bridge.lease_keeper.LeaseKeeper``)."""

    def start(self) -> None: ...
    def stop(self, timeout_s: float = ...) -> None:
        """Returns once no renewal or take runs any more."""
        ...

    def raise_if_failed(self) -> None:
        """Raise the error that stopped the keeper, if any."""
        ...


class Publisher(Protocol):
    """Kafka as the worker sees it (``bridge.producer.KafkaPublisher``)."""

    def publish(self, event: ChangeEvent, on_delivery: Callable[[str | None], None]) -> None: ...
    def poll(self, timeout_s: float) -> None: ...
    def flush(self, timeout_s: float) -> int:
        """Wait for outstanding deliveries, serving callbacks; returns how many remain."""
        ...


class FetchStage(Protocol):
    """GetRecords off the loop (``bridge.fetcher.Fetcher``; ``InlineFetcher`` runs them in it)."""

    @property
    def max_bytes(self) -> int: ...
    def start(self) -> None: ...
    def room(self) -> bool: ...
    def submit(self, owner: object, request: FetchRequest, estimate_bytes: int) -> None: ...
    def completed(self) -> Sequence[Completed]: ...
    def release(self, completed: Completed) -> None: ...
    def held(self) -> tuple[int, int]: ...
    def calls_in_flight(self) -> int: ...
    def wait(self, timeout_s: float) -> None: ...
    def ready(self) -> bool: ...
    def close(self) -> None: ...


class CheckpointStage(Protocol):
    """Lease-table writes off the loop (``bridge.checkpoint_writer.CheckpointWriter``)."""

    def start(self) -> None: ...
    def pending(self, lease_key: str) -> bool: ...
    def submit(self, request: Write) -> None: ...
    def outcomes(self) -> list[Outcome]: ...
    def idle(self, timeout_s: float) -> bool: ...
    def close(self) -> None: ...


class Worker:
    """Runs until ``stop`` is set, then flushes, checkpoints and releases every lease."""

    def __init__(
        self,
        coordinator: Coordinator,
        streams: StreamsClient,
        publisher: Publisher,
        metrics: BridgeMetrics,
        heartbeat: Heartbeat,
        settings: BridgeSettings,
        stop: threading.Event,
        *,
        keeper: Keeper,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        checkpoint_interval_s: float = CHECKPOINT_INTERVAL_S,
        fetcher: FetchStage | None = None,
        checkpoints: CheckpointStage | None = None,
        lease_snapshots: LeaseSnapshots[LeaseView] | None = None,
        timer: Callable[[], float] = time.perf_counter,
        scaling: BridgeTargets | None = None,
    ) -> None:
        self._coordinator = coordinator
        self._snapshots = lease_snapshots
        self._view: LeaseSource[LeaseView] = lease_snapshots or coordinator
        self._writer: CheckpointStage = checkpoints or InlineCheckpointWriter(coordinator)
        self._writing: dict[str, ShardReader] = {}
        self._fetcher: FetchStage = fetcher or InlineFetcher(streams, clock=clock, sleep=sleep)
        self._timer = timer
        self._publisher = publisher
        self._metrics = metrics
        self._heartbeat = heartbeat
        self._settings = settings
        self._stop = stop
        self._keeper = keeper
        self._clock = clock
        self._wall_clock = wall_clock
        self._sleep = sleep
        self._rng = rng
        self._checkpoint_interval_s = checkpoint_interval_s
        self._readers: dict[str, ShardReader] = {}
        self._published: dict[str, int] = {}
        self._finished: set[str] = set()
        """Leases this loop wrote SHARD_END for: a lease view taken before that write may still
        show them readable, and reading one again would re-publish a parent after its children."""
        self._checkpointed: dict[str, int] = {}
        """Lease -> the lease snapshots' mark after this loop's last checkpoint of it: a reader
        is made again only from a view taken after that write (a view from before it would
        start from an older checkpoint, and the next checkpoint would move it backwards)."""
        self._scaling = scaling or BridgeTargets()
        self._next_scaling_report = 0.0

    def run(self) -> None:
        """Turn until ``stop``; the caller has already run ``coordinator.start()``."""
        self._keeper.start()
        self._fetcher.start()
        self._writer.start()
        if self._snapshots is not None:
            self._snapshots.start()
        try:
            self._heartbeat.set_ready(True)
            while not self._stop.is_set():
                self._turn()
            self._shutdown()
        finally:
            if self._snapshots is not None:
                self._snapshots.stop()
            self._fetcher.close()
            self._writer.close()
            self._keeper.stop()  # after a fatal error: no release (crash-only), leases expire

    def _turn(self) -> None:
        self._keeper.raise_if_failed()
        self._sync_readers()
        self._fetch_due()
        for completed in self._fetcher.completed():
            self._keeper.raise_if_failed()
            self._collect(completed)
        self._publisher.poll(0)
        self._settle(self._clock(), final=False)
        self._report_scaling(self._clock())
        self._heartbeat.beat()
        self._wait()

    def _sync_readers(self) -> None:
        readable = {lease.lease_key: lease for lease in self._view.readable()}
        lost = self._view.lost()
        for key in [k for k in self._readers if k in lost or k not in readable]:
            self._drop(key, "lease lost" if key in lost else "lease no longer readable")
        for key, lease in readable.items():
            if key in self._readers or key in lost or key in self._finished:
                continue
            if key in self._writing:  # its outcome (maybe SHARD_END) comes first
                continue
            if not self._seen_own_checkpoint(key):
                continue
            if lease.checkpoint != SHARD_END:
                source = ShardSource(lease.table, lease.stream_arn, lease.shard_id)
                self._readers[key] = ShardReader(
                    key, source, lease.checkpoint, lease.last_version, self._settings, self._rng
                )
                self._published[key] = 0
                log.info(
                    "reading %s shard %s from %s", lease.table, lease.shard_id, lease.checkpoint
                )
        owner = self._settings.worker_id
        leases = self._view.leases()
        self._metrics.leases_owned.set(sum(1 for lease in leases if lease.owner == owner))
        keys = {lease.lease_key for lease in leases}
        self._finished &= keys
        self._checkpointed = {k: m for k, m in self._checkpointed.items() if k in keys}

    def _seen_own_checkpoint(self, key: str) -> bool:
        """Whether the lease view shows this loop's last checkpoint of ``key`` (if any)."""
        mark = self._checkpointed.get(key)
        if mark is None or self._snapshots is None:  # the coordinator itself is never behind
            return True
        if not self._snapshots.taken_since(mark):
            return False
        del self._checkpointed[key]
        return True

    def _drop(self, key: str, why: str) -> None:
        reader = self._readers.pop(key)
        self._published.pop(key, None)
        self._metrics.forget_shard(reader.source.table, reader.source.shard_id)
        log.info(
            "stopped reading %s shard %s: %s", reader.source.table, reader.source.shard_id, why
        )

    def _fetch_due(self) -> None:
        """Ask for the next page of every due shard, longest waiting first, while there is room."""
        now = self._clock()
        due = [reader for reader in self._readers.values() if reader.due(now)]
        due.sort(key=ShardReader.next_poll_at)
        busy = sum(1 for reader in self._readers.values() if reader.has_data)
        for reader in due:
            if not self._fetcher.room():
                return
            self._submit(reader, busy)

    def _submit(self, reader: ShardReader, busy: int) -> None:
        per_record = reader.bytes_per_record or DEFAULT_BYTES_PER_RECORD
        limit = page_limit(
            self._settings.get_records_limit,
            self._fetcher.max_bytes,
            busy,
            per_record,
            reader.last_records,
        )
        request = reader.request(limit)
        self._fetcher.submit(reader, request, int(request.limit * per_record))

    def _collect(self, completed: Completed) -> None:
        """Apply a finished fetch to its reader, fetch its next page, publish this one."""
        reader = completed.owner
        assert isinstance(reader, ShardReader)
        try:
            if self._readers.get(reader.lease_key) is not reader:
                return  # dropped (lease lost) while the fetch was in flight: never applied
            if completed.fatal is not None:
                raise completed.fatal
            assert completed.fetched is not None
            started = self._timer()
            result = reader.apply(completed.fetched, self._clock())
            converted_s = self._timer() - started
            self._observe(reader, result, converted_s)
            if result.gap is not None:
                self._gap(reader, result.gap)
            current = self._readers.get(reader.lease_key) is reader  # a gap may drop it
            if current and reader.due(self._clock()) and self._fetcher.room():
                # The next page is fetched while the loop publishes this one.
                busy = sum(1 for r in self._readers.values() if r.has_data)
                self._submit(reader, busy)
            self._publish(reader, result)
        finally:
            self._fetcher.release(completed)

    def _observe(self, reader: ShardReader, result: ReadResult, converted_s: float) -> None:
        table = reader.source.table
        if result.throttled:
            self._metrics.throttles.labels(table).inc()
            return
        self._metrics.get_records_s.labels(table).observe(result.elapsed_s)
        if result.page is not None:
            self._metrics.parse_s.labels(table).observe(result.page.parse_s)
            self._metrics.convert_s.labels(table).observe(converted_s)
        if result.elapsed_s > self._settings.lease_duration_s / 2:
            log.warning(
                "GetRecords of %s shard %s took %.1fs (over half of bridge.lease_duration_s): "
                "the stream endpoint is slow",
                table,
                reader.source.shard_id,
                result.elapsed_s,
            )

    def _publish(self, reader: ShardReader, result: ReadResult) -> None:
        source = reader.source
        self._coordinator.observe(
            reader.lease_key, len(result.events), result.last_creation_ms, result.caught_up
        )
        if result.events:
            self._metrics.records_read.labels(source.table).inc(len(result.events))
            started = self._timer()
            sent, delivered, publish = (
                reader.acks.sent,
                reader.acks.delivered,
                self._publisher.publish,
            )
            events = result.events
            for event in events[:-1]:
                publish(
                    event, functools.partial(delivered, sent(event.sequence_number, event.version))
                )
            last = events[-1]
            token = sent(last.sequence_number, last.version)
            handed_at = self._timer()
            publish(last, functools.partial(self._acked, source.table, handed_at, delivered, token))
            self._metrics.encode_s.labels(source.table).observe(self._timer() - started)
        if result.last_creation_ms is not None:
            age_s = max(0.0, self._wall_clock() - result.last_creation_ms / 1000)
            self._metrics.shard_position(source.table, source.shard_id, age_s)
        elif result.caught_up:
            self._metrics.shard_position(source.table, source.shard_id, 0.0)

    def _acked(
        self,
        table: str,
        handed_at: float,
        delivered: Callable[[int, str | None], None],
        token: int,
        error: str | None,
    ) -> None:
        """A page's last record's delivery report: also how long Kafka took to acknowledge."""
        delivered(token, error)
        self._metrics.produce_ack_s.labels(table).observe(self._timer() - handed_at)

    def _report_scaling(self, now: float) -> None:
        """The fleet's load and desired worker count, from the lease rows (every few seconds)."""
        if now < self._next_scaling_report:
            return
        self._next_scaling_report = now + SCALING_REPORT_INTERVAL_S
        rows = self._view.leases()  # a snapshot: the loop never waits on the lease table
        now_s = self._wall_clock()
        view = fleet(rows, self._coordinator.workers(), now_s, self._scaling)
        self._metrics.fleet(view, self._settings.worker_id)
        self._metrics.unread_ages(
            (lease.table, lease.shard_id, lease.load.unread_age_s(now_s) or 0.0)
            for lease in rows
            if lease.lease_key in self._readers
        )

    def _gap(self, reader: ShardReader, gap: Gap) -> None:
        self._metrics.trimmed_gaps.labels(reader.source.table).inc()
        policy = self._settings.trimmed_policy.value
        log.error(
            "stream records lost to trimming: %s (trimmed_policy=%s)", gap.description, policy
        )
        if gap.fatal:
            raise TrimmedDataLostError(
                f"{gap.description}; to continue from the trim horizon set "
                "bridge.trimmed_policy=skip (the gap is recorded), then backfill the table"
            )
        if not self._coordinator.record_gap(reader.lease_key, gap.description):
            self._drop(reader.lease_key, "lease lost while recording a gap")

    def _settle(self, now: float, *, final: bool) -> None:
        """Raise delivery failures, count acknowledgements, checkpoint and finish shards."""
        in_flight = 0
        for key, reader in list(self._readers.items()):
            table = reader.source.table
            if reader.acks.error() is not None:
                self._metrics.produce_errors.labels(table).inc()
                reader.acks.raise_if_failed(reader.source.shard_id)
            acked = reader.acks.acked_count()
            self._metrics.records_published.labels(table).inc(acked - self._published[key])
            self._published[key] = acked
            in_flight += reader.acks.in_flight()
            if key in self._writing:
                # Until its outcome is applied, not merely written: asked again in between, the
                # same checkpoint was written twice, and a reader dropped meanwhile was made
                # again from a lease view older than that write.
                continue
            if final:
                self._settle_final(reader, now)
            else:
                self._ask_write(reader, now)
        self._written(now)
        self._metrics.in_flight.set(in_flight)
        pages, held_bytes = self._fetcher.held()
        self._metrics.fetch_pages.set(pages)
        self._metrics.fetch_bytes.set(held_bytes)

    def _ask_write(self, reader: ShardReader, now: float) -> None:
        """Hand the writer the shard's SHARD_END or due checkpoint, if any."""
        key, table = reader.lease_key, reader.source.table
        if reader.finished():
            request = Write(key, table, Kind.SHARD_END, SHARD_END, reader.version)
        else:
            position = reader.checkpoint_due(now, self._checkpoint_interval_s)
            if position is None:
                return
            request = Write(key, table, Kind.CHECKPOINT, position.sequence_number, position.version)
        self._writing[key] = reader
        self._writer.submit(request)

    def _written(self, now: float) -> None:
        """Apply the writer's outcomes to the readers that asked for them."""
        for outcome in self._writer.outcomes():
            request = outcome.write
            if outcome.fatal is not None:
                raise outcome.fatal
            key, kind = request.lease_key, request.kind
            asked_by = self._writing.pop(key, None)
            reader = self._readers.get(key)
            current = reader is not None and reader is asked_by
            if outcome.unavailable is not None:
                # Checkpoints are cumulative: the next one covers this one.
                log.warning("%s of %s failed, retrying: %s", kind.value, key, outcome.unavailable)
            elif not outcome.written:
                if current:
                    self._drop(key, f"lease lost at {kind.value}")
            elif kind is Kind.SHARD_END:
                self._metrics.shards_finished.labels(request.table).inc()
                self._finished.add(key)
                if current:
                    self._drop(key, "shard finished (SHARD_END)")
            else:
                self._metrics.checkpoints.labels(request.table).inc()
                if self._snapshots is not None:
                    self._checkpointed[key] = self._snapshots.mark()
                if current:
                    assert reader is not None
                    reader.checkpointed(Position(request.sequence_number, request.version), now)

    def _settle_final(self, reader: ShardReader, now: float) -> None:
        """At shutdown, written here and now: the writer has stopped."""
        if reader.finished():
            self._finish(reader)
            return
        position = reader.pending_checkpoint()
        if position is not None:
            self._checkpoint(reader, position, now)

    def _checkpoint(self, reader: ShardReader, position: Position, now: float) -> None:
        key = reader.lease_key
        try:
            written = self._coordinator.checkpoint(key, position.sequence_number, position.version)
        except LeaseTableUnavailable as error:
            # Checkpoints are cumulative: the next one covers this one.
            log.warning("checkpoint of %s failed, retrying: %s", key, error)
            return
        if written:
            reader.checkpointed(position, now)
            self._metrics.checkpoints.labels(reader.source.table).inc()
        else:
            self._drop(key, "lease lost at checkpoint")

    def _finish(self, reader: ShardReader) -> None:
        source = reader.source
        try:
            written = self._coordinator.shard_end(reader.lease_key, reader.version)
        except LeaseTableUnavailable as error:
            log.warning("SHARD_END of %s failed, retrying: %s", reader.lease_key, error)
            return
        if written:
            self._metrics.shards_finished.labels(source.table).inc()
            self._finished.add(reader.lease_key)
            self._drop(reader.lease_key, "shard finished (SHARD_END)")
        else:
            self._drop(reader.lease_key, "lease lost at SHARD_END")

    def _wait(self) -> None:
        """Nap until the next shard is due or a fetch finishes, serving delivery reports."""
        if self._fetcher.ready():
            return
        now = self._clock()
        due = []
        if self._fetcher.room():
            due = [r.next_poll_at() for r in self._readers.values() if r.due(float("inf"))]
        wait_s = min(MAX_WAIT_S, max(0.0, min(due, default=now + MAX_WAIT_S) - now))
        if wait_s <= 0:
            return
        if any(r.acks.in_flight() for r in self._readers.values()):
            if self._fetcher.calls_in_flight():
                wait_s = min(wait_s, FETCH_WAKE_S)
            self._publisher.poll(wait_s)
        else:
            self._fetcher.wait(wait_s)

    def _shutdown(self) -> None:
        """Stop reading, flush within ``shutdown_timeout_s``, checkpoint what Kafka has, release."""
        self._coordinator.drain()
        log.info("stopping: flushing %d shard(s)", len(self._readers))
        self._fetcher.close()  # pages fetched but not published are read again by the next owner
        remaining = self._publisher.flush(self._settings.shutdown_timeout_s)
        if remaining:
            log.warning(
                "%d record(s) still unacknowledged after %.1fs: they will be re-read on restart",
                remaining,
                self._settings.shutdown_timeout_s,
            )
        # A write still in flight would land after (and undo) a newer final checkpoint.
        self._writer.idle(self._settings.shutdown_timeout_s)
        try:
            self._written(self._clock())
            self._settle(self._clock(), final=True)
        except DeliveryError:
            self._release()
            raise
        self._release()
        self._heartbeat.set_ready(False)
        log.info("stopped: leases released")

    def _release(self) -> None:
        # The keeper renewed the leases through the flush (which may outlast lease_duration_s);
        # it stops first, so nothing renews or takes a lease after it is released.
        self._keeper.stop()
        self._coordinator.release_all()
        self._keeper.raise_if_failed()
