"""Per-lineage versions: monotone, deterministic on re-read, inherited by children."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.versions import MAX_VERSION, NO_VERSION, epoch_seconds, next_version

T0_MS = 1_700_000_000_000


def versions(previous: int, times_ms: list[int]) -> list[int]:
    out = []
    for ms in times_ms:
        previous = next_version(previous, ms)
        out.append(previous)
    return out


def test_first_record_of_a_root_is_its_second_times_a_million() -> None:
    assert next_version(NO_VERSION, T0_MS + 999) == 1_700_000_000 * 1_000_000


def test_epoch_seconds_rounds_down_like_aws() -> None:
    assert epoch_seconds(1_999) == 1
    assert epoch_seconds(2_000) == 2


def test_thousand_records_in_one_second_get_consecutive_versions() -> None:
    got = versions(NO_VERSION, [T0_MS + i % 1000 for i in range(1000)])
    base = 1_700_000_000 * 1_000_000
    assert got == list(range(base, base + 1000))


def test_next_second_jumps_to_its_own_base() -> None:
    got = versions(NO_VERSION, [T0_MS, T0_MS + 1, T0_MS + 1000])
    assert got[-1] == 1_700_000_001 * 1_000_000


def test_restart_mid_second_recomputes_identical_versions() -> None:
    times = [T0_MS + i for i in range(10)]
    first_run = versions(NO_VERSION, times)
    # Crash after the 4th record was checkpointed with its version; re-read the rest.
    resumed = versions(first_run[3], times[4:])
    assert resumed == first_run[4:]


def test_child_continues_from_its_parents_final_version_in_the_same_second() -> None:
    parent = versions(NO_VERSION, [T0_MS] * 5)
    child = versions(parent[-1], [T0_MS] * 3)
    assert child[0] == parent[-1] + 1
    assert child == sorted(child)


def test_clock_going_back_never_lowers_the_version() -> None:
    got = versions(NO_VERSION, [T0_MS + 5000, T0_MS])
    assert got[1] == got[0] + 1


def test_overflow_is_refused() -> None:
    with pytest.raises(OverflowError):
        next_version(MAX_VERSION, T0_MS)


@given(st.integers(0, 10**12), st.lists(st.integers(0, 4_000_000_000_000), max_size=50))
def test_versions_strictly_increase_and_never_precede_their_second(
    previous: int, times_ms: list[int]
) -> None:
    got = versions(previous, times_ms)
    chain = [previous, *got]
    assert all(a < b for a, b in itertools.pairwise(chain))
    assert all(v >= epoch_seconds(ms) * 1_000_000 for v, ms in zip(got, times_ms, strict=True))
