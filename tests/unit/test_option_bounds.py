"""Timeouts, retry delays and jitter: NaN, infinities, negative values and values past
``MAX_SECONDS`` are refused at decoration, naming the argument and showing the value
(issue 12, item 7). Such values used to be accepted and to leave runs Pending, Running."""

from __future__ import annotations

import math
from datetime import timedelta
from typing import Any

import pytest

import wfkit
from wfkit._options import MAX_JITTER_FACTOR, MAX_SECONDS
from wfkit.exceptions import ConfigurationError

BAD_SECONDS = [math.nan, math.inf, -math.inf, -1, -0.5, MAX_SECONDS * 1.01, 1e12, 1e308]


def body() -> None:
    return None


def expect_refused(argument: str, shown: str, **options: Any) -> None:
    for decorate in (wfkit.task, wfkit.flow):
        with pytest.raises(ConfigurationError) as info:
            decorate(**options)(body)
        message = str(info.value)
        assert message.startswith(f"{argument}={shown} is invalid for @"), message
        assert "from 0 to" in message


@pytest.mark.parametrize("value", BAD_SECONDS, ids=repr)
def test_timeout_seconds_out_of_bounds_is_refused(value: float) -> None:
    expect_refused("timeout_seconds", repr(value), timeout_seconds=value)


@pytest.mark.parametrize("value", BAD_SECONDS, ids=repr)
def test_a_retry_delay_out_of_bounds_is_refused(value: float) -> None:
    expect_refused("retry_delay_seconds", repr(value), retry_delay_seconds=value)


def test_a_timedelta_past_the_bound_is_refused() -> None:
    too_long = timedelta(days=200)
    expect_refused("timeout_seconds", repr(too_long), timeout_seconds=too_long)


@pytest.mark.parametrize("value", BAD_SECONDS, ids=repr)
def test_a_delay_in_a_list_out_of_bounds_is_refused_with_its_index(value: float) -> None:
    with pytest.raises(ConfigurationError) as info:
        wfkit.task(retries=2, retry_delay_seconds=[1, value])(body)
    assert str(info.value).startswith(f"retry_delay_seconds[1]={value!r} is invalid")


@pytest.mark.parametrize("value", [math.nan, math.inf, -1, MAX_JITTER_FACTOR + 1, 1e308])
def test_retry_jitter_factor_out_of_bounds_is_refused(value: float) -> None:
    with pytest.raises(ConfigurationError) as info:
        wfkit.task(retry_jitter_factor=value)(body)
    assert str(info.value).startswith(f"retry_jitter_factor={value!r} is invalid")


@pytest.mark.parametrize("value", [math.nan, math.inf, -1.0])
def test_cache_expiration_must_be_finite(value: float) -> None:
    with pytest.raises(ConfigurationError, match="cache_expiration="):
        wfkit.task(cache_expiration=value)(body)


def test_the_bounds_themselves_are_accepted() -> None:
    t = wfkit.task(
        retries=1,
        timeout_seconds=MAX_SECONDS,
        retry_delay_seconds=[0, MAX_SECONDS],
        retry_jitter_factor=MAX_JITTER_FACTOR,
        cache_expiration=timedelta(days=3650),
    )(body)
    f = wfkit.flow(timeout_seconds=MAX_SECONDS, retry_delay_seconds=MAX_SECONDS)(body)
    assert t.options.timeout_seconds == f.options.timeout_seconds == MAX_SECONDS
    assert t.options.retry_delay_seconds == (0.0, MAX_SECONDS)
