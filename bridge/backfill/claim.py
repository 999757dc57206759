"""One backfill per table: a claim row with a counter that the live run keeps moving.

A run that finds the claim held watches the counter for ``ttl_s`` by *its own* monotonic
clock (no cross-host clock comparison): if it moves, the holder is alive and the new run is
refused; if it stands still, the holder is presumed dead (SIGKILL, lost host) and the claim is
taken with a write conditional on the counter it saw, so two contenders cannot both win.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from bridge.backfill.errors import BackfillRunning, ClaimLost
from bridge.backfill.progress import RunRecord, RunState


class ClaimStore(Protocol):
    def run(self, table: str) -> RunRecord | None: ...
    def create_run(self, run: RunRecord) -> bool: ...
    def replace_run(self, old: RunRecord, new: RunRecord) -> bool: ...


def acquire(
    store: ClaimStore,
    table: str,
    ours: Callable[[RunRecord | None], RunRecord],
    *,
    ttl_s: float,
    say: Callable[[str], None],
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[RunRecord, RunRecord | None]:
    """Take ``table``'s claim; returns (the row we wrote, the row we replaced or None).

    ``ours(previous)`` builds our row from what we are replacing (so resuming or not is
    decided on the row actually replaced); its counter is set here.
    """
    previous = store.run(table)
    if previous is None:
        mine = replace(ours(None), counter=0)
        if store.create_run(mine):
            return mine, None
        previous = store.run(table)
        if previous is None:
            raise BackfillRunning(f"the claim of {table} changed under us: try again")
    if previous.state is RunState.RUNNING:
        previous = _presumed_dead(store, previous, ttl_s, say, clock, sleep)
    mine = replace(ours(previous), counter=previous.counter + 1)
    if not store.replace_run(previous, mine):
        raise BackfillRunning(
            f"another backfill of {table} took the claim at the same moment: not starting"
        )
    return mine, previous


def _presumed_dead(
    store: ClaimStore,
    held: RunRecord,
    ttl_s: float,
    say: Callable[[str], None],
    clock: Callable[[], float],
    sleep: Callable[[float], None],
) -> RunRecord:
    say(
        f"backfill run {held.run_id} ({held.owner}) holds the claim of {held.table}; "
        f"watching its heartbeat for {ttl_s:g} s"
    )
    deadline = clock() + ttl_s
    while clock() < deadline:
        sleep(min(ttl_s / 10, max(0.0, deadline - clock())))
        now = store.run(held.table)
        if now is None or now.counter != held.counter or now.run_id != held.run_id:
            if now is not None and now.state is not RunState.RUNNING:
                return now  # it finished or stopped while we watched: not alive, take it
            raise BackfillRunning(
                f"a backfill of table {held.table} is already running (run {held.run_id} on "
                f"{held.owner}, its heartbeat is moving): wait for it, or stop it first"
            )
    return held


def renewed(run: RunRecord, now_wall: float) -> RunRecord:
    return replace(run, counter=run.counter + 1, updated_at=now_wall)


def heartbeat(store: ClaimStore, run: RunRecord, now_wall: float) -> RunRecord:
    """Move our counter; :class:`ClaimLost` if another run took the claim meanwhile."""
    new = renewed(run, now_wall)
    if not store.replace_run(run, new):
        raise ClaimLost(
            f"the backfill claim of {run.table} was taken by another run (ours, {run.run_id}, "
            "was presumed dead): stopping"
        )
    return new
