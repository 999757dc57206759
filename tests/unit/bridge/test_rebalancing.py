"""Rebalancing never thrashes: real coordinators over one lease table, with a simulated clock.

Workers come and go (1 -> 3 -> 1, a release on SIGTERM, silence on SIGKILL) while a few shards
are busy and most are idle. Every ownership change is recorded at the table; the oracle is that
record, not the coordinators' own view.
"""

from __future__ import annotations

import itertools
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.coordinator import LeaseCoordinator
from bridge.leases import (
    TRIM_HORIZON,
    Lease,
    Sighting,
    TakeReason,
    new_lease,
    released,
    taken,
    to_take,
)
from bridge.load import ShardLoad
from tests.unit.bridge.fakes import ARN, SETTINGS, Clock, MemoryStore, Streams, open_shard

TAKE_S = SETTINGS.lease_take_interval_s
DURATION_S = SETTINGS.lease_duration_s
READ_EVERY_S = 0.5


@dataclass(frozen=True)
class Move:
    at: float
    shard: str
    source: str | None
    target: str


class RecordingStore(MemoryStore):
    """The lease table, recording every accepted change of owner (to a worker)."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock
        self.moves: list[Move] = []

    def replace(self, old: Lease, new: Lease) -> bool:
        accepted = super().replace(old, new)
        if accepted and new.owner is not None and new.owner != old.owner:
            self.moves.append(Move(self.clock.now, old.shard_id, old.owner, new.owner))
        return accepted


@dataclass
class Fleet:
    """Coordinators sharing one table; each live one ticks when due and reads its shards."""

    shards: int
    busy: set[str]
    clock: Clock = field(default_factory=Clock)
    workers: dict[str, LeaseCoordinator] = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self) -> None:
        self.store = RecordingStore(self.clock)
        self.streams = Streams(*(open_shard(f"s{n:02d}") for n in range(self.shards)))
        self._next_read: dict[str, float] = {}

    def start(self, name: str) -> None:
        self.seed += 1
        worker = LeaseCoordinator(
            self.store, self.streams, worker_id=name, tables=["t"], settings=SETTINGS,
            clock=self.clock, rng=random.Random(self.seed),
        )  # fmt: skip
        worker.start()
        self.workers[name] = worker
        self._next_read[name] = self.clock.now

    def sigterm(self, name: str) -> None:
        self.workers.pop(name).release_all()

    def sigkill(self, name: str) -> None:
        self.workers.pop(name)

    def run(self, seconds: float, step_s: float = 0.05) -> None:
        end = self.clock.now + seconds
        while self.clock.now < end:
            for name, worker in list(self.workers.items()):
                if worker.due_at() <= self.clock.now:
                    worker.tick()
                if self.clock.now >= self._next_read[name]:
                    self._read(worker)
                    self._next_read[name] = self.clock.now + READ_EVERY_S
            self.clock.now += step_s

    def _read(self, worker: LeaseCoordinator) -> None:
        """What the worker loop does per page: busy shards return 50 records, idle ones none."""
        created_ms = int(self.clock.now * 1000)
        for lease in worker.readable():
            if lease.shard_id in self.busy:
                worker.observe(lease.lease_key, 50, created_ms, caught_up=False)
            else:
                worker.observe(lease.lease_key, 0, None, caught_up=True)

    def owners(self) -> dict[str, str | None]:
        return {row.shard_id: row.owner for row in self.store.rows.values()}

    def counts(self) -> Counter[str | None]:
        return Counter(self.owners().values())

    def busy_counts(self) -> Counter[str | None]:
        return Counter(owner for shard, owner in self.owners().items() if shard in self.busy)

    def moves_since(self, at: float) -> list[Move]:
        return [move for move in self.store.moves if move.at >= at]


def steals(moves: list[Move], live: set[str]) -> list[Move]:
    """Moves from one live worker to another (not takes of released or expired leases)."""
    return [m for m in moves if m.source in live and m.target in live]


def assert_no_back_and_forth(moves: list[Move]) -> None:
    history: dict[str, list[str]] = defaultdict(list)
    for move in moves:
        owners = history[move.shard]
        assert move.target not in owners, f"{move.shard} went back to {move.target}: {owners}"
        owners.append(move.source or "-")


def assert_one_steal_per_interval(moves: list[Move]) -> None:
    by_thief: dict[str, list[float]] = defaultdict(list)
    for move in moves:
        by_thief[move.target].append(move.at)
    for thief, times in by_thief.items():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert all(gap >= TAKE_S - 1e-6 for gap in gaps), (thief, times)


def test_one_to_three_to_one_with_most_shards_idle() -> None:
    fleet = Fleet(shards=16, busy={"s03", "s07", "s11"})
    fleet.start("w1")
    fleet.run(90)  # long enough for the busy shards' rows to say so
    assert fleet.counts() == {"w1": 16}
    assert all(fleet.store.by_shard(s).load.busy for s in fleet.busy)
    assert not any(
        row.load.busy for row in fleet.store.rows.values() if row.shard_id not in fleet.busy
    )

    # 1 -> 3: the newcomers steal, one lease per take interval each, busy shards spread.
    joined = fleet.clock.now
    fleet.start("w2")
    fleet.start("w3")
    fleet.run(120)
    moves = fleet.moves_since(joined)
    assert sorted(fleet.counts().values()) == [5, 5, 6]
    assert sorted(fleet.busy_counts().values()) == [1, 1, 1]
    assert_no_back_and_forth(moves)
    assert_one_steal_per_interval(steals(moves, {"w1", "w2", "w3"}))
    idle_moves = Counter(m.shard for m in moves if m.shard not in fleet.busy)
    assert max(idle_moves.values()) == 1  # an idle shard moves once at most
    assert len(moves) <= 10 + 2  # 10 leases must leave w1; at most one swap to spread busy ones
    balanced_after = max(m.at for m in moves) - joined
    assert balanced_after <= 8 * TAKE_S  # two thieves, one steal each per interval

    # Steady: ten minutes, not one move.
    steady = fleet.clock.now
    fleet.run(600)
    assert fleet.moves_since(steady) == []

    # 3 -> 1: w2 stops (releases its leases), w3 is killed (its leases expire).
    stopped = fleet.clock.now
    orphaned = {s for s, owner in fleet.owners().items() if owner in ("w2", "w3")}
    fleet.sigterm("w2")
    fleet.sigkill("w3")
    owned_again: dict[str, float] = {}
    while len(owned_again) < len(orphaned) and fleet.clock.now - stopped < 60:
        fleet.run(0.5)
        for shard, owner in fleet.owners().items():
            if shard in orphaned and owner == "w1":
                owned_again.setdefault(shard, fleet.clock.now - stopped)
    assert set(owned_again) == orphaned
    # Released leases go at once to the extent of w1's fair share while w3 still counts; the
    # rest, and w3's, once w3's leases expire by w1's clock, caught by an early take round.
    assert max(owned_again.values()) <= DURATION_S + 1.0
    assert fleet.counts() == {"w1": 16}
    assert [m for m in fleet.moves_since(stopped) if m.target != "w1"] == []
    steady = fleet.clock.now
    fleet.run(300)
    assert fleet.moves_since(steady) == []


def test_a_rate_wavering_around_the_threshold_moves_nothing() -> None:
    """Two shards read at 0.7-1.3 records/s around the 1/s threshold: hysteresis keeps the busy
    flag, so the taker, which balances busy leases, has nothing to chase."""
    fleet = Fleet(shards=6, busy=set())
    fleet.start("w1")
    fleet.start("w2")
    fleet.run(60)
    wobbling = {"s00", "s01"}
    started = fleet.clock.now
    rng = random.Random(3)
    while fleet.clock.now - started < 1200:
        fleet.busy = {s for s in wobbling if rng.random() < 0.5}  # 0 or 50 per 0.5 s page...
        fleet.run(3)
    moves = fleet.moves_since(started)
    assert len(moves) <= 2  # at most the one swap that spreads them, never back
    assert_no_back_and_forth(moves)


# -- the pure taker, synchronously: convergence with busy leases -----------------------------


def lease(n: int, owner: str | None, busy: bool) -> Lease:
    row = new_lease("t", ARN, f"s{n:03d}", (), TRIM_HORIZON, owner=owner)
    return replace(row, load=ShardLoad(50.0, None, True)) if busy else row


def round_of(leases: list[Lease], worker: str, steal: int = 1) -> list[Lease]:
    held = frozenset(row.lease_key for row in leases if row.owner == worker)
    seen = {row.lease_key: Sighting(row.counter, 0.0) for row in leases}
    takes = to_take(
        leases, seen, 0.0, worker_id=worker, held=held, lease_duration_s=DURATION_S,
        max_leases_to_steal=steal, rng=random.Random(7),
    )  # fmt: skip
    keys = {take.lease.lease_key for take in takes}
    assert all(take.reason is not TakeReason.EXPIRED for take in takes)
    return [taken(row, worker) if row.lease_key in keys else row for row in leases]


@settings(max_examples=200, deadline=None)
@given(
    workers=st.integers(2, 5),
    assignment=st.lists(st.tuples(st.integers(-1, 4), st.booleans()), min_size=1, max_size=24),
    order_seed=st.integers(0, 1000),
    steal=st.integers(1, 3),
)
def test_busy_and_idle_leases_both_balance_then_stay_put(
    workers: int, assignment: list[tuple[int, bool]], order_seed: int, steal: int
) -> None:
    names = [f"w{i}" for i in range(workers)]
    leases = [
        lease(n, names[a] if 0 <= a < workers else None, busy)
        for n, (a, busy) in enumerate(assignment)
    ]
    order = random.Random(order_seed)
    moves: list[tuple[str, str | None, str]] = []
    for _ in range(4 * len(leases) + 10):
        moved = False
        for worker in order.sample(names, len(names)):
            before = {row.shard_id: row.owner for row in leases}
            leases = round_of(leases, worker, steal)
            for row in leases:
                if row.owner != before[row.shard_id]:
                    moves.append((row.shard_id, before[row.shard_id], worker))
                    moved = True
        if not moved:
            break
    else:
        pytest.fail("balancing did not settle")
    counts = Counter(row.owner for row in leases)
    busy = Counter(row.owner for row in leases if row.load.busy)
    assert None not in counts
    assert max(counts[n] for n in names) - min(counts[n] for n in names) <= 1
    assert max(busy[n] for n in names) - min(busy[n] for n in names) <= 1
    # No lease ever goes back to an owner it left.
    left: dict[str, set[str]] = defaultdict(set)
    for shard, source, target in moves:
        assert target not in left[shard], (shard, moves)
        if source is not None:
            left[shard].add(source)


def test_an_early_take_round_takes_free_leases_but_does_not_steal_again() -> None:
    """The keeper runs a take round early when a watched lease is about to expire; such a round
    takes what is free, but a steal waits a full take interval after the last one."""
    fleet = Fleet(shards=12, busy=set())
    fleet.start("w1")
    fleet.run(10)
    fleet.start("w2")
    fleet.run(0.2)
    (first,) = fleet.moves_since(0.0)[12:]
    assert (first.source, first.target) == ("w1", "w2")
    w2 = fleet.workers["w2"]
    w2._next_take = fleet.clock.now + 1.0  # what an imminent expiry makes the keeper do
    fleet.run(2)
    assert len(fleet.store.moves) == 13  # no second steal 1 s after the first
    fleet.run(TAKE_S)
    assert len(fleet.store.moves) == 14  # the regular round steals again


def test_a_stopping_worker_takes_nothing_and_its_released_leases_go_at_once() -> None:
    """3 -> 2 by SIGTERM: the stopping worker takes no lease while it drains; the two others take
    its released leases at their next round, each up to its share, without waiting for its
    last release (a released row names the worker leaving)."""
    fleet = Fleet(shards=12, busy=set())
    for name in ("w1", "w2", "w3"):
        fleet.start(name)
    fleet.run(60)
    assert sorted(fleet.counts().values()) == [4, 4, 4]
    leaving = fleet.workers["w3"]
    leaving.drain()
    theirs = sorted(s for s, owner in fleet.owners().items() if owner == "w3")
    # It releases one lease; the rest are still held (as while its Kafka flush goes on).
    first = fleet.store.by_shard(theirs[0])
    assert fleet.store.replace(first, released(first))
    before = fleet.clock.now
    fleet.run(TAKE_S + 0.5)
    owner = fleet.owners()[theirs[0]]
    assert owner in ("w1", "w2")  # taken at once: w3 no longer counts, the share is 6
    leaving.release_all()
    fleet.workers.pop("w3")
    fleet.run(TAKE_S + 0.5)
    assert sorted(fleet.counts().values()) == [6, 6]
    moves = fleet.moves_since(before)
    assert {m.source for m in moves} == {None}  # only released leases moved, none stolen
    assert {m.target for m in moves} == {"w1", "w2"}
    fleet.run(120)
    assert fleet.moves_since(fleet.clock.now - 120) == []
