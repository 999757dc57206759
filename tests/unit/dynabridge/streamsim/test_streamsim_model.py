"""The pure shard tree: dealing by hash, sequence numbers, rotation and splits, read pages and
positions, trimming, listings. Every call takes ``now``; randomness is a seeded Random."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator

import pytest

from dynabridge.streamsim.config import StreamConfig
from dynabridge.streamsim.hashing import HASH_SPACE
from dynabridge.streamsim.model import (
    InvalidPosition,
    IteratorKind,
    ShardGone,
    Stream,
    StreamDisabled,
)
from dynabridge.streamsim.shard import Encoded, Encoder, Shard, Trimmed

T0 = 1_800_000_000.0
LOW = 0
HIGH = HASH_SPACE - 1


def stream(**settings: object) -> Stream:
    return Stream(
        table="t",
        arn="arn:aws:dynamodb:us-east-1:1:table/t/stream/x",
        label="x",
        created_s=T0,
        view_type="NEW_AND_OLD_IMAGES",
        config=StreamConfig.from_json(settings),
        rng=random.Random(7),
    )


def record(name: str, size: int = 100) -> Encoder:
    def encode(sequence_number: str) -> Encoded:
        body = f'{{"n":"{name}","s":"{sequence_number}"}}'.encode()
        return Encoded(body, size, "INSERT", name, b'{"pk":{"S":"x"}}')

    return encode


def names(bodies: list[bytes]) -> list[str]:
    return [body.decode().split('"')[3] for body in bodies]


def lineage(s: Stream, shard: Shard) -> Iterator[Shard]:
    while shard.parent_id is not None:
        yield shard
        shard = s.shard(shard.parent_id)
    yield shard


def test_changes_are_dealt_to_the_open_shard_whose_range_holds_their_hash() -> None:
    s = stream(shards=4)
    shards = s.open_shards
    for shard in shards:
        got = s.append(T0, shard.hash_range.start, record("a"))
        assert got is shard
        assert s.append(T0, shard.hash_range.end, record("b")) is shard
    assert [shard.appended for shard in shards] == [2, 2, 2, 2]


def test_sequence_numbers_have_the_configured_digits_and_increase_across_the_lineage() -> None:
    s = stream(sequence_digits=25)
    first = s.open_shards[0]
    s.append(T0, LOW, record("a"))
    s.append(T0, LOW, record("b"))
    (child,) = s.rotate(T0 + 1, first.shard_id)
    s.append(T0 + 1, LOW, record("c"))
    assert first.ending is not None
    assert first.starting < first.ending < child.starting < child.last_seq
    assert all(len(str(n)) == 25 for n in (first.starting, first.ending, child.last_seq))


def test_a_rotation_closes_the_shard_at_its_last_record_and_opens_a_child_with_its_range() -> None:
    s = stream()
    parent = s.open_shards[0]
    s.append(T0, 5, record("a"))
    (child,) = s.rotate(T0 + 1, parent.shard_id)
    assert not parent.is_open
    assert parent.ending == parent.last_seq
    assert child.parent_id == parent.shard_id
    assert child.hash_range == parent.hash_range
    assert s.open_shards == [child]
    assert [shard.shard_id for shard in s.listing(T0 + 1)] == [parent.shard_id, child.shard_id]


def test_an_empty_shard_closes_at_its_starting_number() -> None:
    s = stream()
    parent = s.open_shards[0]
    s.rotate(T0, parent.shard_id)
    assert parent.ending == parent.starting


def test_a_split_gives_two_children_each_half_the_range_and_keys_follow_their_half() -> None:
    s = stream()
    parent = s.open_shards[0]
    low, high = s.split(T0, parent.shard_id)
    assert (low.hash_range.start, low.hash_range.end + 1) == (0, high.hash_range.start)
    assert high.hash_range.end == HIGH
    assert {low.parent_id, high.parent_id} == {parent.shard_id}
    assert s.append(T0, LOW, record("a")) is low
    assert s.append(T0, HIGH, record("b")) is high


def test_shard_ids_sort_parent_first_even_when_created_in_the_same_millisecond() -> None:
    s = stream()
    shard = s.open_shards[0]
    for _ in range(20):
        (shard,) = s.rotate(T0, shard.shard_id)
    ids = [item.shard_id for item in s.listing(T0)]
    assert ids == sorted(ids)
    assert all(len(i) >= 28 and i.startswith("shardId-") for i in ids)


def test_rotation_every_n_records_keeps_one_keys_records_in_lineage_order() -> None:
    s = stream(rotate_every_records=3)
    for i in range(10):
        s.append(T0, 42, record(f"r{i}"))
    (open_shard,) = s.open_shards
    chain = list(reversed(list(lineage(s, open_shard))))
    assert [shard.appended for shard in chain] == [3, 3, 3, 1]
    read = []
    for shard in chain:
        read += names(shard.page(shard.trimmed_through, 1000, 10**9).bodies)
    assert read == [f"r{i}" for i in range(10)]


def test_timed_rotation_happens_when_time_advances_past_each_shards_deadline() -> None:
    s = stream(shards=2, rotate_every_s=10, rotate_jitter=0.2)
    first = s.open_shards
    s.advance(T0 + 7.9)
    assert s.open_shards == first
    s.advance(T0 + 12.1)
    assert all(not shard.is_open for shard in first)
    assert all(shard.parent_id in {f.shard_id for f in first} for shard in s.open_shards)


def test_split_rate_one_splits_until_the_cap_then_rotates() -> None:
    s = stream(rotate_every_records=1, split_rate=1.0, max_open_shards=4)
    for i in range(12):
        s.append(T0, (i * 7919) % HASH_SPACE, record(str(i)))
    assert len(s.open_shards) == 4
    ranges = sorted((shard.hash_range.start, shard.hash_range.end) for shard in s.open_shards)
    assert ranges[0][0] == 0
    assert ranges[-1][1] == HIGH
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(ranges))


def test_a_page_stops_at_the_limit_and_before_the_byte_cap_but_returns_at_least_one() -> None:
    s = stream()
    shard = s.open_shards[0]
    for i in range(10):
        s.append(T0, LOW, record(f"r{i}", size=300))
    assert names(shard.page(shard.trimmed_through, 4, 10**9).bodies) == ["r0", "r1", "r2", "r3"]
    assert len(shard.page(shard.trimmed_through, 1000, 1000).bodies) == 3
    assert len(shard.page(shard.trimmed_through, 1000, 10).bodies) == 1


def test_an_open_shard_returns_empty_pages_that_keep_their_position() -> None:
    s = stream()
    shard = s.open_shards[0]
    s.append(T0, LOW, record("a"))
    page = shard.page(shard.trimmed_through, 1000, 10**9)
    again = shard.page(page.after, 1000, 10**9)
    assert (again.bodies, again.after, again.at_end) == ([], page.after, False)
    s.append(T0, LOW, record("b"))
    assert names(shard.page(page.after, 1000, 10**9).bodies) == ["b"]


def test_a_closed_shard_ends_with_its_last_page_even_an_empty_one() -> None:
    s = stream()
    shard = s.open_shards[0]
    s.append(T0, LOW, record("a"))
    s.append(T0, LOW, record("b"))
    s.rotate(T0, shard.shard_id)
    first = shard.page(shard.trimmed_through, 1, 10**9)
    assert not first.at_end
    last = shard.page(first.after, 1, 10**9)
    assert last.at_end
    assert names(last.bodies) == ["b"]
    assert shard.page(last.after, 1, 10**9).at_end


def test_positions_of_every_iterator_type() -> None:
    s = stream()
    shard = s.open_shards[0]
    for i in range(3):
        s.append(T0 + i, LOW, record(f"r{i}"))
    seqs = [shard.starting + 1 + i for i in range(3)]

    def read(kind: IteratorKind, number: int | None = None, when: float | None = None) -> list[str]:
        after = s.position(shard, kind, number, when)
        return names(shard.page(after, 1000, 10**9).bodies)

    assert read(IteratorKind.TRIM_HORIZON) == ["r0", "r1", "r2"]
    assert read(IteratorKind.LATEST) == []
    assert read(IteratorKind.AT_SEQUENCE_NUMBER, seqs[1]) == ["r1", "r2"]
    assert read(IteratorKind.AFTER_SEQUENCE_NUMBER, seqs[1]) == ["r2"]
    assert read(IteratorKind.AT_SEQUENCE_NUMBER, shard.starting) == ["r0", "r1", "r2"]
    assert read(IteratorKind.AT_TIMESTAMP, when=T0 + 0.5) == ["r1", "r2"]
    assert read(IteratorKind.AT_TIMESTAMP, when=T0 + 9) == []


def test_a_sequence_number_outside_the_shard_is_refused() -> None:
    s = stream()
    first = s.open_shards[0]
    s.append(T0, LOW, record("a"))
    (child,) = s.rotate(T0, first.shard_id)
    assert first.ending is not None
    with pytest.raises(InvalidPosition, match="Invalid SequenceNumber"):
        s.position(first, IteratorKind.AFTER_SEQUENCE_NUMBER, first.ending + 1, None)
    with pytest.raises(InvalidPosition):
        s.position(child, IteratorKind.AT_SEQUENCE_NUMBER, first.ending, None)
    with pytest.raises(InvalidPosition):
        s.position(child, IteratorKind.AT_SEQUENCE_NUMBER, s.last_sequence_number + 1, None)


def test_a_sequence_number_of_a_sibling_shard_is_refused_even_inside_the_range() -> None:
    s = stream(shards=2)
    low, high = s.open_shards
    s.append(T0, LOW, record("a"))
    s.append(T0, HIGH, record("b"))
    s.append(T0, LOW, record("c"))
    siblings = high.last_seq
    assert low.starting < siblings < low.last_seq
    with pytest.raises(InvalidPosition, match="not a record of shard"):
        s.position(low, IteratorKind.AFTER_SEQUENCE_NUMBER, siblings, None)
    own = low.last_seq
    assert s.position(low, IteratorKind.AT_SEQUENCE_NUMBER, own, None) == own - 1


def test_records_older_than_the_retention_are_trimmed_and_old_positions_fail_loudly() -> None:
    s = stream(retention_s=60)
    shard = s.open_shards[0]
    s.append(T0, LOW, record("old"))
    s.append(T0 + 50, LOW, record("new"))
    horizon_before = s.position(shard, IteratorKind.TRIM_HORIZON, None, None)
    s.advance(T0 + 61)
    assert shard.live_records == 1
    with pytest.raises(Trimmed):
        shard.page(horizon_before, 1000, 10**9)
    first_seq = shard.starting + 1
    with pytest.raises(Trimmed):
        s.position(shard, IteratorKind.AT_SEQUENCE_NUMBER, first_seq, None)
    assert s.position(shard, IteratorKind.AFTER_SEQUENCE_NUMBER, first_seq, None) == first_seq
    after = s.position(shard, IteratorKind.TRIM_HORIZON, None, None)
    assert names(shard.page(after, 1000, 10**9).bodies) == ["new"]


def test_a_closed_shard_leaves_the_stream_once_trimmed_and_retention_after_it_closed() -> None:
    s = stream(retention_s=60)
    parent = s.open_shards[0]
    s.append(T0, LOW, record("a"))
    (child,) = s.rotate(T0 + 30, parent.shard_id)
    s.advance(T0 + 80)  # its record is trimmed, but it closed 50 s ago
    assert parent.shard_id in s.shards
    assert parent.live_records == 0
    s.advance(T0 + 91)
    assert parent.shard_id not in s.shards
    assert parent.shard_id in s.gone
    with pytest.raises(ShardGone):
        s.shard(parent.shard_id)
    assert [shard.shard_id for shard in s.listing(T0 + 91)] == [child.shard_id]
    assert child.parent_id == parent.shard_id


def test_trimming_a_closed_shard_by_hand_removes_it_and_an_open_one_stays() -> None:
    s = stream()
    parent = s.open_shards[0]
    s.append(T0, LOW, record("a"))
    (child,) = s.rotate(T0, parent.shard_id)
    s.append(T0, LOW, record("b"))
    assert s.trim(T0) == 2
    assert parent.shard_id in s.gone
    assert child.shard_id in s.shards
    assert child.live_records == 0


def test_the_memory_cap_trims_the_oldest_records_first() -> None:
    s = stream(shards=2, max_records=3)
    low, high = s.open_shards
    s.append(T0, LOW, record("a"))
    s.append(T0, HIGH, record("b"))
    s.append(T0, LOW, record("c"))
    s.append(T0, HIGH, record("d"))
    assert names(low.page(low.trimmed_through, 10, 10**9).bodies) == ["c"]
    assert names(high.page(high.trimmed_through, 10, 10**9).bodies) == ["b", "d"]


def test_a_new_child_is_missing_from_listings_for_the_lag_but_roots_never_are() -> None:
    s = stream(shards=2, listing_lag_s=5)
    roots = s.open_shards
    (child,) = s.rotate(T0 + 10, roots[0].shard_id)
    listed = {shard.shard_id for shard in s.listing(T0 + 12)}
    assert listed == {roots[0].shard_id, roots[1].shard_id}
    assert child.shard_id in {shard.shard_id for shard in s.listing(T0 + 15)}
    assert s.listing(T0 + 12, parent_id=roots[0].shard_id) == []
    assert s.listing(T0 + 15, parent_id=roots[0].shard_id) == [child]


def test_omission_drops_one_shard_of_a_page_at_the_configured_rate() -> None:
    never, always = stream(shards=5), stream(shards=5, omit_shard_rate=1.0)
    assert len(never.omitted(never.listing(T0))) == 5
    assert len(always.omitted(always.listing(T0))) == 4


def test_raising_the_shard_count_splits_and_lowering_it_is_refused() -> None:
    s = stream(shards=2)
    s.reconfigure(T0, s.config.updated({"shards": 5}))
    assert len(s.open_shards) == 5
    with pytest.raises(InvalidPosition, match="never merges"):
        s.reconfigure(T0, s.config.updated({"shards": 3}))


def test_a_disabled_stream_closes_every_shard_and_takes_no_more_changes() -> None:
    s = stream(shards=3)
    s.append(T0, LOW, record("a"))
    s.disable(T0 + 1)
    assert s.open_shards == []
    assert all(not shard.is_open for shard in s.listing(T0 + 1))
    with pytest.raises(StreamDisabled):
        s.append(T0 + 1, LOW, record("b"))


def test_the_oracle_keeps_every_record_after_it_is_trimmed() -> None:
    s = stream(retention_s=1)
    shard = s.open_shards[0]
    s.append(T0, LOW, record("a"))
    s.advance(T0 + 5)
    assert shard.live_records == 0
    assert [e.event_id for e in shard.emitted] == ["a"]
    assert not stream(oracle=False).open_shards[0].emitted
