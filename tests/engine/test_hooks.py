"""State hooks: ``hook(flow_or_task, run, state)``; a failing hook never changes the run."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from wfkit import flow, task
from wfkit.context import Runtime

from ._support import flaky, only_run


class Recorder:
    """Hooks that record their calls: ``(hook label, owner, run snapshot, state)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any, Any, Any]] = []

    def hook(self, label: str, *, is_async: bool = False) -> Any:
        if is_async:

            async def async_hook(owner: Any, run: Any, state: Any) -> None:
                self.calls.append((label, owner, run, state))

            return async_hook

        def hook(owner: Any, run: Any, state: Any) -> None:
            self.calls.append((label, owner, run, state))

        return hook

    @property
    def labels(self) -> list[str]:
        return [c[0] for c in self.calls]

    @property
    def state_names(self) -> list[str]:
        return [c[3].name for c in self.calls]


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


HOOK_FLAVOURS = [pytest.param(False, id="sync-hooks"), pytest.param(True, id="async-hooks")]


@pytest.mark.parametrize("async_hooks", HOOK_FLAVOURS)
def test_on_completion_gets_owner_run_and_state(
    runtime: Runtime, mode: Any, kind: str, recorder: Recorder, async_hooks: bool
) -> None:
    decorated = mode.make(
        kind, lambda: 3, on_completion=[recorder.hook("completion", is_async=async_hooks)]
    )

    assert mode.call(decorated) == 3

    [(label, owner, run, state)] = recorder.calls
    record = only_run(runtime, kind)
    assert label == "completion"
    assert owner is decorated
    assert run.id == record.id
    assert run.name == record.name
    assert state.name == "Completed"
    assert state.result() == 3
    assert state == record.state


@pytest.mark.parametrize("async_hooks", HOOK_FLAVOURS)
def test_on_failure_gets_the_failed_state(
    runtime: Runtime, mode: Any, kind: str, recorder: Recorder, async_hooks: bool
) -> None:
    decorated = mode.make(
        kind,
        flaky(failures=1),
        on_failure=[recorder.hook("failure", is_async=async_hooks)],
        on_completion=[recorder.hook("completion", is_async=async_hooks)],
    )

    with pytest.raises(ValueError):
        mode.call(decorated)

    [(label, owner, run, state)] = recorder.calls
    assert label == "failure"
    assert owner is decorated
    assert run.id == only_run(runtime, kind).id
    assert state.is_failed()
    assert isinstance(state.exception, ValueError)


@pytest.mark.parametrize("async_hooks", HOOK_FLAVOURS)
def test_on_running_fires_for_each_attempt(
    runtime: Runtime, mode: Any, kind: str, recorder: Recorder, async_hooks: bool
) -> None:
    decorated = mode.make(
        kind,
        flaky(failures=1),
        retries=1,
        on_running=[recorder.hook("running", is_async=async_hooks)],
        on_completion=[recorder.hook("completion", is_async=async_hooks)],
        on_failure=[recorder.hook("failure", is_async=async_hooks)],
    )

    mode.call(decorated)

    assert recorder.labels == ["running", "running", "completion"]
    assert recorder.state_names == ["Running", "Retrying", "Completed"]
    assert [c[2].run_count for c in recorder.calls] == [1, 2, 2]


def test_on_failure_does_not_fire_for_an_attempt_that_is_retried(
    runtime: Runtime, mode: Any, kind: str, recorder: Recorder
) -> None:
    decorated = mode.make(kind, flaky(failures=1), retries=1, on_failure=[recorder.hook("failure")])

    mode.call(decorated)

    assert recorder.calls == []


def test_hooks_fire_in_order(runtime: Runtime, mode: Any, kind: str, recorder: Recorder) -> None:
    decorated = mode.make(
        kind, lambda: None, on_completion=[recorder.hook("first"), recorder.hook("second")]
    )

    mode.call(decorated)

    assert recorder.labels == ["first", "second"]


def test_flow_on_crashed_fires_on_keyboard_interrupt(
    runtime: Runtime, mode: Any, recorder: Recorder
) -> None:
    def interrupt() -> None:
        raise KeyboardInterrupt

    decorated = mode.flow(
        interrupt, on_crashed=[recorder.hook("crashed")], on_failure=[recorder.hook("failure")]
    )

    with pytest.raises(KeyboardInterrupt):
        mode.call(decorated)

    [(label, owner, run, state)] = recorder.calls
    assert label == "crashed"
    assert owner is decorated
    assert state.is_crashed()
    assert run.id == only_run(runtime, "flow").id


def test_failing_validation_fires_on_failure(
    runtime: Runtime, mode: Any, recorder: Recorder
) -> None:
    def needs_int(x: int) -> int:
        return x

    decorated = mode.flow(needs_int, on_failure=[recorder.hook("failure")])

    mode.call(decorated, "not a number", return_state=True)

    assert recorder.labels == ["failure"]


# -- a hook that raises --------------------------------------------------------------------------
def exploding_hook(owner: Any, run: Any, state: Any) -> None:
    raise RuntimeError("hook exploded")


async def async_exploding_hook(owner: Any, run: Any, state: Any) -> None:
    raise RuntimeError("async hook exploded")


@pytest.mark.parametrize(
    "hook", [exploding_hook, async_exploding_hook], ids=["sync-hook", "async-hook"]
)
def test_raising_completion_hook_is_logged_and_changes_nothing(
    runtime: Runtime,
    mode: Any,
    kind: str,
    recorder: Recorder,
    caplog: pytest.LogCaptureFixture,
    hook: Any,
) -> None:
    decorated = mode.make(kind, lambda: "fine", on_completion=[hook, recorder.hook("after")])

    with caplog.at_level(logging.ERROR):
        assert mode.call(decorated) == "fine"

    assert only_run(runtime, kind).state_names == ["Pending", "Running", "Completed"]
    assert recorder.labels == ["after"]
    errors = [
        r for r in caplog.records if r.levelno >= logging.ERROR and hook.__name__ in r.getMessage()
    ]
    assert len(errors) == 1
    assert "on_completion" in errors[0].getMessage()
    assert errors[0].exc_info is not None
    assert "exploded" in str(errors[0].exc_info[1])


@pytest.mark.parametrize("option", ["on_failure", "on_running"])
def test_raising_failure_or_running_hook_changes_nothing(
    runtime: Runtime, mode: Any, kind: str, caplog: pytest.LogCaptureFixture, option: str
) -> None:
    decorated = mode.make(kind, flaky(failures=1), **{option: [exploding_hook]})

    with pytest.raises(ValueError, match="failure 1"):
        mode.call(decorated)

    assert only_run(runtime, kind).state_names == ["Pending", "Running", "Failed"]
    assert any(
        option in r.getMessage() and "exploding_hook" in r.getMessage() for r in caplog.records
    )


def test_raising_hook_is_also_recorded_in_the_run_logs(
    runtime: Runtime, mode: Any, kind: str
) -> None:
    mode.call(mode.make(kind, lambda: None, on_completion=[exploding_hook]))

    run = only_run(runtime, kind)
    messages = [log.message for log in runtime.store.logs(run.id)]
    assert any("exploding_hook" in m and "hook exploded" in m for m in messages)


def test_hooks_of_a_task_inside_a_flow(runtime: Runtime, recorder: Recorder) -> None:
    step = task(lambda: 1, on_completion=[recorder.hook("task")])

    @flow(on_completion=[recorder.hook("flow")])
    def outer() -> int:
        return step() + 1

    assert outer() == 2

    assert recorder.labels == ["task", "flow"]
    task_run = recorder.calls[0][2]
    assert task_run.flow_run_id == only_run(runtime, "flow").id


def test_async_hook_of_a_sync_task_in_an_async_flow_sees_the_run_context(runtime: Runtime) -> None:
    """The sync driver runs an async hook on a helper loop when one is already running; the
    hook must still see the same runtime (clock, store) and run context as a sync hook."""
    import asyncio

    import wfkit.runtime
    from wfkit.context import current_clock

    seen: list[Any] = []

    async def hook(owner: Any, run: Any, state: Any) -> None:
        seen.append((current_clock(), wfkit.runtime.flow_run.id))

    step = task(lambda: 1, on_completion=[hook])

    @flow
    async def outer() -> int:
        return step()

    assert asyncio.run(outer()) == 1

    assert seen == [(runtime.clock, only_run(runtime, "flow").id)]
