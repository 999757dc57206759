"""One shard's reading against scripted Streams responses (what moto cannot produce)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import pytest

from bridge.reader import (
    ExpiredIteratorError,
    IteratorRequest,
    IteratorType,
    Page,
    ReadState,
    ShardGoneError,
    ShardReader,
    ThrottledError,
    TimedOutError,
    TrimmedDataError,
    fetch,
    iterator_request,
)
from bridge.records import ShardSource
from bridge.runtime.settings import BridgeSettings, TrimmedPolicy

SOURCE = ShardSource("orders", "arn:stream", "shardId-1")
T0 = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)


def rec(seq: int) -> dict[str, Any]:
    return {
        "eventID": f"e{seq}",
        "eventName": "INSERT",
        "dynamodb": {
            "ApproximateCreationDateTime": T0,
            "Keys": {"pk": {"S": f"k{seq}"}},
            "NewImage": {"pk": {"S": f"k{seq}"}},
            "SequenceNumber": f"{seq:021d}",
        },
    }


Step = Page | Exception


class ScriptedStreams:
    """Answers GetShardIterator/GetRecords from a script; records every request."""

    def __init__(self, pages: Sequence[Step], iterator_errors: list[Exception] | None = None):
        self.pages = list(pages)
        self.iterator_errors = iterator_errors or []
        self.requests: list[IteratorRequest] = []
        self.limits: list[int] = []

    def shard_iterator(self, stream_arn: str, shard_id: str, request: IteratorRequest) -> str:
        assert (stream_arn, shard_id) == (SOURCE.stream_arn, SOURCE.shard_id)
        self.requests.append(request)
        if self.iterator_errors:
            raise self.iterator_errors.pop(0)
        return f"it-{len(self.requests)}"

    def records(self, iterator: str, limit: int) -> Page:
        self.limits.append(limit)
        step = self.pages.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


def make_reader(
    checkpoint: str = "TRIM_HORIZON",
    last_version: int = 0,
    rng: Callable[[], float] = lambda: 1.0,
    **overrides: Any,
) -> ShardReader:
    settings = BridgeSettings(
        tables=["orders"], idle_poll_min_s=0.05, idle_poll_max_s=0.4, **overrides
    )
    return ShardReader("lease-1", SOURCE, checkpoint, last_version, settings, rng)


def after(seq: int) -> IteratorRequest:
    return IteratorRequest(IteratorType.AFTER_SEQUENCE_NUMBER, f"{seq:021d}")


@pytest.mark.parametrize(
    ("checkpoint", "expected"),
    [
        ("TRIM_HORIZON", IteratorRequest(IteratorType.TRIM_HORIZON)),
        ("LATEST", IteratorRequest(IteratorType.LATEST)),
        ("000000000000000000042", after(42)),
    ],
)
def test_iterator_comes_from_the_checkpoint(checkpoint: str, expected: IteratorRequest) -> None:
    assert iterator_request(checkpoint) == expected


def test_a_finished_shard_is_not_read() -> None:
    with pytest.raises(ValueError, match="SHARD_END"):
        iterator_request("SHARD_END")


def test_records_repoll_at_once_then_idle_backoff_doubles_to_the_cap() -> None:
    streams = ScriptedStreams([Page([rec(1)], "i")] + [Page([], "i")] * 5)
    reader = make_reader()
    assert reader.read(streams, 10.0).events
    assert reader.next_poll_at() == 10.0
    assert reader.due(10.0)
    delays = []
    for _ in range(5):
        reader.read(streams, 10.0)
        delays.append(round(reader.next_poll_at() - 10.0, 3))
    assert delays == [0.05, 0.1, 0.2, 0.4, 0.4]
    assert streams.limits[0] == 1000


def test_data_after_idle_resets_the_backoff() -> None:
    streams = ScriptedStreams([Page([], "i"), Page([], "i"), Page([rec(1)], "i"), Page([], "i")])
    reader = make_reader()
    for _ in range(3):
        reader.read(streams, 0.0)
    assert reader.next_poll_at() == 0.0
    reader.read(streams, 0.0)
    assert reader.next_poll_at() == 0.05


def test_closing_shard_publishes_its_last_page_then_drains() -> None:
    streams = ScriptedStreams([Page([rec(1)], "i"), Page([rec(2), rec(3)], None)])
    reader = make_reader(last_version=7)
    reader.read(streams, 0.0)
    last = reader.read(streams, 0.0)
    assert [e.sequence_number for e in last.events] == [f"{2:021d}", f"{3:021d}"]
    assert reader.state is ReadState.DRAINING
    assert not reader.due(100.0)
    for event in last.events:  # handed to "Kafka"
        reader.acks.sent(event.sequence_number, event.version)
    assert not reader.finished()
    reader.acks.delivered(0, None)
    assert not reader.finished()
    reader.acks.delivered(1, None)
    assert reader.finished()
    assert reader.version == last.events[-1].version


def test_closed_shard_with_an_empty_last_page_keeps_the_inherited_version() -> None:
    reader = make_reader(last_version=123)
    result = reader.read(ScriptedStreams([Page([], None)]), 0.0)
    assert result.events == []
    assert reader.finished()
    assert reader.version == 123


def test_expired_iterator_is_reacquired_after_the_last_record_read() -> None:
    streams = ScriptedStreams(
        [Page([rec(5)], "i"), ExpiredIteratorError("old"), Page([rec(6)], "i")]
    )
    reader = make_reader(checkpoint=f"{2:021d}", last_version=50)
    first = reader.read(streams, 0.0)
    assert reader.read(streams, 0.0).events == []
    second = reader.read(streams, 0.0)
    assert streams.requests == [after(2), after(5)]
    assert second.events[0].version == first.events[0].version + 1


def test_expired_iterator_before_any_record_restarts_from_the_checkpoint() -> None:
    streams = ScriptedStreams([ExpiredIteratorError("old"), Page([], "i")])
    reader = make_reader(checkpoint=f"{2:021d}")
    reader.read(streams, 0.0)
    reader.read(streams, 0.0)
    assert streams.requests == [after(2), after(2)]


def test_throttling_backs_off_exponentially_with_full_jitter_up_to_the_cap() -> None:
    streams = ScriptedStreams([ThrottledError("slow down")] * 8 + [Page([rec(1)], "i")])
    reader = make_reader(throttle_backoff_max_s=1.0)  # rng() == 1.0: the top of each window
    waits = []
    for _ in range(8):
        result = reader.read(streams, 0.0)
        assert result.throttled
        assert not reader.due(0.0)
        waits.append(round(reader.next_poll_at(), 3))
    assert waits == [0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert reader.read(streams, 5.0).events
    streams.pages = [ThrottledError("again")]
    reader.read(streams, 5.0)
    assert reader.next_poll_at() == pytest.approx(5.2), "a success resets the backoff"


def test_trimmed_data_under_fail_is_a_fatal_gap_naming_the_shard_and_position() -> None:
    streams = ScriptedStreams([], iterator_errors=[TrimmedDataError("trimmed")])
    reader = make_reader(checkpoint=f"{9:021d}")
    result = reader.read(streams, 0.0)
    assert result.gap is not None
    assert result.gap.fatal
    assert "orders shard shardId-1" in result.gap.description
    assert f"after checkpoint {9:021d}" in result.gap.description


def test_trimmed_data_under_skip_resumes_at_trim_horizon_keeping_the_version() -> None:
    streams = ScriptedStreams(
        [Page([rec(3)], "i"), TrimmedDataError("trimmed"), Page([rec(900)], "i")]
    )
    reader = make_reader(last_version=10, trimmed_policy=TrimmedPolicy.SKIP)
    before = reader.read(streams, 0.0).events[0].version
    result = reader.read(streams, 0.0)
    assert result.gap is not None
    assert not result.gap.fatal
    assert f"after sequence number {3:021d}" in result.gap.description
    resumed = reader.read(streams, 0.0)
    assert streams.requests[-1] == IteratorRequest(IteratorType.TRIM_HORIZON)
    assert resumed.events[0].version == before + 1


def test_shard_gone_is_a_gap_and_the_shard_drains_to_its_end() -> None:
    streams = ScriptedStreams([], iterator_errors=[ShardGoneError("ResourceNotFound")])
    reader = make_reader(checkpoint=f"{4:021d}", last_version=77, trimmed_policy="skip")
    result = reader.read(streams, 0.0)
    assert result.gap is not None
    assert not result.gap.fatal
    assert "no longer exists" in result.gap.description
    assert reader.finished()
    assert reader.version == 77


def test_shard_gone_under_fail_is_fatal() -> None:
    streams = ScriptedStreams([ShardGoneError("ResourceNotFound")])
    result = make_reader().read(streams, 0.0)
    assert result.gap is not None
    assert result.gap.fatal


def test_checkpoint_is_due_when_the_acked_position_moved_and_the_interval_passed() -> None:
    reader = make_reader()
    events = reader.read(ScriptedStreams([Page([rec(1), rec(2)], "i")]), 0.0).events
    ordinals = [reader.acks.sent(e.sequence_number, e.version) for e in events]
    assert reader.checkpoint_due(10.0, 1.0) is None
    reader.acks.delivered(ordinals[1], None)
    assert reader.checkpoint_due(10.0, 1.0) is None, "record 1 is still unacknowledged"
    reader.acks.delivered(ordinals[0], None)
    position = reader.checkpoint_due(10.0, 1.0)
    assert position is not None
    assert position.sequence_number == f"{2:021d}"
    reader.checkpointed(position, 10.0)
    assert reader.checkpoint_due(20.0, 1.0) is None
    assert reader.pending_checkpoint() is None


def test_a_timed_out_read_halves_the_page_and_successes_grow_it_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reader = make_reader(get_records_limit=1000)
    slow = TimedOutError("GetRecords: Read timeout")
    streams = ScriptedStreams([slow, slow, Page([rec(1)], "it"), *[Page([], "it")] * 10])
    first = reader.read(streams, 0.0)
    assert first.throttled  # backs off like throttling: the endpoint is overloaded
    reader.read(streams, 10.0)
    assert "next pages ask for 250 records" in caplog.text
    for step in range(11):
        reader.read(streams, 20.0 + step)
    assert streams.limits == [1000, 500, 250, 350, 450, 550, 650, 750, 850, 950, 1000, 1000, 1000]
    assert reader.page_limit == 1000


# -- the split between fetching (any thread) and applying (the loop) -------------------------


def test_a_shard_with_a_fetch_in_flight_is_not_due_and_refuses_a_second() -> None:
    reader = make_reader()
    request = reader.request()
    assert reader.fetching
    assert not reader.due(1e9)
    with pytest.raises(RuntimeError, match="already has a fetch in flight"):
        reader.request()
    reader.apply(fetch(ScriptedStreams([Page([], "i")]), request, lambda: 0.0), 0.0)
    assert not reader.fetching


def test_an_idle_shard_is_polled_again_counting_from_the_start_of_its_last_call() -> None:
    reader = make_reader()
    request = reader.request()
    clock = iter([10.0, 10.3])  # the call started at 10.0 and took 0.3 s
    fetched = fetch(ScriptedStreams([Page([], "i")]), request, lambda: next(clock))
    assert fetched.elapsed_s == pytest.approx(0.3)
    reader.apply(fetched, 10.3)
    assert reader.next_poll_at() == pytest.approx(10.05)


def test_a_throttled_read_keeps_the_iterator_it_had_just_acquired() -> None:
    streams = ScriptedStreams([ThrottledError("slow down"), Page([], "next")])
    reader = make_reader()
    reader.read(streams, 0.0)
    reader.read(streams, 100.0)
    assert len(streams.requests) == 1, "the fresh iterator was used, not re-acquired"


def test_a_request_asks_for_the_smaller_of_its_share_and_the_readers_own_limit() -> None:
    reader = make_reader(get_records_limit=1000)
    request = reader.request(limit=128)
    assert request.limit == 128
    reader.apply(fetch(ScriptedStreams([TimedOutError("slow")]), request, lambda: 0.0), 0.0)
    assert reader.page_limit == 500
    assert reader.request(limit=800).limit == 500


def test_a_reader_knows_how_many_records_its_last_page_held() -> None:
    streams = ScriptedStreams([Page([rec(1), rec(2)], "i"), Page([], "i")])
    reader = make_reader()
    assert reader.last_records is None
    reader.read(streams, 0.0)
    assert reader.last_records == 2
    reader.read(streams, 0.0)
    assert reader.last_records == 0


def test_a_shard_has_data_until_a_page_comes_back_empty() -> None:
    streams = ScriptedStreams([Page([rec(1)], "i"), Page([], "i"), Page([rec(2)], None)])
    reader = make_reader()
    assert reader.has_data
    reader.read(streams, 0.0)
    assert reader.has_data
    reader.read(streams, 0.0)
    assert not reader.has_data
    reader.read(streams, 1.0)
    assert not reader.has_data, "a closed shard has nothing more to fetch"
