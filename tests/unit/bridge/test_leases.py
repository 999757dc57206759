"""Lease decisions with a fixed clock: take, renew, expire by our clock, steal to balance."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.leases import (
    SHARD_END,
    TRIM_HORIZON,
    CheckpointError,
    Lease,
    Sighting,
    TakeReason,
    checkpointed,
    expired,
    expiry_due,
    fair_share,
    new_lease,
    released,
    renewed,
    sightings,
    taken,
    to_take,
)

DURATION = 10.0


def leases_of(owners: Sequence[str | None], *, finished: Sequence[str | None] = ()) -> list[Lease]:
    live = [
        new_lease("t", "arn", f"s{i:03d}", (), TRIM_HORIZON, owner=owner)
        for i, owner in enumerate(owners)
    ]
    done = [
        new_lease("t", "arn", f"f{i:03d}", (), SHARD_END, owner=owner)
        for i, owner in enumerate(finished)
    ]
    return live + done


def decide(
    leases: list[Lease],
    worker: str,
    *,
    now: float = 0.0,
    seen: dict[str, Sighting] | None = None,
    steal: int = 1,
) -> list[tuple[str, TakeReason]]:
    seen = sightings({}, leases, now) if seen is None else seen
    held = frozenset(lease.lease_key for lease in leases if lease.owner == worker)
    takes = to_take(
        leases,
        seen,
        now,
        worker_id=worker,
        held=held,
        lease_duration_s=DURATION,
        max_leases_to_steal=steal,
        rng=random.Random(1),
    )
    return [(take.lease.shard_id, take.reason) for take in takes]


def apply(leases: list[Lease], worker: str, takes: list[tuple[str, TakeReason]]) -> list[Lease]:
    ids = {shard_id for shard_id, _ in takes}
    return [taken(lease, worker) if lease.shard_id in ids else lease for lease in leases]


def owners(leases: list[Lease]) -> Counter[str | None]:
    return Counter(lease.owner for lease in leases if lease.checkpoint != SHARD_END)


def test_single_worker_takes_every_unowned_lease_at_once() -> None:
    takes = decide(leases_of([None, None, None]), "w1")
    assert sorted(takes) == [(f"s{i:03d}", TakeReason.UNOWNED) for i in range(3)]


def test_transitions_increment_the_counter() -> None:
    lease = new_lease("t", "arn", "s", (), TRIM_HORIZON)
    assert taken(lease, "w1") == replace(lease, owner="w1", counter=1)
    assert renewed(taken(lease, "w1")).counter == 2
    assert released(taken(lease, "w1")) == replace(lease, released_by="w1", counter=2)
    assert taken(released(taken(lease, "w1")), "w2").released_by is None


def test_expiry_is_measured_from_our_first_sighting_of_the_counter() -> None:
    lease = leases_of(["w2"])[0]
    seen = sightings({}, [lease], now=1000.0)  # first seen late: not expired on sight
    assert not expired(lease, seen[lease.lease_key], 1000.0, DURATION)
    assert not expired(lease, seen[lease.lease_key], 1009.9, DURATION)
    assert expired(lease, seen[lease.lease_key], 1010.0, DURATION)


def test_a_renewal_restarts_our_expiry_clock() -> None:
    lease = leases_of(["w2"])[0]
    seen = sightings({}, [lease], now=0.0)
    seen = sightings(seen, [lease], now=5.0)  # unchanged: the clock keeps running from 0
    assert seen[lease.lease_key] == Sighting(0, 0.0)
    seen = sightings(seen, [renewed(lease)], now=6.0)
    assert not expired(renewed(lease), seen[lease.lease_key], 15.9, DURATION)
    assert expired(renewed(lease), seen[lease.lease_key], 16.0, DURATION)


def test_expiry_due_names_the_next_moment_a_lease_can_expire() -> None:
    a, b = leases_of(["w2", "w3"])
    seen = {a.lease_key: Sighting(0, 0.0), b.lease_key: Sighting(0, 4.0)}
    assert expiry_due([a, b], seen, 1.0, DURATION) == 10.0
    assert expiry_due([a, b], seen, 10.0, DURATION) == 14.0
    assert expiry_due([a, b], seen, 14.0, DURATION) is None


def test_expired_leases_are_taken_before_any_steal() -> None:
    leases = leases_of(["dead", "dead", "w2", "w2"])
    seen = sightings({}, leases, 0.0)
    leases = [renewed(lease) if lease.owner == "w2" else lease for lease in leases]
    seen = sightings(seen, leases, 9.0)  # w2 renews, "dead" does not
    takes = decide(leases, "w1", now=10.0, seen=seen)
    assert sorted(takes) == [("s000", TakeReason.EXPIRED), ("s001", TakeReason.EXPIRED)]


def test_no_take_at_fair_share() -> None:
    leases = leases_of(["w1", "w1", "w2", "w2", "w3"])
    assert decide(leases, "w1") == []
    assert decide(leases, "w3") == []  # 1 < ceil(5/3)=2 but the others are at the target


def test_steal_is_gradual_and_balances_two_workers() -> None:
    leases = leases_of(["w1"] * 6)
    rounds = 0
    while takes := decide(leases, "w2"):
        assert len(takes) == 1
        assert takes[0][1] is TakeReason.STEAL
        leases = apply(leases, "w2", takes)
        rounds += 1
    assert rounds == 3
    assert owners(leases) == Counter({"w1": 3, "w2": 3})
    assert decide(leases, "w1") == []


def test_steal_limit_per_round_is_configurable() -> None:
    takes = decide(leases_of(["w1"] * 6), "w2", steal=2)
    assert len(takes) == 2


def test_three_workers_reach_fair_share_including_the_2_2_0_case() -> None:
    leases = leases_of(["w1", "w1", "w2", "w2"])
    takes = decide(leases, "w3")  # w1, w2 are at target 2 and w3 needs 2: steal one
    assert len(takes) == 1
    leases = apply(leases, "w3", takes)
    assert sorted(owners(leases).values()) == [1, 1, 2]
    assert all(decide(leases, w) == [] for w in ("w1", "w2", "w3"))


def test_finished_leases_are_never_stolen_nor_counted() -> None:
    leases = leases_of(["w1", "w1"], finished=["w1"] * 4)
    takes = decide(leases, "w2")
    assert [shard for shard, _ in takes] in (["s000"], ["s001"])
    assert decide(leases_of([], finished=[None, None]), "w2") == []


def test_checkpoint_refuses_to_go_backwards() -> None:
    lease = checkpointed(new_lease("t", "arn", "s", (), TRIM_HORIZON), "500", 7)
    assert (lease.checkpoint, lease.last_version, lease.counter) == ("500", 7, 1)
    assert checkpointed(lease, "1000", 8).checkpoint == "1000"  # numeric, not text, order
    with pytest.raises(CheckpointError):
        checkpointed(lease, "499", 8)
    with pytest.raises(CheckpointError):
        checkpointed(lease, "600", 6)
    with pytest.raises(CheckpointError):
        checkpointed(checkpointed(lease, SHARD_END, 7), "700", 7)


def test_fair_share() -> None:
    assert [fair_share(n, 3) for n in (0, 1, 3, 4, 7)] == [0, 1, 1, 2, 3]


@settings(max_examples=150, deadline=None)
@given(
    workers=st.integers(1, 5),
    assignment=st.lists(st.integers(-1, 4), max_size=25),
    steal=st.integers(1, 3),
    order_seed=st.integers(0, 1000),
)
def test_balancing_converges_and_then_stays_put(
    workers: int, assignment: list[int], steal: int, order_seed: int
) -> None:
    names = [f"w{i}" for i in range(workers)]
    leases = leases_of([names[a] if 0 <= a < workers else None for a in assignment])
    order = random.Random(order_seed)
    for _ in range(len(leases) + 5):
        moved = False
        for worker in order.sample(names, len(names)):
            takes = decide(leases, worker, steal=steal)
            moved |= bool(takes)
            leases = apply(leases, worker, takes)
        if not moved:
            break
    else:
        pytest.fail("balancing did not settle")
    counts = owners(leases)
    assert None not in counts
    loads = [counts.get(name, 0) for name in names]
    assert max(loads) - min(loads) <= 1
