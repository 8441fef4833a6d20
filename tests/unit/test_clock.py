"""FakeClock: time that moves only when told to."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from wfkit.clock import Clock, FakeClock, SystemClock, parse_start

START = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock("2026-01-01T00:00:00Z")


def test_fake_and_system_clocks_satisfy_the_protocol(clock: FakeClock) -> None:
    assert isinstance(clock, Clock)
    assert isinstance(SystemClock(), Clock)


def test_the_clock_protocol_is_only_what_a_clock_is() -> None:
    # Timelines and deadlines are the fake clock's own business, not every clock's.
    members = {name for name in vars(Clock) if not name.startswith("_")}
    assert members == {"now", "monotonic", "sleep", "asleep"}
    for extra in ("branch", "catch_up", "virtual", "deadline"):
        assert not hasattr(SystemClock(), extra)


def test_a_minimal_clock_satisfies_the_protocol() -> None:
    class Minimal:
        def now(self): ...
        def monotonic(self): ...
        def sleep(self, seconds): ...
        async def asleep(self, seconds): ...

    assert isinstance(Minimal(), Clock)


def test_time_stands_still(clock: FakeClock) -> None:
    assert clock.now() == START
    assert clock.now() == START
    assert clock.elapsed == 0.0
    assert clock.monotonic() == 0.0
    assert clock.sleeps == []


def test_advance_by_seconds_and_timedelta(clock: FakeClock) -> None:
    clock.advance(1.5)
    clock.advance(timedelta(minutes=1))

    assert clock.elapsed == 61.5
    assert clock.monotonic() == 61.5
    assert clock.now() == START + timedelta(seconds=61.5)
    assert clock.sleeps == []  # advancing is not sleeping


def test_advance_zero_is_allowed(clock: FakeClock) -> None:
    clock.advance(0)

    assert clock.elapsed == 0.0


def test_advance_backwards_names_the_value_and_what_to_do(clock: FakeClock) -> None:
    with pytest.raises(ValueError) as info:
        clock.advance(-1)

    message = str(info.value)
    assert "-1" in message
    assert "backwards" in message
    assert "non-negative" in message or "move_to" in message
    assert clock.elapsed == 0.0


@pytest.mark.parametrize("bad", ["5", None, True])
def test_advance_rejects_non_numbers(clock: FakeClock, bad: object) -> None:
    with pytest.raises(TypeError, match=repr(bad)):
        clock.advance(bad)  # type: ignore[arg-type]


def test_move_to_datetime_and_string(clock: FakeClock) -> None:
    clock.move_to(START + timedelta(hours=1))
    assert clock.elapsed == 3600.0

    clock.move_to("2026-01-01T02:00:00Z")
    assert clock.elapsed == 7200.0
    assert clock.now() == datetime(2026, 1, 1, 2, tzinfo=UTC)


def test_move_to_the_current_time_is_allowed(clock: FakeClock) -> None:
    clock.move_to(START)

    assert clock.elapsed == 0.0


def test_move_to_the_past_is_an_error_naming_the_value(clock: FakeClock) -> None:
    clock.advance(60)
    past = "2026-01-01T00:00:30Z"

    with pytest.raises(ValueError) as info:
        clock.move_to(past)

    message = str(info.value)
    assert past in message
    assert "backwards" in message
    assert "later time" in message
    assert clock.elapsed == 60.0


def test_sleep_records_and_moves_time_without_waiting(clock: FakeClock) -> None:
    clock.sleep(60)
    clock.sleep(0.5)
    clock.sleep(0)

    assert clock.sleeps == [60.0, 0.5, 0.0]
    assert clock.elapsed == 60.5
    assert clock.now() == START + timedelta(seconds=60.5)


def test_async_sleep_records_and_moves_time(clock: FakeClock) -> None:
    asyncio.run(clock.asleep(3))

    assert clock.sleeps == [3.0]
    assert clock.elapsed == 3.0


def test_elapsed_counts_sleeps_and_advances(clock: FakeClock) -> None:
    clock.sleep(10)
    clock.advance(5)

    assert clock.elapsed == 15.0
    assert clock.sleeps == [10.0]


def test_start_from_iso_string_with_z() -> None:
    assert FakeClock("2026-03-04T05:06:07Z").now() == datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def test_start_from_string_with_offset_is_converted_to_utc() -> None:
    clock = FakeClock("2026-01-01T02:00:00+02:00")

    assert clock.now() == START
    assert clock.now().utcoffset() == timedelta(0)


def test_start_from_naive_datetime_is_taken_as_utc() -> None:
    assert FakeClock(datetime(2026, 1, 1)).now() == START


def test_start_from_aware_datetime() -> None:
    assert FakeClock(START).start == START


def test_start_none_is_now() -> None:
    before = datetime.now(UTC)
    clock = FakeClock()
    after = datetime.now(UTC)

    assert before <= clock.now() <= after


def test_bad_start_string_names_the_value_and_an_example() -> None:
    with pytest.raises(ValueError) as info:
        FakeClock("yesterday")

    assert "'yesterday'" in str(info.value)
    assert "2026-01-01T00:00:00Z" in str(info.value)


def test_bad_start_type_names_the_value() -> None:
    with pytest.raises(TypeError, match="12345"):
        parse_start(12345)  # type: ignore[arg-type]


def test_now_is_timezone_aware_utc(clock: FakeClock) -> None:
    assert clock.now().tzinfo is not None
    assert clock.now().utcoffset() == timedelta(0)


def test_repr_shows_time_and_elapsed(clock: FakeClock) -> None:
    clock.advance(2)

    assert "2026-01-01T00:00:02" in repr(clock)
    assert "elapsed=2s" in repr(clock)


def test_negative_sleep_is_refused_like_time_sleep():
    import time

    clock = FakeClock()
    with pytest.raises(ValueError, match="sleep length must be non-negative"):
        time.sleep(-1)  # the behaviour being mirrored
    with pytest.raises(ValueError, match=r"sleep length must be non-negative; got seconds=-1"):
        clock.sleep(-1)
    assert clock.sleeps == [] and clock.elapsed == 0
