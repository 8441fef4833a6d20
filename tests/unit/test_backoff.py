"""``exponential_backoff`` and how retry delay settings resolve into a schedule."""

from __future__ import annotations

import pytest

from wfkit import task
from wfkit.exceptions import ConfigurationError
from wfkit.tasks import exponential_backoff, retry_delay_schedule


def body() -> None:
    pass


def test_exponential_backoff_doubles_from_the_factor() -> None:
    assert exponential_backoff(10)(4) == [10.0, 20.0, 40.0, 80.0]


def test_exponential_backoff_with_zero_retries_is_empty() -> None:
    assert exponential_backoff(10)(0) == []


def test_exponential_backoff_of_zero_never_waits() -> None:
    assert exponential_backoff(0)(3) == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("factor", [-1, "10", None])
def test_exponential_backoff_rejects_bad_factors_naming_them(factor: object) -> None:
    with pytest.raises(ConfigurationError) as info:
        exponential_backoff(factor)  # type: ignore[arg-type]

    assert f"backoff_factor={factor!r}" in str(info.value)


def test_exponential_backoff_is_accepted_as_retry_delay() -> None:
    decorated = task(retries=3, retry_delay_seconds=exponential_backoff(10))(body)

    delay = decorated.retry_delays()
    assert [delay(n) for n in (1, 2, 3)] == [10.0, 20.0, 40.0]


def test_number_schedule_is_constant() -> None:
    delay = retry_delay_schedule(5.0, 3, "t")

    assert [delay(n) for n in (1, 2, 3)] == [5.0, 5.0, 5.0]


def test_list_schedule_repeats_its_last_value() -> None:
    delay = retry_delay_schedule((1.0, 2.0), 4, "t")

    assert [delay(n) for n in (1, 2, 3, 4)] == [1.0, 2.0, 2.0, 2.0]


def test_callable_schedule_may_return_a_number() -> None:
    delay = retry_delay_schedule(lambda retries: 7, 2, "t")

    assert [delay(1), delay(2)] == [7.0, 7.0]


def test_callable_schedule_returning_garbage_names_the_task() -> None:
    delay = retry_delay_schedule(lambda retries: "soon", 2, "flaky")

    with pytest.raises(ConfigurationError) as info:
        delay(1)  # (checked when the first retry is due, so that it fails that run)

    assert "'flaky'" in str(info.value)
    assert "'soon'" in str(info.value)
