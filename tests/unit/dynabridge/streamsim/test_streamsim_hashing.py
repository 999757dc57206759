"""Hash ranges tile the key space; keys hash the way DynamoDB's key equality says."""

from __future__ import annotations

import base64
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dynabridge.streamsim.hashing import HASH_SPACE, HashRange, even_ranges, key_hash


@given(st.integers(min_value=1, max_value=300))
def test_even_ranges_tile_the_whole_space_in_order(count: int) -> None:
    ranges = even_ranges(count)
    assert len(ranges) == count
    assert ranges[0].start == 0
    assert ranges[-1].end == HASH_SPACE - 1
    for left, right in itertools.pairwise(ranges):
        assert right.start == left.end + 1
    widths = [r.width for r in ranges]
    assert max(widths) - min(widths) <= 1


@given(
    st.integers(min_value=0, max_value=HASH_SPACE - 2), st.integers(min_value=1, max_value=2**64)
)
def test_halves_split_a_range_into_two_adjacent_ranges(start: int, width: int) -> None:
    parent = HashRange(start, min(HASH_SPACE - 1, start + width))
    low, high = parent.halves()
    assert (low.start, high.end) == (parent.start, parent.end)
    assert high.start == low.end + 1
    assert abs(low.width - high.width) <= 1


def test_a_one_value_range_cannot_be_split() -> None:
    with pytest.raises(ValueError, match="too narrow"):
        HashRange(5, 5).halves()


def test_equal_numbers_hash_equally_whatever_their_spelling() -> None:
    assert key_hash({"N": "1"}) == key_hash({"N": "1.0"}) == key_hash({"N": "1E0"})
    assert key_hash({"N": "0"}) == key_hash({"N": "-0.00"})
    assert key_hash({"N": "1"}) != key_hash({"N": "2"})


def test_types_are_part_of_the_key() -> None:
    assert key_hash({"S": "1"}) != key_hash({"N": "1"})


def test_binary_hashes_its_bytes_whether_given_as_base64_or_bytes() -> None:
    data = b"\x00\xff\x10"
    assert key_hash({"B": base64.b64encode(data).decode()}) == key_hash({"B": data})


def test_keys_spread_evenly_over_the_ranges() -> None:
    ranges = even_ranges(4)
    counts = [0] * 4
    for i in range(8000):
        value = key_hash({"S": f"item-{i}"})
        counts[next(n for n, r in enumerate(ranges) if r.holds(value))] += 1
    assert all(1700 < count < 2300 for count in counts), counts
