"""In-flight tracking: the checkpointable position never passes an unacknowledged record."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bridge.acks import DeliveryError, Position, ShardAcks


def send(acks: ShardAcks, n: int) -> list[int]:
    return [acks.sent(f"{100 + i:021d}", 1000 + i) for i in range(n)]


def test_nothing_acknowledged_means_no_position() -> None:
    acks = ShardAcks()
    send(acks, 3)
    assert acks.acknowledged() is None
    assert acks.in_flight() == 3


def test_out_of_order_acks_advance_only_over_the_contiguous_prefix() -> None:
    acks = ShardAcks()
    a, b, c = send(acks, 3)
    acks.delivered(c, None)
    assert acks.acknowledged() is None
    acks.delivered(a, None)
    assert acks.acknowledged() == Position(f"{100:021d}", 1000)
    acks.delivered(b, None)
    assert acks.acknowledged() == Position(f"{102:021d}", 1002)
    assert acks.in_flight() == 0
    assert acks.acked_count() == 3


def test_a_failure_latches_and_freezes_the_position() -> None:
    acks = ShardAcks()
    a, b, c = send(acks, 3)
    acks.delivered(a, None)
    acks.delivered(b, "MSG_SIZE_TOO_LARGE")
    acks.delivered(c, "second error")
    assert acks.error() == "MSG_SIZE_TOO_LARGE"
    assert acks.acknowledged() == Position(f"{100:021d}", 1000)
    with pytest.raises(DeliveryError, match="shard-1: MSG_SIZE_TOO_LARGE"):
        acks.raise_if_failed("shard-1")


def test_no_position_advance_after_a_failure_even_if_later_records_ack() -> None:
    acks = ShardAcks()
    a, b = send(acks, 2)
    acks.delivered(a, "boom")
    acks.delivered(b, None)
    assert acks.acknowledged() is None


@given(st.permutations(range(30)), st.integers(0, 30))
def test_position_is_always_the_last_of_the_acknowledged_prefix(
    order: list[int], delivered_count: int
) -> None:
    acks = ShardAcks()
    ordinals = send(acks, 30)
    done = set(order[:delivered_count])
    for i in order[:delivered_count]:
        acks.delivered(ordinals[i], None)
    prefix = 0
    while prefix in done:
        prefix += 1
    expected = None if prefix == 0 else Position(f"{100 + prefix - 1:021d}", 1000 + prefix - 1)
    assert acks.acknowledged() == expected
    assert acks.in_flight() == 30 - prefix
