"""Generator flows and tasks stream their values (SPEC §3.1)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from wfkit import flow, task
from wfkit.context import Runtime

from ._support import only_run


class Boom(Exception):
    pass


def make_generator(
    is_async: bool, kind: str, *, fail_after: int | None = None, log: list[str] | None = None
) -> Any:
    """A generator flow/task yielding 0..n-1; it raises Boom after ``fail_after`` values."""
    decorator = flow if kind == "flow" else task
    events = log if log is not None else []
    if is_async:

        async def agen(n: int) -> AsyncIterator[int]:
            try:
                for i in range(n):
                    if fail_after is not None and i == fail_after:
                        raise Boom(f"after {i}")
                    events.append(f"yield {i}")
                    yield i
                    await asyncio.sleep(0)
            finally:
                events.append("closed")

        return decorator(agen)

    def gen(n: int) -> Iterator[int]:
        try:
            for i in range(n):
                if fail_after is not None and i == fail_after:
                    raise Boom(f"after {i}")
                events.append(f"yield {i}")
                yield i
        finally:
            events.append("closed")

    return decorator(gen)


def consume(is_async: bool, decorated: Any, *args: Any, stop_after: int | None = None) -> list[Any]:
    """Collect the streamed values; stop (and close the stream) after ``stop_after`` values."""
    if not is_async:
        values: list[Any] = []
        stream = decorated(*args)
        try:
            for value in stream:
                values.append(value)
                if stop_after is not None and len(values) == stop_after:
                    break
        finally:
            stream.close()
        return values

    async def collect() -> list[Any]:
        got: list[Any] = []
        stream = decorated(*args)
        try:
            async for value in stream:
                got.append(value)
                if stop_after is not None and len(got) == stop_after:
                    break
        finally:
            await stream.aclose()
        return got

    return asyncio.run(collect())


def test_values_stream_and_the_run_completes(runtime: Runtime, mode: Any, kind: str) -> None:
    decorated = make_generator(mode.is_async, kind)

    assert consume(mode.is_async, decorated, 3) == [0, 1, 2]

    run = only_run(runtime, kind)
    assert run.state_names == ["Pending", "Running", "Completed"]
    assert run.parameters == {"n": 3}


def test_values_arrive_one_at_a_time(runtime: Runtime, kind: str) -> None:
    log: list[str] = []
    stream = make_generator(False, kind, log=log)(3)

    assert next(stream) == 0
    assert log == ["yield 0"]
    assert only_run(runtime, kind).state_names == ["Pending", "Running"]

    assert list(stream) == [1, 2]
    assert only_run(runtime, kind).state_names == ["Pending", "Running", "Completed"]


def test_consumer_stopping_early_completes_the_run(runtime: Runtime, mode: Any, kind: str) -> None:
    log: list[str] = []
    decorated = make_generator(mode.is_async, kind, log=log)

    assert consume(mode.is_async, decorated, 10, stop_after=2) == [0, 1]

    assert log == ["yield 0", "yield 1", "closed"]
    assert only_run(runtime, kind).state_names == ["Pending", "Running", "Completed"]


def test_generator_raising_fails_the_run_and_reaches_the_consumer(
    runtime: Runtime, mode: Any, kind: str
) -> None:
    decorated = make_generator(mode.is_async, kind, fail_after=2)
    received: list[int] = []

    with pytest.raises(Boom, match="after 2"):
        if mode.is_async:

            async def collect() -> None:
                async for value in decorated(5):
                    received.append(value)

            asyncio.run(collect())
        else:
            for value in decorated(5):
                received.append(value)

    assert received == [0, 1]
    run = only_run(runtime, kind)
    assert run.state_names == ["Pending", "Running", "Failed"]
    assert isinstance(run.state.exception, Boom)


def test_generator_that_streamed_is_not_retried(runtime: Runtime, mode: Any, kind: str) -> None:
    decorated = make_generator(mode.is_async, kind, fail_after=1)
    decorated = decorated.with_options(retries=2)

    with pytest.raises(Boom):
        consume(mode.is_async, decorated, 3)

    run = only_run(runtime, kind)
    assert run.state_names == ["Pending", "Running", "Failed"]
    assert run.run_count == 1


def test_generator_failing_before_its_first_value_is_retried(
    runtime: Runtime, mode: Any, kind: str
) -> None:
    attempts: list[int] = []
    decorator = flow if kind == "flow" else task

    if mode.is_async:

        async def agen() -> AsyncIterator[str]:
            attempts.append(1)
            if len(attempts) == 1:
                raise Boom("not yet")
            yield "value"

        decorated = decorator(agen, retries=1)
    else:

        def gen() -> Iterator[str]:
            attempts.append(1)
            if len(attempts) == 1:
                raise Boom("not yet")
            yield "value"

        decorated = decorator(gen, retries=1)

    assert consume(mode.is_async, decorated) == ["value"]

    assert only_run(runtime, kind).state_names == [
        "Pending",
        "Running",
        "AwaitingRetry",
        "Retrying",
        "Completed",
    ]


def test_generator_task_inside_a_flow(runtime: Runtime) -> None:
    numbers = make_generator(False, "task")

    @flow
    def total() -> int:
        return sum(numbers(4))

    assert total() == 6

    [task_run] = runtime.store.task_runs()
    assert task_run.state_names == ["Pending", "Running", "Completed"]
    assert task_run.flow_run_id == only_run(runtime, "flow").id


def test_empty_generator_completes(runtime: Runtime, mode: Any, kind: str) -> None:
    assert consume(mode.is_async, make_generator(mode.is_async, kind), 0) == []

    assert only_run(runtime, kind).state_names == ["Pending", "Running", "Completed"]


def test_generator_timeout_covers_the_time_inside_the_generator(
    runtime: Runtime, mode: Any, kind: str
) -> None:
    from wfkit.context import current_clock
    from wfkit.exceptions import FlowRunTimeoutError, TaskRunTimeoutError

    decorator = flow if kind == "flow" else task
    if mode.is_async:

        async def agen() -> AsyncIterator[int]:
            yield 1
            await current_clock().asleep(5)
            yield 2

        decorated = decorator(agen, timeout_seconds=1)
    else:

        def gen() -> Iterator[int]:
            yield 1
            current_clock().sleep(5)
            yield 2

        decorated = decorator(gen, timeout_seconds=1)
    received: list[int] = []

    async def collect() -> None:
        async for value in decorated():
            received.append(value)

    with pytest.raises(FlowRunTimeoutError if kind == "flow" else TaskRunTimeoutError):
        if mode.is_async:
            asyncio.run(collect())
        else:
            received.extend(decorated())  # type: ignore[arg-type]

    assert runtime.clock.elapsed == 1.0
    assert only_run(runtime, kind).state_names == ["Pending", "Running", "TimedOut"]
