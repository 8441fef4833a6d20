"""The drivers' invariant: once started, a run reaches a final state, whatever fails inside
the engine; when the failure is wfkit's own the run is Crashed with the traceback in its
message, and the caller gets the error (issue 12, item 7).

Faults are injected at every effect the lifecycle yields, through the real drivers:

- *thrown into the lifecycle* at its k-th effect, as a driver does with an effect that
  failed (the lifecycle's own ``calls.lifecycle`` is wrapped; everything else is real);
- *raised by a plugin* on the k-th state change it hears of (publishing a state fails:
  a broken store writer).
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Generator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import wfkit
from wfkit import hookimpl
from wfkit._engine import calls
from wfkit._engine.lifecycle import lifecycle
from wfkit._plugins import unregister_plugin
from wfkit.cache_policies import INPUTS
from wfkit.exceptions import ConfigurationError
from wfkit.testing import harness


class InjectedFault(Exception):
    """The error the tests inject (an Exception: wfkit's own kind of failure)."""


def faulty(steps: Generator[Any, Any, Any], k: int) -> Generator[Any, Any, Any]:
    """``steps`` (a lifecycle), except that carrying out its ``k``-th effect (0-based) fails:
    the fault is thrown into it instead of the driver carrying the effect out."""
    send: Any = None
    throw: BaseException | None = None
    index = 0
    while True:
        try:
            effect = steps.throw(throw) if throw is not None else steps.send(send)
        except StopIteration as stop:
            return stop.value
        send, throw = None, None
        if index == k:
            throw = InjectedFault(f"injected at effect {k}: {type(effect).__name__}")
        else:
            try:
                send = yield effect
            except BaseException as exc:  # the driver's own reply
                throw = exc
        index += 1


class Config:
    """One flow or task: how it is called and what it does."""

    def __init__(self, draw: Any) -> None:
        self.kind = draw(st.sampled_from(["flow", "task"]))
        self.is_async = draw(st.booleans())
        self.failures = draw(st.integers(0, 2))
        self.retries = draw(st.integers(0, 2))
        self.hooks = draw(st.booleans())
        self.cached = self.kind == "task" and draw(st.booleans())

    def __repr__(self) -> str:
        return f"Config({vars(self)})"

    def build(self) -> Any:
        failures = self.failures
        calls_made = [0]

        def body(x: int) -> int:
            calls_made[0] += 1
            if calls_made[0] <= failures:
                raise ValueError(f"failure {calls_made[0]}")
            return x * 2

        async def async_body(x: int) -> int:
            return body(x)

        options: dict[str, Any] = {"retries": self.retries, "retry_delay_seconds": 5}
        if self.hooks:
            options["on_completion"] = [lambda *_: None]
            options["on_failure"] = [lambda *_: None]
        if self.cached:
            options["cache_policy"] = INPUTS
        fn = async_body if self.is_async else body
        decorate = wfkit.flow if self.kind == "flow" else wfkit.task
        return decorate(name="target", **options)(fn)

    def call(self, target: Any) -> Any:
        if self.is_async:
            return asyncio.run(target(21, return_state=True))
        return target(21, return_state=True)


@st.composite
def a_config(draw: Any) -> Config:
    return Config(draw)


def the_run(h: Any, kind: str) -> Any:
    runs = h.flow_runs() if kind == "flow" else h.task_runs()
    assert len(runs) == 1, runs
    return runs[0]


def check_outcome(h: Any, config: Config, raised: BaseException | None) -> None:
    run = the_run(h, config.kind)
    assert run.state.is_final(), f"left in {run.state_names}"
    if raised is not None:  # the fault escaped the lifecycle: wfkit's own failure
        assert isinstance(raised, InjectedFault), raised
        if run.state.name == "Crashed":
            assert "InjectedFault" in run.state.message
            assert "Traceback" in run.state.message
        else:  # the fault came after the run's outcome (its last log line, a hook)
            assert "Crashed" not in run.state_names


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=a_config(), k=st.integers(0, 30))
def test_a_fault_at_any_effect_leaves_the_run_final(config: Config, k: int) -> None:
    target = config.build()
    raised: BaseException | None = None
    with pytest.MonkeyPatch.context() as patch, harness(freeze=False) as h:
        patch.setattr(calls, "lifecycle", lambda plan, rng: faulty(lifecycle(plan, rng), k))
        try:
            config.call(target)
        except InjectedFault as exc:
            raised = exc
        check_outcome(h, config, raised)


class InjectedInterrupt(BaseException):
    """An interrupt landing while a state is published (plugins' Exceptions are isolated
    and logged; an interrupt is not)."""


class InterruptingPlugin:
    """A plugin whose ``k``-th state change (0-based) raises :class:`InjectedInterrupt`."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.seen = 0

    def _heard(self) -> None:
        self.seen += 1
        if self.seen - 1 == self.k:
            raise InjectedInterrupt(f"interrupted at state change {self.k}")

    @hookimpl(tryfirst=True)
    def wfkit_flow_run_state_changed(self, flow_run: Any, old_state: Any, new_state: Any) -> None:
        self._heard()

    @hookimpl(tryfirst=True)
    def wfkit_task_run_state_changed(self, task_run: Any, old_state: Any, new_state: Any) -> None:
        self._heard()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(config=a_config(), k=st.integers(0, 12))
def test_an_interrupt_while_publishing_leaves_the_run_final(config: Config, k: int) -> None:
    target = config.build()
    plugin = InterruptingPlugin(k)
    wfkit.register_plugin(plugin)
    try:
        with harness(freeze=False) as h:
            raised: BaseException | None = None
            try:
                config.call(target)
            except InjectedInterrupt as exc:
                raised = exc
            runs = h.flow_runs() if config.kind == "flow" else h.task_runs()
    finally:
        unregister_plugin(plugin)
    if k == 0:  # Pending, published by the caller before any driver runs: the run was
        # never recorded (the interrupt came before the store writer heard of it)
        assert raised is not None and runs == []
        return
    (run,) = runs
    assert run.state.is_final(), f"left in {run.state_names}"
    if raised is not None:
        assert run.state.name == "Crashed", run.state_names
        assert run.state.message.startswith(f"{config.kind.title()} run crashed by an interrupt")


def test_a_crash_names_the_error_and_the_caller_gets_it() -> None:
    @wfkit.task(retries=1, retry_delay_seconds=1)
    def flaky() -> None:
        raise ValueError("body")

    with pytest.MonkeyPatch.context() as patch, harness(freeze=False) as h:
        # The 4th effect of a failing run with a retry: Pending is set by the caller, then
        # Running, Invoke, Log (the retry line), Now -- the fault replaces Now's reply.
        patch.setattr(calls, "lifecycle", lambda plan, rng: faulty(lifecycle(plan, rng), 3))
        with pytest.raises(InjectedFault, match="effect 3: Now"):
            flaky()
        run = h.task_run(flaky)
    assert run.state_names == ["Pending", "Running", "Crashed"]
    assert run.state.message.startswith("Task run crashed inside wfkit: InjectedFault")
    assert "Traceback (most recent call last)" in run.state.message


def test_retry_delay_nan_from_a_callable_fails_the_run_saying_why() -> None:
    @wfkit.task(retries=2, retry_delay_seconds=lambda retries: [math.nan] * retries)
    def flaky() -> None:
        raise ValueError("body")

    with harness(freeze=False) as h:
        with pytest.raises(ConfigurationError, match="nan"):
            flaky()
        run = h.task_run(flaky)
    assert run.state_names == ["Pending", "Running", "Failed"]
    assert "retry_delay_seconds(retries)[0]=nan" in run.state.message
    assert "not retried" in run.state.message
