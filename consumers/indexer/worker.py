"""The indexer's one loop: consume, batch, bulk, settle, commit; pause while the engine is away.

Invariant: an offset settles only when its change was indexed, found stale, or acknowledged by
the dead-letter topic, and only settled offsets are committed (``offsets.CommitTracker``), so
no crash, outage, rebalance or shutdown can commit past a change that is not in the index.
Bulks run on helper threads, so the loop decodes the next batches meanwhile; up to
``max_bulks_in_flight`` are outstanding, and they may finish in any order. A batch goes out only
once no change to any of its documents is still unsettled (``inflight.InFlightDocuments``), so
one document's changes are never in flight together and never reordered.

    receive ─▶ batch ─▶ bulk ─┬─ done / stale ─────────────────▶ settle ─▶ commit
                              ├─ dlq ─▶ dead-letter topic (ack) ─▶ delete the older
                              │         version (index changes) ─▶ settle
                              ├─ retry ─▶ pause all, keep polling, backoff (+ ping) ─▶ bulk
                              └─ fatal ─▶ commit what settled, close, raise IndexerFatal

A record whose schema cannot be looked up (registry away, not the record's fault) waits with
every record behind it, consumption paused, and is decoded again after a backoff; it is never
dead-lettered. A schema nobody here knows, or a registry refusing our credentials, stops the
loop.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Protocol

from bridge.contract import ChangeEvent, SchemaLookupError, SchemaRegistryError
from bridge.runtime.backoff import Backoff
from bridge.runtime.health import Heartbeat
from bridge.runtime.settings import ConfigError
from consumers.indexer.actions import Action, ActionKind, ItemResult
from consumers.indexer.backend import SearchBackend, SearchError, SearchUnavailable
from consumers.indexer.batching import Batch, Batcher, Entry, Limits
from consumers.indexer.changes import Change, Poison, to_entry
from consumers.indexer.fallbacks import FallbackReport
from consumers.indexer.inflight import InFlightDocuments
from consumers.indexer.lag import LagMeter
from consumers.indexer.metrics import DocResult, IndexerMetrics
from consumers.indexer.offsets import CommitTracker
from consumers.indexer.records import (
    CommitFailed,
    DeadLetter,
    DeadLetterError,
    Partition,
    Record,
)
from consumers.indexer.scaling import IndexerTargets, PartitionLoad, demand
from consumers.indexer.settlement import settlement
from consumers.indexer.typed_fields import TypedFieldRules
from consumers.search.errors import SearchRefused

log = logging.getLogger(__name__)

IN_FLIGHT_POLL_S = 0.005
"""How long a consume may block while a bulk is in flight: short, to notice its answer."""


class IndexerFatal(Exception):  # noqa: N818 - names the outcome, like the others
    """The loop cannot go on; the message is the one line the operator reads."""


class RebalanceListener(Protocol):
    def on_assigned(self, partitions: Sequence[Partition]) -> None: ...
    def on_revoked(self, partitions: Sequence[Partition]) -> None: ...
    def on_lost(self, partitions: Sequence[Partition]) -> None: ...


class Consumer(Protocol):
    def subscribe(self, listener: RebalanceListener) -> None: ...
    def consume(self, max_records: int, timeout_s: float) -> list[Record]:
        """Records in partition order; rebalance callbacks run inside this call."""

    def assignment(self) -> list[Partition]: ...
    def pause(self, partitions: Collection[Partition]) -> None: ...
    def resume(self, partitions: Collection[Partition]) -> None: ...
    def commit(self, offsets: Mapping[Partition, int]) -> None:
        """Commit synchronously; raise CommitFailed when the coordinator refuses."""

    def high_watermark(self, partition: Partition) -> int | None: ...
    def close(self) -> None: ...


class DeadLetterSink(Protocol):
    def publish(self, letters: Sequence[DeadLetter]) -> None:
        """Return once Kafka acknowledged every letter; raise DeadLetterError otherwise."""


@dataclass(frozen=True, slots=True)
class LoopConfig:
    limits: Limits
    backoff: Backoff
    index_prefix: str
    tables_by_topic: Mapping[str, str]
    outcome_overrides: Mapping[str, str]
    shutdown_timeout_s: float
    commit_interval_s: float = 1.0
    poll_timeout_s: float = 0.1
    typed_rules: TypedFieldRules = field(default_factory=TypedFieldRules)
    index_overrides: Mapping[str, str] = field(default_factory=dict)
    """Table -> the index its changes go to, instead of the table's alias (a reindex)."""
    scaling: IndexerTargets = field(default_factory=IndexerTargets)
    max_bulks_in_flight: int = 1
    """Bulk requests outstanding at once (``indexer.max_bulks_in_flight``)."""


@dataclass(frozen=True, slots=True)
class BulkAnswer:
    results: list[ItemResult]
    seconds: float


Submit = Callable[[Callable[[], BulkAnswer]], "Future[BulkAnswer]"]
"""Runs one bulk call off the loop's thread (``ThreadPoolExecutor.submit``; inline in tests)."""


@dataclass(frozen=True, slots=True)
class _InFlight:
    batch: Batch[Change]
    attempt: int
    future: Future[BulkAnswer]


@dataclass(frozen=True, slots=True)
class _Retry:
    batch: Batch[Change]
    attempt: int
    due: float
    unavailable: bool
    """The whole request failed: ping before sending the batch again."""


class Worker:
    """One process run of the loop; ``run`` returns after a stop, raises IndexerFatal."""

    def __init__(
        self,
        config: LoopConfig,
        consumer: Consumer,
        backend: SearchBackend,
        dead_letters: DeadLetterSink,
        metrics: IndexerMetrics,
        heartbeat: Heartbeat,
        stop: threading.Event,
        *,
        decode: Callable[[bytes], ChangeEvent],
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        draw: Callable[[], float] = random.random,
        submit: Submit | None = None,
    ) -> None:
        self._config = config
        self._consumer = consumer
        self._backend = backend
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._heartbeat = heartbeat
        self._stop = stop
        self._decode = decode
        self._clock = clock
        self._wall_clock = wall_clock
        self._draw = draw
        self._executor = None
        if submit is None:
            self._executor = ThreadPoolExecutor(
                max_workers=config.max_bulks_in_flight, thread_name_prefix="bulk"
            )
            submit = self._executor.submit
        self._submit = submit
        self._flights: list[_InFlight] = []
        """Bulks sent and not finished, oldest first."""
        self._busy = InFlightDocuments()
        self._tracker = CommitTracker()
        self._lag = LagMeter()
        self._batcher: Batcher[Change] = Batcher(config.limits)
        self._ready: deque[Batch[Change]] = deque()
        """Closed batches, sent in this order (the head waits while a document of it is busy)."""
        self._followups: deque[Batch[Change]] = deque()
        """Deletes of the older versions of dead-lettered changes: their documents are busy
        already, so they go out before any new batch."""
        self._retries: deque[_Retry] = deque()
        self._undecoded: deque[Record] = deque()
        """Records waiting for their schema, in consumption order, with everything after them."""
        self._decode_attempt = 0
        self._decode_due = 0.0
        self._fallbacks = FallbackReport()
        self._paused_at: float | None = None
        self._draining = False
        self._ensured: set[str] = set()
        self._last_commit = clock()

    # ------------------------------------------------------------------------------ the loop

    def run(self) -> None:
        self._consumer.subscribe(self)
        self._heartbeat.set_ready(True)
        try:
            while not self._stop.is_set():
                self._heartbeat.beat()
                self._turn()
            self._drain()
        finally:
            self._heartbeat.set_ready(False)
            self._close()

    def _turn(self) -> None:
        now = self._clock()
        self._account_pause(now)
        if self._undecoded and now >= self._decode_due:
            self._decode_again()
        if (
            self._paused_at is not None
            and not self._retries
            and not self._undecoded
            and not self._draining
        ):
            self._resume_all()
        finished = [flight for flight in self._flights if flight.future.done()]
        room = len(self._flights) < self._config.max_bulks_in_flight
        if finished:
            for flight in finished:  # in the order they were sent; any order would be safe
                self._flights.remove(flight)
                self._finish(flight)
        elif room and self._retries and now >= self._retries[0].due:
            self._attempt_retry(self._retries.popleft())
        elif room and not self._retries and self._followups:
            self._send(self._followups.popleft(), attempt=0)
        elif room and not self._retries and self._next_batch(now) is not None:
            self._send(self._ready.popleft(), attempt=0)
        elif self._flights and (self._ready or self._batcher.full() or self._draining):
            # The next batch is ready (or waits for a document in flight): wait for the engine
            # instead of reading further ahead.
            futures = [flight.future for flight in self._flights]
            wait(futures, timeout=self._config.poll_timeout_s, return_when=FIRST_COMPLETED)
        else:
            self._receive(self._receive_timeout_s(now))
        if self._clock() - self._last_commit >= self._config.commit_interval_s:
            self._commit()
            self._report_lag()

    def _next_batch(self, now: float) -> Batch[Change] | None:
        """The head of the ready batches (closing the open one if it is due), if it may go out
        now: no change to any of its documents is unsettled.

        The open batch is due by linger only while no bulk is in flight; otherwise only once
        full. Under load the bulks in flight are what fills the next batch, and a second bulk
        in flight is worth its cost (a request, an fsync on the engine) only when full.
        """
        if not self._ready:
            if self._flights and not self._draining:
                due = self._batcher.full()
            else:
                due = self._batcher.due(now)
            batch = self._batcher.take() if due else None
            if batch is not None:
                self._ready.append(batch)
        if self._ready and self._busy.free(self._ready[0]):
            return self._ready[0]
        return None

    def _receive_timeout_s(self, now: float) -> float:
        timeout_s = self._config.poll_timeout_s
        if self._flights:
            timeout_s = min(timeout_s, IN_FLIGHT_POLL_S)
        if self._retries:
            timeout_s = min(timeout_s, self._retries[0].due - now)
        if self._undecoded:
            timeout_s = min(timeout_s, self._decode_due - now)
        linger_s = self._batcher.wait_s(now)
        if linger_s is not None and not self._retries and not self._flights:
            timeout_s = min(timeout_s, linger_s)  # the open batch is the next thing to send
        return max(timeout_s, 0.0)

    def _pending(self) -> bool:
        return bool(
            self._flights
            or self._retries
            or self._followups
            or self._ready
            or len(self._batcher)
            or self._undecoded
        )

    def _drain(self) -> None:
        """Stop consuming; finish what was batched within the shutdown timeout, or abandon it."""
        deadline = self._clock() + self._config.shutdown_timeout_s
        self._draining = True
        self._pause_all()
        while self._pending() and self._clock() < deadline:
            self._heartbeat.beat()
            self._turn()
        if self._pending():
            log.warning("shutdown timeout: abandoning unsettled changes (they will be read again)")

    def _close(self) -> None:
        self._commit()
        self._consumer.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

    # ----------------------------------------------------------------------------- receiving

    def _receive(self, timeout_s: float) -> None:
        records = self._consumer.consume(self._config.limits.max_docs, timeout_s)
        for record in records:
            self._tracker.received(record.source, record.offset)
            self._lag.received(record.source, record.offset, record.timestamp_ms)
        self._take_in(records)

    def _take_in(self, records: Iterable[Record]) -> None:
        """Decode and batch ``records`` in order; the first whose schema is away, and all
        after it, wait in ``_undecoded``."""
        poison: list[DeadLetter] = []
        now = self._clock()
        for record in records:
            if self._undecoded:
                self._undecoded.append(record)
                continue
            try:
                item = to_entry(
                    record,
                    self._decode,
                    self._config.index_prefix,
                    self._config.typed_rules,
                    self._config.index_overrides,
                )
            except Poison as error:
                poison.append(DeadLetter(record, error.error_type, str(error), 0, "", 1))
                continue
            except SchemaLookupError as error:
                self._schema_away(record, error)
                continue
            closed = self._batcher.add(item, now)
            if closed is not None:
                self._ready.append(closed)
        if poison:
            self._publish(poison)
            for letter in poison:
                self._tracker.settle(letter.record.source, letter.record.offset)
                self._lag.settled(letter.record.source, letter.record.timestamp_ms)
                self._metrics.settled(self._table(letter.record.topic), DocResult.DEAD_LETTERED)

    def _table(self, topic: str) -> str:
        return self._config.tables_by_topic.get(topic, topic)

    def _schema_away(self, record: Record, error: SchemaLookupError) -> None:
        """Wait for the schema of ``record`` (transient), or stop: never a dead letter."""
        where = f"{record.source} offset {record.offset}"
        if isinstance(error, SchemaRegistryError) and error.refused:
            raise ConfigError(
                f"{where}: the schema registry refused our credentials ({error}): fix "
                "kafka.schema_registry_url (user:password@host) and restart"
            )
        if not isinstance(error, SchemaRegistryError):
            raise IndexerFatal(
                f"{where}: {error}. Nothing was dead-lettered or committed past it: deploy an "
                "indexer that reads this schema (or fix kafka.schema_registry_url), then restart"
            )
        self._decode_attempt += 1
        delay_s = self._config.backoff.delay(self._decode_attempt, self._draw)
        self._decode_due = self._clock() + delay_s
        self._undecoded.append(record)
        log.warning(
            "%s: schema registry unavailable (attempt %d), decoding again in %.1fs: %s",
            where, self._decode_attempt, delay_s, error,
        )  # fmt: skip
        self._heartbeat.set_ready(False)
        self._pause_all()

    def _decode_again(self) -> None:
        waiting, self._undecoded = self._undecoded, deque()
        self._take_in(waiting)
        if not self._undecoded:
            self._decode_attempt = 0
            self._heartbeat.set_ready(not any(retry.unavailable for retry in self._retries))

    # ------------------------------------------------------------------------------ indexing

    def _send(self, batch: Batch[Change], attempt: int) -> None:
        self._busy.hold(batch)
        actions = [entry.payload.action for entry in batch.entries]
        if attempt == 0 and batch.coalesced:
            self._metrics.coalesced.inc(batch.coalesced)
        try:
            self._ensure_indices(actions)
        except SearchUnavailable as error:
            self._unavailable(batch, attempt, error)
            return
        except SearchRefused:
            raise  # credentials or certificates: a ConfigError, exit 2
        except SearchError as error:
            raise IndexerFatal(f"search engine refused the index: {error}") from error
        backend, clock = self._backend, self._clock

        def call() -> BulkAnswer:
            started = clock()
            results = backend.bulk(actions)
            return BulkAnswer(results, clock() - started)

        self._flights.append(_InFlight(batch, attempt, self._submit(call)))

    def _finish(self, flight: _InFlight) -> None:
        try:
            answer = flight.future.result()
        except SearchUnavailable as error:
            self._unavailable(flight.batch, flight.attempt, error)
            return
        except SearchRefused:
            raise  # credentials or certificates: a ConfigError, exit 2
        except SearchError as error:
            raise IndexerFatal(f"search engine refused the request: {error}") from error
        self._metrics.bulk_seconds.observe(answer.seconds)
        self._metrics.bulk_docs.observe(len(flight.batch.entries))
        try:
            sorted_ = settlement(flight.batch, answer.results, self._config.outcome_overrides)
        except ValueError as error:
            raise IndexerFatal(str(error)) from error
        self._settle_done(sorted_.done)
        if sorted_.dead:
            self._dead_letter(sorted_.dead)
        if sorted_.fatal:
            item, result = sorted_.fatal[0]
            raise IndexerFatal(
                f"{item.index}/{item.doc_id}: {result.status} {result.error_type}: "
                f"{result.reason} (fatal by the outcome table; fix and restart)"
            )
        if sorted_.retry:
            size = sum(item.size_bytes for item in sorted_.retry)
            retry = Batch(tuple(sorted_.retry), size, 0)
            self._schedule_retry(retry, flight.attempt + 1, unavailable=False)

    def _unavailable(self, batch: Batch[Change], attempt: int, error: Exception) -> None:
        log.warning("search engine unavailable (attempt %d): %s", attempt + 1, error)
        self._schedule_retry(batch, attempt + 1, unavailable=True)

    def _ensure_indices(self, actions: Iterable[Action]) -> None:
        for index in {action.index for action in actions} - self._ensured:
            self._backend.ensure_index(index)
            self._ensured.add(index)

    def _settle_done(self, done: Sequence[tuple[Entry[Change], DocResult]]) -> None:
        counts: Counter[tuple[str, DocResult]] = Counter()
        fallbacks: Counter[tuple[str, str, str]] = Counter()
        newest: dict[str, int] = {}
        observe = self._fallbacks.observe
        for entry, result in done:
            self._settle(entry)
            change = entry.payload
            table = change.table
            if change.dead_lettered:
                result = DocResult.DEAD_LETTERED  # the older version's cleanup settled it
            elif result is DocResult.INDEXED:
                action = change.action
                for attribute, reason in observe(table, action.typed, action.fallbacks):
                    fallbacks[table, attribute, reason] += 1
            counts[table, result] += 1
            if result is not DocResult.STALE:
                newest[table] = max(newest.get(table, 0), change.event_time_ms)
        for (table, result), count in counts.items():
            self._metrics.settled(table, result, count)
        self._report_fallbacks(fallbacks)
        now_s = self._wall_clock()
        for table, event_time_ms in newest.items():
            self._metrics.end_to_end_lag_seconds.labels(table).set(now_s - event_time_ms / 1000)

    def _report_fallbacks(self, fallbacks: Mapping[tuple[str, str, str], int]) -> None:
        """Count the documents per (table, attribute, reason), and say each the first time."""
        report = self._fallbacks
        for (table, attribute, reason), count in fallbacks.items():
            label = report.label(table, attribute)
            self._metrics.fallbacks.labels(table, label, reason).inc(count)
            if report.first_time(table, attribute, reason):
                log.warning(
                    "table %s attribute %r: %s; indexed as docs/indexer.md (Mapping) says, "
                    "stored whole in _source",
                    table, attribute, reason,
                )  # fmt: skip

    def _settle(self, entry: Entry[Change]) -> None:
        for offset in entry.offsets:
            self._tracker.settle(entry.partition, offset)
        self._lag.settled(entry.partition, entry.payload.record.timestamp_ms)
        self._busy.release(entry)

    def _dead_letter(self, letters: Sequence[tuple[Entry[Change], ItemResult]]) -> None:
        self._publish(
            [
                DeadLetter(
                    entry.payload.record,
                    result.error_type or "unknown",
                    result.reason or "",
                    result.status,
                    entry.index,
                    entry.attempts + 1,
                )
                for entry, result in letters
            ]
        )
        cleanup: list[Entry[Change]] = []
        for entry, _ in letters:
            action = entry.payload.action
            if action.kind is ActionKind.INDEX and not entry.payload.dead_lettered:
                # The engine refused this version: the older one must not look current. The
                # record settles once the delete (at this version) is done.
                change = replace(entry.payload, action=action.as_delete(), dead_lettered=True)
                cleanup.append(replace(entry, payload=change, attempts=0))
                continue
            self._settle(entry)
            self._metrics.settled(entry.payload.table, DocResult.DEAD_LETTERED)
        if cleanup:
            size = sum(entry.size_bytes for entry in cleanup)
            self._followups.append(Batch(tuple(cleanup), size, 0))

    def _publish(self, letters: Sequence[DeadLetter]) -> None:
        try:
            self._dead_letters.publish(letters)
        except DeadLetterError as error:
            raise IndexerFatal(f"dead-letter topic did not acknowledge: {error}") from error
        for letter in letters:
            log.warning(
                "dead-lettered %s offset %d: %s %s",
                letter.record.source,
                letter.record.offset,
                letter.error_type,
                letter.reason[:200],
            )

    # --------------------------------------------------------------------- retrying, pausing

    def _schedule_retry(
        self, batch: Batch[Change], attempt: int, *, unavailable: bool, first: bool = False
    ) -> None:
        """Send ``batch`` again after a backoff; retries go out in the order they failed
        (``first``: before the others, a retry that is still failing)."""
        revoked = {e.partition for e in batch.entries if not self._tracker.owns(e.partition)}
        if revoked:
            self._busy.release_all(e for e in batch.entries if e.partition in revoked)
            batch = batch.without(revoked)
        if not batch.entries:
            return
        delay_s = self._config.backoff.delay(attempt, self._draw)
        retry = _Retry(batch, attempt, self._clock() + delay_s, unavailable)
        if first:
            self._retries.appendleft(retry)
        else:
            self._retries.append(retry)
        per_table = Counter(entry.payload.table for entry in batch.entries)
        for table, count in per_table.items():
            self._metrics.retries.labels(table).inc(count)
        self._heartbeat.set_ready(not unavailable)
        self._pause_all()

    def _attempt_retry(self, retry: _Retry) -> None:
        """Send ``retry`` (taken off the queue) again, or put it back behind a failed ping."""
        if retry.unavailable and not self._backend.ping():
            self._schedule_retry(retry.batch, retry.attempt + 1, unavailable=True, first=True)
            return
        self._heartbeat.set_ready(not any(other.unavailable for other in self._retries))
        self._send(retry.batch, retry.attempt)

    def _pause_all(self) -> None:
        # Paused partitions fetch nothing, but consume() keeps running: it serves the group's
        # heartbeats, rebalance callbacks and max.poll.interval.ms, so an outage never turns
        # into a rebalance storm. Records already handed to us stay in the batcher.
        if self._paused_at is None:
            self._paused_at = self._clock()
            self._metrics.paused.set(1)
            log.info("pausing consumption until the search engine accepts the pending changes")
        self._consumer.pause(self._consumer.assignment())

    def _resume_all(self) -> None:
        self._account_pause(self._clock())
        self._paused_at = None
        self._metrics.paused.set(0)
        self._consumer.resume(self._consumer.assignment())
        log.info("resuming consumption")

    def _account_pause(self, now: float) -> None:
        if self._paused_at is not None:
            self._metrics.paused_seconds.inc(max(0.0, now - self._paused_at))
            self._paused_at = now

    # ------------------------------------------------------------------- commits, rebalances

    def _commit(self, partitions: Collection[Partition] | None = None) -> None:
        self._last_commit = self._clock()
        due = self._tracker.due()
        if partitions is not None:
            due = {p: offset for p, offset in due.items() if p in partitions}
        if not due:
            return
        try:
            self._consumer.commit(due)
        except CommitFailed as error:
            self._metrics.commits.labels("failed").inc()
            log.warning("commit refused, will try again: %s", error)
            return
        self._tracker.committed(due)
        self._metrics.commits.labels("ok").inc()

    def _report_lag(self) -> None:
        """Lag per partition (records, seconds), this member's rate and its consumer demand."""
        partitions = self._tracker.partitions()
        lags = self._lag.sample(
            {p: self._tracker.position(p) for p in partitions},
            {p: self._consumer.high_watermark(p) for p in partitions},
            self._clock(),
            int(self._wall_clock() * 1000),
        )
        self._metrics.lags(lags)
        need = demand(
            [PartitionLoad(lag.lag_records, lag.produced_per_s) for lag in lags.values()],
            consumed_per_s=sum(lag.consumed_per_s for lag in lags.values()),
            consumers=1,
            targets=self._config.scaling,
        )
        self._metrics.demand(need)

    def on_assigned(self, partitions: Sequence[Partition]) -> None:
        log.info("assigned %s", ", ".join(map(str, partitions)) or "nothing")
        if self._paused_at is not None:
            self._consumer.pause(partitions)

    def on_revoked(self, partitions: Sequence[Partition]) -> None:
        log.info("revoked %s", ", ".join(map(str, partitions)) or "nothing")
        gone = set(partitions)
        holding = [f for f in self._flights if any(e.partition in gone for e in f.batch.entries)]
        if holding:
            # Settle what the engine already has before giving the partitions away, so their
            # next owner does not index it again.
            wait([flight.future for flight in holding])
            for flight in holding:
                self._flights.remove(flight)
                self._finish(flight)
        self._commit(gone)
        self._forget(gone)

    def on_lost(self, partitions: Sequence[Partition]) -> None:
        # Lost, not revoked: another member may own them already, so no commit.
        log.warning("lost %s", ", ".join(map(str, partitions)))
        self._forget(set(partitions))

    def _forget(self, gone: set[Partition]) -> None:
        """Abandon revoked partitions' unsettled changes: their next owner reads them again."""
        self._batcher.drop(gone)
        self._undecoded = deque(r for r in self._undecoded if r.source not in gone)
        kept = (batch.without(gone) for batch in self._ready)
        self._ready = deque(batch for batch in kept if batch.entries)
        # Sent before, so their documents are busy: abandoned now. (Bulks still in flight
        # release theirs when they finish.)
        for batch in [*self._followups, *(retry.batch for retry in self._retries)]:
            self._busy.release_all(e for e in batch.entries if e.partition in gone)
        kept = (batch.without(gone) for batch in self._followups)
        self._followups = deque(batch for batch in kept if batch.entries)
        retries = (replace(retry, batch=retry.batch.without(gone)) for retry in self._retries)
        self._retries = deque(retry for retry in retries if retry.batch.entries)
        self._tracker.revoke(gone)
        self._lag.forget(gone)
        for partition in gone:
            self._metrics.forget(partition)
