"""--to parsing, per-partition resolution within [low, end], and the live-member refusal."""

from __future__ import annotations

import datetime as dt

import pytest

from dynabridge.operations.offset_targets import (
    GroupInfo,
    Member,
    Move,
    OffsetTarget,
    TargetError,
    TargetKind,
    Watermarks,
    parse_target,
    plan,
    refusal,
    resolved_offset,
    summary,
)

MARKS = Watermarks(low=10, high=50)


def test_parse_target_forms() -> None:
    assert parse_target("earliest") == OffsetTarget(TargetKind.EARLIEST)
    assert parse_target("LATEST") == OffsetTarget(TargetKind.LATEST)
    assert parse_target("42") == OffsetTarget(TargetKind.OFFSET, 42)
    expected_ms = int(dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC).timestamp() * 1000)
    assert parse_target("2024-05-01T12:00:00Z").value == expected_ms
    assert parse_target("2024-05-01T14:00:00+02:00").value == expected_ms


@pytest.mark.parametrize(
    ("text", "message"),
    [("-3", "0 or more"), ("yesterday", "not a position"), ("2024-05-01T12:00", "timezone")],
)
def test_parse_target_refuses(text: str, message: str) -> None:
    with pytest.raises(TargetError, match=message):
        parse_target(text)


def test_resolution_stays_within_the_partition() -> None:
    assert resolved_offset(OffsetTarget(TargetKind.EARLIEST), MARKS) == (10, False)
    assert resolved_offset(OffsetTarget(TargetKind.LATEST), MARKS) == (50, False)
    assert resolved_offset(OffsetTarget(TargetKind.OFFSET, 20), MARKS) == (20, False)
    assert resolved_offset(OffsetTarget(TargetKind.OFFSET, 3), MARKS) == (10, True)
    assert resolved_offset(OffsetTarget(TargetKind.OFFSET, 99), MARKS) == (50, True)
    when = OffsetTarget(TargetKind.TIMESTAMP, 1)
    assert resolved_offset(when, MARKS, 30) == (30, False)
    assert resolved_offset(when, MARKS, -1) == (50, False)  # every record is older: the end


def test_plan_and_summary() -> None:
    marks = {1: Watermarks(0, 8), 0: Watermarks(0, 5)}
    moves = plan(OffsetTarget(TargetKind.EARLIEST), marks, {0: 5, 1: None})
    assert moves == [Move(0, 5, 0), Move(1, None, 0)]
    assert summary(moves) == (5, 0)
    assert summary([Move(0, 2, 7)]) == (0, 5)


def test_refusal_lists_members_and_the_session_timeout() -> None:
    assert refusal(GroupInfo("g", "EMPTY", ()), 6000) is None
    member = Member("m-1", "indexer-1", "/10.0.0.1", ("t[0]", "t[1]"))
    text = refusal(GroupInfo("g", "STABLE", (member,)), 10000)
    assert text is not None
    assert "indexer-1 on /10.0.0.1 (m-1): t[0], t[1]" in text
    assert "SIGKILL" in text
    assert "10000 ms" in text
