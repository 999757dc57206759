"""The fetch stage: GetRecords for many shards at once, the pages handed to the one loop.

Invariants: at most one fetch per shard is in flight (the reader marks itself fetching when it
makes the request, and only the loop applies an outcome); pages held by the stage, from the
request until the loop :meth:`~Fetcher.release`\\ s them after publishing, are bounded by count
(``bridge.fetch_max_pages``) and by bytes (``bridge.fetch_max_bytes``: the body sizes of pages
that arrived, plus an estimate for calls still in flight), so a loop held back by Kafka stops
the fetching instead of growing memory. A result whose shard was dropped meanwhile (lease
lost) is discarded by the loop, never applied.

Threads, not asyncio: boto3 is blocking, and its credentials, signing, retries and timeouts are
what the stage keeps; an event loop would need another AWS client (aiobotocore) or run boto3
in a thread pool anyway. A GetRecords spends nearly all its time waiting on the socket, which
releases the GIL, so a few daemon threads carry many shards; daemon, so a call blocked on a
slow endpoint never holds up the process's exit. The parse (orjson, in the adapter) runs on the
fetching thread, the conversion to events and everything after on the loop's.

Page sizes: a shard's Limit is at most its fair share of the byte budget (the budget over the
shards that have data), so with many busy shards each page is small and every shard is fetched
again soon, instead of a few large pages filling the budget while the other shards wait; and at
most a few times its last page's records, so the polls of caught-up shards reserve little.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from bridge.reader import Fetched, FetchRequest, StreamsClient, fetch

log = logging.getLogger(__name__)

MIN_PAGE_LIMIT = 25
"""The smallest Limit a budget share gives: below it the per-call cost dominates."""
DEFAULT_BYTES_PER_RECORD = 2048
"""The size assumed for a shard's records before one of its pages arrived."""


PAGE_GROWTH = 4
"""A shard's Limit is at most this many times the records its last page held."""


def page_limit(
    configured: int,
    budget_bytes: int,
    busy_shards: int,
    bytes_per_record: float,
    last_records: int | None = None,
) -> int:
    """The Limit of a shard's next GetRecords: its share of the byte budget, and at most
    ``PAGE_GROWTH`` times its last page's records (``last_records``; None before any page),
    within [``MIN_PAGE_LIMIT``, ``configured``].

    The budget counts a call in flight at its Limit's worth of bytes: a shard that is caught
    up asks for a small page, so a hundred idle polls do not hold the budget that pages with
    records need (at the full Limit, a few idle polls of ~2 KB records held all 16 MiB and
    the other shards' polls waited). A shard whose records start flowing again grows its Limit
    fourfold a page (25, 100, 400, 1000).
    """
    share = budget_bytes / max(1, busy_shards)
    per_record = bytes_per_record or DEFAULT_BYTES_PER_RECORD
    limit = min(configured, int(share / per_record))
    if last_records is not None:
        limit = min(limit, PAGE_GROWTH * last_records)
    return max(min(MIN_PAGE_LIMIT, configured), limit)


@dataclass(frozen=True, slots=True)
class Completed:
    """A finished fetch, for the loop: ``owner`` is whatever the loop submitted it for (its
    reader), so a result for a reader dropped meanwhile can be recognised and discarded."""

    owner: object
    fetched: Fetched | None
    """None when the fetch failed with ``fatal``."""
    fatal: BaseException | None = None
    """An error outside the reader's tree (crash-only: the loop raises it)."""


@dataclass(slots=True)
class _Ticket:
    owner: object
    request: FetchRequest
    estimate_bytes: int
    held_bytes: int = 0


class Fetcher:
    """Runs fetches on ``threads`` daemon threads; the loop submits, collects and releases."""

    def __init__(
        self,
        streams: StreamsClient,
        *,
        threads: int,
        max_pages: int,
        max_bytes: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._streams = streams
        self._threads = threads
        self._max_pages = max_pages
        self._max_bytes = max_bytes
        self._clock = clock
        self._lock = threading.Lock()
        self._idle: list[threading.Condition] = []
        """The waiting fetch threads' conditions, the last one to go idle on top: a request
        wakes that one, so a light load stays on a few threads (memory a thread allocated is
        reused by it; spread over 64 threads, one shard's 1 MB pages cost 40 MB more RSS and a
        quarter of the rate)."""
        self._done_ready = threading.Condition(self._lock)
        """The loop waits on it for a finished fetch."""
        self._requests: deque[_Ticket] = deque()
        self._done: deque[tuple[_Ticket, Completed]] = deque()
        self._tickets: dict[int, _Ticket] = {}
        """Every page held, by ``id(Completed)`` once done; in flight ones are in _calls."""
        self._calls = 0
        self._pages = 0
        self._bytes = 0
        self._closed = False
        self._workers: list[threading.Thread] = []

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    def start(self) -> None:
        for n in range(self._threads):
            worker = threading.Thread(target=self._work, name=f"fetch-{n}", daemon=True)
            worker.start()
            self._workers.append(worker)

    def room(self) -> bool:
        """Whether one more fetch fits in the budget."""
        with self._lock:
            return self._room()

    def _room(self) -> bool:
        return self._pages < self._max_pages and self._bytes < self._max_bytes

    def submit(self, owner: object, request: FetchRequest, estimate_bytes: int) -> None:
        """Queue a fetch (the caller asked :meth:`room` first: the loop is the only submitter,
        and a page larger than its estimate overshoots the budget by at most itself)."""
        with self._lock:
            if self._closed:
                return
            ticket = _Ticket(owner, request, estimate_bytes, estimate_bytes)
            self._pages += 1
            self._bytes += estimate_bytes
            self._calls += 1
            self._requests.append(ticket)
            if self._idle:
                self._idle.pop().notify()

    def completed(self) -> list[Completed]:
        """The fetches finished since the last call, in the order they finished."""
        with self._lock:
            done = list(self._done)
            self._done.clear()
            for ticket, completed in done:
                self._tickets[id(completed)] = ticket
        return [completed for _, completed in done]

    def release(self, completed: Completed) -> None:
        """The loop is done with this page (published or discarded): its budget is free."""
        with self._lock:
            ticket = self._tickets.pop(id(completed))
            self._pages -= 1
            self._bytes -= ticket.held_bytes

    def calls_in_flight(self) -> int:
        with self._lock:
            return self._calls

    def held(self) -> tuple[int, int]:
        """(pages, bytes) held from request to release."""
        with self._lock:
            return self._pages, self._bytes

    def wait(self, timeout_s: float) -> None:
        """Until a fetch finishes or ``timeout_s`` passes."""
        with self._lock:
            if not self._done:
                self._done_ready.wait(timeout_s)

    def ready(self) -> bool:
        """Some fetch finished and was not collected yet."""
        with self._lock:
            return bool(self._done)

    def close(self) -> None:
        """Stop: queued fetches are dropped, calls in flight end on their own (daemon threads)."""
        with self._lock:
            self._closed = True
            self._requests.clear()
            while self._idle:
                self._idle.pop().notify()

    def _work(self) -> None:
        wake = threading.Condition(self._lock)
        while True:
            with self._lock:
                while not self._requests and not self._closed:
                    self._idle.append(wake)  # whoever notifies it takes it off the stack
                    wake.wait()
                if self._closed:
                    return
                ticket = self._requests.popleft()
            # In a call of its own, so that nothing of the page outlives it on this thread's
            # frame: an idle thread holding its last page would hold it until its next fetch.
            self._fetch(ticket)
            del ticket

    def _fetch(self, ticket: _Ticket) -> None:
        try:
            completed = Completed(ticket.owner, fetch(self._streams, ticket.request, self._clock))
        except Exception as error:  # noqa: BLE001 - handed to the loop, which raises it
            completed = Completed(ticket.owner, None, error)
        with self._lock:
            self._calls -= 1
            page = completed.fetched.page if completed.fetched is not None else None
            if page is not None:
                # The real size replaces the estimate, larger or smaller.
                self._bytes += page.wire_bytes - ticket.held_bytes
                ticket.held_bytes = page.wire_bytes
            self._done.append((ticket, completed))
            self._done_ready.notify_all()


class InlineFetcher:
    """The same stage without threads: a fetch runs when submitted (tests, one-off tools)."""

    def __init__(
        self,
        streams: StreamsClient,
        *,
        max_pages: int = 1_000_000,
        max_bytes: int = 1 << 62,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._streams = streams
        self._max_pages = max_pages
        self._max_bytes = max_bytes
        self._clock = clock
        self._sleep = sleep
        self._done: list[Completed] = []
        self._held: dict[int, int] = {}
        self._bytes = 0

    @property
    def max_bytes(self) -> int:
        return self._max_bytes

    def start(self) -> None:
        return None

    def room(self) -> bool:
        return len(self._held) < self._max_pages and self._bytes < self._max_bytes

    def submit(self, owner: object, request: FetchRequest, estimate_bytes: int) -> None:
        try:
            completed = Completed(owner, fetch(self._streams, request, self._clock))
        except Exception as error:  # noqa: BLE001 - handed to the loop, which raises it
            completed = Completed(owner, None, error)
        page = completed.fetched.page if completed.fetched is not None else None
        size = page.wire_bytes if page is not None else 0
        self._bytes += size
        self._held[id(completed)] = size
        self._done.append(completed)

    def completed(self) -> list[Completed]:
        done, self._done = self._done, []
        return done

    def release(self, completed: Completed) -> None:
        self._bytes -= self._held.pop(id(completed))

    def calls_in_flight(self) -> int:
        return 0

    def held(self) -> tuple[int, int]:
        return len(self._held), self._bytes

    def wait(self, timeout_s: float) -> None:
        if not self._done:
            self._sleep(timeout_s)

    def ready(self) -> bool:
        return bool(self._done)

    def close(self) -> None:
        return None
