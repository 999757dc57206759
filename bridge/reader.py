"""One shard's read state: where to (re)acquire an iterator, when to poll next, what a page means.

Records are re-read only from a position nothing was handed to Kafka after: an expired
iterator is re-acquired AFTER the last record *read* (not the checkpoint), so it causes no
duplicates; a fresh reader starts after the lease's checkpoint, and whatever it re-reads from
there carries the same versions as before, so it is a byte-identical duplicate. A closed shard
(``NextShardIterator`` absent) is drained: its last page is published like any other, and the
shard is finished only once every record is acknowledged. A GetRecords that timed out halves the
shard's page size, and successful pages grow it back: a slow endpoint slows the shard, never
stalls it.

The I/O is split from the state so that it can run on another thread: :meth:`ShardReader.request`
takes a snapshot of what to call (and marks the shard as fetching: at most one call per shard),
:func:`fetch` makes the calls and touches no reader, and :meth:`ShardReader.apply` is the only
place the outcome changes the reader, on the loop's thread.
"""

from __future__ import annotations

import enum
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from bridge.acks import Position, ShardAcks
from bridge.contract.event import ChangeEvent
from bridge.leases import LATEST, SHARD_END, TRIM_HORIZON
from bridge.records import ShardSource, change_events
from bridge.runtime.backoff import Backoff
from bridge.runtime.settings import BridgeSettings, TrimmedPolicy

log = logging.getLogger(__name__)

THROTTLE_INITIAL_S = 0.2
"""The ceiling of the first throttled shard's jittered backoff; it doubles up to
``bridge.throttle_backoff_max_s``."""


class ShardReadError(Exception):
    """What the Streams adapter raises instead of botocore's errors.

    ShardReadError
     ├── ExpiredIteratorError  the iterator is older than 15 minutes: re-acquire it
     ├── ThrottledError        too many requests: back off with jitter, retry
     │    └── TimedOutError    no answer within the read timeout: also ask for a smaller page
     ├── TrimmedDataError      the position is older than the 24 h retention: records were lost
     └── ShardGoneError        the shard no longer exists (fully trimmed, or the stream is gone)
    Any other failure of the service is an ordinary exception: fatal, crash-only.
    """


class ExpiredIteratorError(ShardReadError):
    pass


class ThrottledError(ShardReadError):
    pass


class TimedOutError(ThrottledError):
    pass


class TrimmedDataError(ShardReadError):
    pass


class ShardGoneError(ShardReadError):
    pass


class IteratorType(enum.StrEnum):
    TRIM_HORIZON = "TRIM_HORIZON"
    LATEST = "LATEST"
    AFTER_SEQUENCE_NUMBER = "AFTER_SEQUENCE_NUMBER"


@dataclass(frozen=True, slots=True)
class IteratorRequest:
    kind: IteratorType
    sequence_number: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    records: Sequence[Mapping[str, Any]]
    next_iterator: str | None
    """None: the shard is closed and this was its last page."""
    wire_bytes: int = 0
    """Size of the response body (0 when unknown): what the fetch stage's byte budget counts."""
    parse_s: float = 0.0
    """Time spent parsing the body into ``records``."""


class StreamsClient(Protocol):
    def shard_iterator(self, stream_arn: str, shard_id: str, request: IteratorRequest) -> str: ...

    def records(self, iterator: str, limit: int) -> Page: ...


@dataclass(frozen=True, slots=True)
class FetchRequest:
    """One shard's next GetRecords, as the reader knew it when the fetch was asked for."""

    stream_arn: str
    shard_id: str
    iterator: str | None
    """None: acquire one first, from ``resume``."""
    resume: IteratorRequest
    limit: int


@dataclass(frozen=True, slots=True)
class Fetched:
    """What came of a :class:`FetchRequest`: a page or the reader's error, never both."""

    request: FetchRequest
    iterator: str | None
    """The iterator GetRecords was called with (None: acquiring one failed)."""
    page: Page | None = None
    error: ShardReadError | None = None
    started: float = 0.0
    """The monotonic clock when the calls began: an idle shard's next poll counts from it."""
    elapsed_s: float = 0.0
    """GetShardIterator (if any) plus GetRecords."""


def fetch(
    streams: StreamsClient,
    request: FetchRequest,
    clock: Callable[[], float] = time.monotonic,
) -> Fetched:
    """The calls ``request`` asks for; the reader's errors are returned, any other raised."""
    started = clock()
    iterator = request.iterator
    try:
        if iterator is None:
            iterator = streams.shard_iterator(request.stream_arn, request.shard_id, request.resume)
        page = streams.records(iterator, request.limit)
    except ShardReadError as error:
        return Fetched(request, iterator, error=error, started=started, elapsed_s=clock() - started)
    return Fetched(request, iterator, page=page, started=started, elapsed_s=clock() - started)


class ReadState(enum.Enum):
    READING = "reading"
    DRAINING = "draining"
    """The last page was read; waiting for Kafka to acknowledge everything before SHARD_END."""


@dataclass(frozen=True, slots=True)
class Gap:
    """Records that can no longer be read: always reported, fatal under ``trimmed_policy=fail``."""

    description: str
    fatal: bool


@dataclass(frozen=True, slots=True)
class ReadResult:
    events: list[ChangeEvent] = field(default_factory=list)
    last_creation_ms: int | None = None
    """ApproximateCreationDateTime of the page's last record, if any."""
    caught_up: bool = False
    """The shard returned no record: nothing is waiting to be read right now."""
    throttled: bool = False
    gap: Gap | None = None
    elapsed_s: float = 0.0
    """How long the calls took (GetShardIterator, if any, plus GetRecords)."""
    page: Page | None = None
    """The page the events came from (its size and parse time), if one arrived."""


def iterator_request(checkpoint: str) -> IteratorRequest:
    """Where reading starts for a lease's checkpoint (a sequence number: just after it)."""
    if checkpoint == TRIM_HORIZON:
        return IteratorRequest(IteratorType.TRIM_HORIZON)
    if checkpoint == LATEST:
        return IteratorRequest(IteratorType.LATEST)
    if checkpoint == SHARD_END:
        raise ValueError("a finished shard (SHARD_END) has nothing left to read")
    return IteratorRequest(IteratorType.AFTER_SEQUENCE_NUMBER, checkpoint)


def idle_delay_s(previous_s: float, minimum_s: float, maximum_s: float) -> float:
    """Doubling backoff between polls of an empty shard, within [minimum, maximum]."""
    return min(maximum_s, max(minimum_s, previous_s * 2))


def shrunk_limit(limit: int) -> int:
    """The page size after a timed-out GetRecords: a slow endpoint answers small pages sooner."""
    return max(1, limit // 2)


def grown_limit(limit: int, configured: int) -> int:
    """The page size after a successful GetRecords: back to ``configured`` in ten steps."""
    return min(configured, limit + max(1, configured // 10))


class ShardReader:
    """Reads one leased shard; the worker publishes the events and feeds :attr:`acks`."""

    def __init__(
        self,
        lease_key: str,
        source: ShardSource,
        checkpoint: str,
        last_version: int,
        settings: BridgeSettings,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.lease_key = lease_key
        self.source = source
        self.acks = ShardAcks()
        self.state = ReadState.READING
        self._start = iterator_request(checkpoint)
        self._settings = settings
        self._rng = rng
        self._iterator: str | None = None
        self._last_read: Position | None = None
        self._version = last_version
        self._next_poll_at = 0.0
        self._idle_s = 0.0
        self._throttles = 0
        self._limit = settings.get_records_limit
        self._backoff = Backoff(THROTTLE_INITIAL_S, settings.throttle_backoff_max_s)
        self._checkpointed = Position(checkpoint, last_version)
        self._checkpointed_at = 0.0
        self._fetching = False
        self._bytes_per_record = 0.0
        self._has_data = True
        self._last_records: int | None = None

    @property
    def version(self) -> int:
        """The version of the last record read (the lease's inherited one before any)."""
        return self._version

    def due(self, now: float) -> bool:
        """Time to fetch: reading, no fetch in flight, and the poll time has come."""
        return self.state is ReadState.READING and not self._fetching and now >= self._next_poll_at

    @property
    def fetching(self) -> bool:
        """A fetch was asked for and its outcome not applied yet."""
        return self._fetching

    @property
    def has_data(self) -> bool:
        """Reading, and the last page had records (or none arrived yet): more may be waiting."""
        return self.state is ReadState.READING and self._has_data

    @property
    def last_records(self) -> int | None:
        """Records of the last page read (None before any)."""
        return self._last_records

    @property
    def bytes_per_record(self) -> float:
        """Wire bytes per record of this shard's recent pages (0 until a page had records)."""
        return self._bytes_per_record

    @property
    def page_limit(self) -> int:
        """The ``Limit`` of the next GetRecords (below the configured one after timeouts)."""
        return self._limit

    def next_poll_at(self) -> float:
        return self._next_poll_at

    def resume_request(self) -> IteratorRequest:
        """After the last record read, or from the lease's checkpoint before any was read."""
        if self._last_read is not None:
            return IteratorRequest(
                IteratorType.AFTER_SEQUENCE_NUMBER, self._last_read.sequence_number
            )
        return self._start

    def request(self, limit: int | None = None) -> FetchRequest:
        """The next fetch; the shard counts as fetching until :meth:`apply` gets its outcome.

        ``limit`` caps the page size below the reader's own (a share of the fetch budget).
        """
        if self._fetching:
            raise RuntimeError(f"shard {self.source.shard_id} already has a fetch in flight")
        self._fetching = True
        return FetchRequest(
            self.source.stream_arn,
            self.source.shard_id,
            self._iterator,
            self.resume_request(),
            self._limit if limit is None else max(1, min(self._limit, limit)),
        )

    def read(self, streams: StreamsClient, now: float) -> ReadResult:
        """One GetRecords (acquiring an iterator first if needed) and what it means."""
        return self.apply(fetch(streams, self.request(), lambda: now), now)

    def apply(self, fetched: Fetched, now: float) -> ReadResult:
        """What the fetch's outcome means for this shard; the fetch is over."""
        self._fetching = False
        result = self._outcome(fetched, now)
        return replace(result, elapsed_s=fetched.elapsed_s, page=fetched.page)

    def _outcome(self, fetched: Fetched, now: float) -> ReadResult:
        error = fetched.error
        if error is None:
            assert fetched.page is not None
            self._throttles = 0
            self._limit = grown_limit(self._limit, self._settings.get_records_limit)
            return self._page(fetched.page, fetched.started, now)
        if isinstance(error, ExpiredIteratorError):
            self._iterator = None  # re-acquired from the last read record, at once
            return ReadResult()
        if isinstance(error, ThrottledError):
            self._iterator = fetched.iterator  # a fresh iterator survives a throttled read
            if isinstance(error, TimedOutError):
                self._limit = shrunk_limit(self._limit)
                log.warning(
                    "%s shard %s: %s; next pages ask for %d records",
                    self.source.table, self.source.shard_id, error, self._limit,
                )  # fmt: skip
            self._throttles += 1
            self._next_poll_at = now + self._backoff.delay(self._throttles, self._rng)
            return ReadResult(throttled=True)
        if isinstance(error, TrimmedDataError):
            return self._trimmed(str(error))
        assert isinstance(error, ShardGoneError)
        return self._gone(str(error))

    def _page(self, page: Page, started: float, now: float) -> ReadResult:
        events, self._version = change_events(page.records, self.source, self._version)
        self._has_data = bool(events)
        self._last_records = len(page.records)
        last_ms = None
        if events:
            last = events[-1]
            self._last_read = Position(last.sequence_number, last.version)
            last_ms = last.approximate_creation_time_ms
            if page.wire_bytes:
                per_record = page.wire_bytes / len(events)
                previous = self._bytes_per_record or per_record
                self._bytes_per_record = previous + (per_record - previous) / 4
        self._iterator = page.next_iterator
        if page.next_iterator is None:
            self.state = ReadState.DRAINING
        elif events:
            self._idle_s = 0.0
            self._next_poll_at = now  # the shard has data: poll again at once
        else:
            self._idle_s = idle_delay_s(
                self._idle_s, self._settings.idle_poll_min_s, self._settings.idle_poll_max_s
            )
            # Counted from the call's start: an idle shard is polled every idle_s, whatever
            # the call's own latency.
            self._next_poll_at = min(now, started) + self._idle_s
        return ReadResult(events=events, last_creation_ms=last_ms, caught_up=not events)

    def _position_text(self) -> str:
        if self._last_read is not None:
            return f"after sequence number {self._last_read.sequence_number}"
        if self._start.kind is IteratorType.AFTER_SEQUENCE_NUMBER:
            return f"after checkpoint {self._start.sequence_number}"
        return f"from {self._start.kind.value}"

    def _trimmed(self, reason: str) -> ReadResult:
        fatal = self._settings.trimmed_policy is TrimmedPolicy.FAIL
        gap = Gap(
            f"{self.source.table} shard {self.source.shard_id}: records {self._position_text()} "
            f"up to the current trim horizon were trimmed before being read ({reason})",
            fatal=fatal,
        )
        # Skip policy: continue at the oldest record still retained; the gap stays recorded.
        self._iterator = None
        self._last_read = None
        self._start = IteratorRequest(IteratorType.TRIM_HORIZON)
        return ReadResult(gap=gap)

    def _gone(self, reason: str) -> ReadResult:
        fatal = self._settings.trimmed_policy is TrimmedPolicy.FAIL
        gap = Gap(
            f"{self.source.table} shard {self.source.shard_id} no longer exists: any records "
            f"{self._position_text()} were trimmed before being read ({reason})",
            fatal=fatal,
        )
        # Nothing more can be read: finish the shard once in-flight records are acknowledged,
        # so its children are not blocked forever.
        self._iterator = None
        self.state = ReadState.DRAINING
        return ReadResult(gap=gap)

    def finished(self) -> bool:
        """Drained and fully acknowledged: ready for SHARD_END."""
        return self.state is ReadState.DRAINING and self.acks.in_flight() == 0

    def checkpoint_due(self, now: float, interval_s: float) -> Position | None:
        """The acknowledged position, if it moved and ``interval_s`` passed since the last one."""
        position = self.acks.acknowledged()
        if position is None or position == self._checkpointed:
            return None
        if now - self._checkpointed_at < interval_s:
            return None
        return position

    def pending_checkpoint(self) -> Position | None:
        """The acknowledged position if not yet checkpointed, regardless of time (shutdown)."""
        position = self.acks.acknowledged()
        return None if position is None or position == self._checkpointed else position

    def checkpointed(self, position: Position, now: float) -> None:
        self._checkpointed = position
        self._checkpointed_at = now
