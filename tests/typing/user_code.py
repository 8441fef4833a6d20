"""Typical user code, checked by mypy --strict (test_mypy.py) and pyright --strict
(test_pyright.py).

Each ``assert_type`` is a claim about wfkit's types. test_user_code_runs.py also runs this
module, with an ``assert_type`` that checks the value's class, so the claims hold at run time.

A line that must be a type error says so for each checker: ``# type: ignore[<code>]`` for
mypy and ``# pyright: ignore[<rule>]`` for pyright (which is told to read only its own
comments). Both checkers report an ignore that is not needed, so a line that stops being an
error fails the test. Such lines sit under ``if TYPE_CHECKING:``: checked, never run.

Not collected by pytest: its name does not start with ``test_``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Generator
from datetime import timedelta
from typing import TYPE_CHECKING, Any, assert_type

from wfkit import Flow, State, Task, flow, task, unmapped
from wfkit.cache_policies import INPUTS
from wfkit.futures import WfFuture, WfFutureList
from wfkit.task_runners import ThreadPoolTaskRunner
from wfkit.tasks import exponential_backoff


# -- tasks: bare and with options ------------------------------------------------------------
@task
def add(x: int, y: int) -> int:
    return x + y


@task(name="subtract", retries=2, retry_delay_seconds=[1, 2.5], tags=["math"])
def sub(x: int, y: int = 0) -> int:
    return x - y


@task
async def fetch(url: str) -> bytes:
    return url.encode()


@task(timeout_seconds=timedelta(seconds=5))
async def slow_fetch(url: str) -> bytes:
    return url.encode()


@task
def count_up(n: int) -> Generator[int, None, None]:
    yield from range(n)


def on_done(task: Task[..., Any], run: Any, state: State[Any]) -> None:
    """A state hook."""


@task(
    retries=3,
    retry_delay_seconds=exponential_backoff(10),
    retry_jitter_factor=0.5,
    retry_condition_fn=lambda task, run, state: True,
    cache_policy=INPUTS,
    cache_expiration=timedelta(days=1),
    result_serializer="json",
    task_run_name="double-{x}",
    on_completion=[on_done],
    on_failure=[on_done],
)
def double(x: int) -> int:
    return 2 * x


# A task's type has its function's parameters and return type.
typed_add: Task[[int, int], int] = add
typed_sub: Task[[int, int], int] = sub
typed_fetch: Task[[str], Coroutine[Any, Any, bytes]] = fetch
typed_slow_fetch: Task[[str], Coroutine[Any, Any, bytes]] = slow_fetch
if TYPE_CHECKING:
    wrong_parameters: Task[[str, int], int] = add  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]
    wrong_return: Task[[int, int], str] = add  # type: ignore[assignment]  # pyright: ignore[reportAssignmentType]

# Options are typed.
if TYPE_CHECKING:
    task(retries="3")  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
    task(retires=3)  # type: ignore[call-overload]  # pyright: ignore[reportCallIssue]
    task(result_serializer="yaml")  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
    task(on_completion=on_done)  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
    task(cache_policy="inputs")  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]

# .fn is the function itself.
assert_type(add.fn(1, 2), int)
plain: Callable[[int, int], int] = add.fn
if TYPE_CHECKING:
    add.fn("1", 2)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]

# .with_options keeps the task's type and checks the options.
renamed: Task[[int, int], int] = add.with_options(name="adder", retries=1, tags={"a"})
assert_type(add.with_options(timeout_seconds=1.5)(1, 2), int)
if TYPE_CHECKING:
    add.with_options(retries="1")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    add.with_options(nmae="adder")  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]


# -- calling tasks -----------------------------------------------------------------------------
def call_tasks() -> None:
    assert_type(add(1, 2), int)
    assert_type(add(1, y=2), int)
    assert_type(sub(5), int)
    assert_type(add(1, 2, return_state=True), State[int])
    assert_type(add(1, 2, return_state=True).result(), int)
    assert_type(add(1, 2, return_state=False), int)
    assert_type(add(1, 2, wait_for=[]), int)
    assert_type(double(4), int)
    assert_type(count_up(3), Generator[int, None, None])
    flag = add.fn(1, 1) == 2
    assert_type(add(1, 2, return_state=flag), int | State[int])
    # A generator streams to its caller: return_state does not apply to it.
    assert_type(count_up(3, return_state=True), Generator[int, None, None])
    if TYPE_CHECKING:
        add("x", 2)  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
        add(1)  # type: ignore[call-overload]  # pyright: ignore[reportCallIssue]
        add(1, 2, z=3)  # type: ignore[call-overload]  # pyright: ignore[reportCallIssue]


@flow
def submit_and_map() -> list[int]:
    future = add.submit(1, 2)
    assert_type(future, WfFuture[int])
    assert_type(future.result(), int)
    assert_type(add.submit(1, 2, wait_for=[future]), WfFuture[int])
    mapped = add.map([1, 2], unmapped(10))
    assert_type(mapped, WfFutureList[int])
    assert_type(mapped.result(), list[int])
    assert_type(fetch.submit("a"), WfFuture[bytes])
    assert_type(fetch.map(["a", "b"]), WfFutureList[bytes])
    if TYPE_CHECKING:
        add.submit("x", 2)  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
        # A known limit: a future passed for a value is resolved at run time, but P cannot
        # say so (a call with wait_for= is not checked, as with return_state=).
        add.submit(future, 1)  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
    return mapped.result()


async def call_async_tasks() -> None:
    coroutine = fetch("a")
    _ = assert_type(coroutine, Coroutine[Any, Any, bytes])  # (a coroutine must be used)
    assert_type(await coroutine, bytes)
    assert_type(await fetch("a", return_state=True), State[bytes])
    assert_type((await fetch("a", return_state=True)).result(), bytes)
    assert_type(await fetch("a", return_state=bool(coroutine)), bytes | State[bytes])
    assert_type(await slow_fetch.with_options(retries=1)("a"), bytes)
    if TYPE_CHECKING:
        await fetch(1)  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]


# -- flows -------------------------------------------------------------------------------------
@flow
def pipeline(n: int) -> int:
    return add(n, n)


@flow(
    name="nightly",
    retries=1,
    retry_delay_seconds=30,
    flow_run_name="nightly-{day}",
    task_runner=ThreadPoolTaskRunner(max_workers=2),
    on_failure=[lambda flow, run, state: None],
)
def nightly(day: str) -> str:
    return day


@flow(task_runner=ThreadPoolTaskRunner, validate_parameters=False, log_prints=True)
async def async_pipeline(n: int) -> int:
    data = await fetch.with_options(name="f")(str(n))
    return len(data)


typed_pipeline: Flow[[int], int] = pipeline
typed_nightly: Flow[[str], str] = nightly
typed_async: Flow[[int], Coroutine[Any, Any, int]] = async_pipeline
renamed_flow: Flow[[str], str] = nightly.with_options(retries=0)
if TYPE_CHECKING:
    flow(retries=1.5)  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
    flow(task_runner="threads")  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
    flow(flow_run_name=42)  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
    nightly.with_options(validate_parameters=None)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]


def run_flows() -> None:
    assert_type(pipeline(1), int)
    assert_type(pipeline(1, return_state=True), State[int])
    assert_type(pipeline(1, return_state=bool(typed_pipeline)), int | State[int])
    assert_type(pipeline.fn(1), int)
    assert_type(nightly("mon"), str)
    assert_type(asyncio.run(async_pipeline(1)), int)
    assert_type(asyncio.run(async_pipeline(1, return_state=True)), State[int])
    assert_type(submit_and_map(), list[int])
    if TYPE_CHECKING:
        pipeline("1")  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]


# -- methods -----------------------------------------------------------------------------------
class Loader:
    def __init__(self, base: int) -> None:
        self.base = base

    @task
    def load(self, x: int) -> int:
        return self.base + x

    @flow
    def run(self, x: int) -> int:
        return self.load(x)

    @task
    @classmethod
    def make(cls, base: int) -> str:
        return f"{cls.__name__}({base})"

    @task
    @staticmethod
    def scale(x: int) -> int:
        return 2 * x


def call_methods() -> None:
    loader = Loader(1)
    assert_type(loader.load(2), int)
    assert_type(loader.load(2, return_state=True), State[int])
    assert_type(loader.run(2), int)
    assert_type(loader.load.with_options(name="l")(2), int)
    assert_type(Loader.make(3), str)
    assert_type(loader.make(3), str)
    if TYPE_CHECKING:
        loader.load("2")  # type: ignore[call-overload]  # pyright: ignore[reportArgumentType]
    # mypy binds a method's first parameter by its position alone (it does not check the
    # type of a Concatenate prefix), so through a class it binds self, and it binds a
    # staticmethod's first parameter; pyright gets these right.
    assert_type(Loader.load(loader, 2), int)  # type: ignore[call-overload, assert-type]
    assert_type(Loader.scale(2), int)  # type: ignore[call-overload, assert-type]
    assert_type(loader.scale(2), int)  # type: ignore[call-overload, assert-type]


# -- states ------------------------------------------------------------------------------------
def read_state(state: State[int], untyped: State) -> None:  # a bare State is State[Any]
    assert_type(state.result(), int)
    assert_type(state.result(raise_on_failure=False), int | BaseException)
    assert_type(state.data, int | None)
    assert_type(state.copy(), State[int])
    assert_type(untyped.result(), Any)
