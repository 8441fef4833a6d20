"""A failing plugin never breaks a run: whatever raises (a plain implementation, a wrapper
before or after its ``yield``) is logged naming the plugin, and every other implementation,
the store writer included, still hears each event exactly once."""

from __future__ import annotations

import logging
from collections.abc import Generator
from typing import Any

import pluggy
import pytest

import wfkit
from wfkit.context import Runtime

from ._support import Listener, RaisingPlugin, run_one_task, store_states

TASK_STATES = ["Pending", "Running", "Completed"]


class Wrapper(Listener):
    """A new-style wrapper around every task state change, raising where ``fail`` says."""

    fail = ""  # "before" or "after" its yield, or "" not at all

    @wfkit.hookimpl(wrapper=True)
    def wfkit_task_run_state_changed(self, new_state: Any) -> Generator[None, Any, Any]:
        self.heard(new_state)
        if self.fail == "before":
            raise RuntimeError(f"{self.label} exploded before yield")
        result = yield
        if self.fail == "after":
            raise RuntimeError(f"{self.label} exploded after yield")
        return result


class OldStyleWrapper(Listener):
    """An old-style ``hookwrapper=True`` one, raising where ``fail`` says."""

    fail = ""

    @wfkit.hookimpl(hookwrapper=True)
    def wfkit_task_run_state_changed(self, new_state: Any) -> Generator[None, Any, None]:
        self.heard(new_state)
        if self.fail == "before":
            raise RuntimeError(f"{self.label} exploded before yield")
        yield
        if self.fail == "after":
            raise RuntimeError(f"{self.label} exploded after yield")


@pytest.fixture
def plugin_errors(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """``caplog``, capturing the errors of the ``wfkit.plugins`` logger."""
    caplog.set_level(logging.ERROR, logger="wfkit.plugins")
    return caplog


def heard_by(calls: list[tuple[str, str]], label: str) -> list[str]:
    return [name for heard, name in calls if heard == label]


def failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The messages logged on ``wfkit.plugins``, in order."""
    return [r.getMessage() for r in caplog.records if r.name == "wfkit.plugins"]


def errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The exceptions logged on ``wfkit.plugins`` (each failure is logged with one), as
    ``repr`` strings, in order."""
    records = [r for r in caplog.records if r.name == "wfkit.plugins"]
    return [repr(r.exc_info[1]) if r.exc_info else "no traceback" for r in records]


@pytest.mark.parametrize("with_wrapper", [False, True], ids=["direct", "through-pluggy"])
def test_raising_plugin_is_logged_and_the_others_still_hear(
    runtime: Runtime,
    pm: pluggy.PluginManager,
    plugin_errors: pytest.LogCaptureFixture,
    with_wrapper: bool,
) -> None:
    calls: list[tuple[str, str]] = []
    wfkit.register_plugin(Listener("earlier", calls))  # called after the raising one
    wfkit.register_plugin(RaisingPlugin("bad", calls), name="bad-plugin")
    wfkit.register_plugin(Listener("later", calls))  # called before it
    if with_wrapper:  # a wrapper makes wfkit go through pluggy's caller
        wfkit.register_plugin(Wrapper("wrap", calls))

    assert run_one_task() == 1

    for label in ("earlier", "bad", "later") + (("wrap",) if with_wrapper else ()):
        assert heard_by(calls, label) == TASK_STATES, label
    assert store_states(runtime) == (TASK_STATES, TASK_STATES)
    assert failures(plugin_errors) == [
        "wfkit plugin 'bad-plugin' failed in wfkit_task_run_state_changed; the run goes on"
    ] * len(TASK_STATES)
    assert errors(plugin_errors) == ["RuntimeError('bad exploded')"] * len(TASK_STATES)


@pytest.mark.parametrize("style", [Wrapper, OldStyleWrapper], ids=["wrapper", "hookwrapper"])
@pytest.mark.parametrize("when", ["before", "after"])
def test_raising_wrapper_is_logged_and_every_plain_plugin_hears_once(
    runtime: Runtime,
    pm: pluggy.PluginManager,
    plugin_errors: pytest.LogCaptureFixture,
    style: type[Wrapper],
    when: str,
) -> None:
    calls: list[tuple[str, str]] = []
    wfkit.register_plugin(Listener("plain", calls))
    wrapper = style("wrap", calls)
    wrapper.fail = when
    wfkit.register_plugin(wrapper, name="bad-wrapper")
    wfkit.register_plugin(Wrapper("outer", calls))  # registered last: the outermost wrapper

    if style is OldStyleWrapper and when == "after":
        with pytest.warns(pluggy.PluggyTeardownRaisedWarning):
            run_one_task()
    else:
        run_one_task()

    assert heard_by(calls, "plain") == TASK_STATES
    assert heard_by(calls, "wrap") == TASK_STATES
    assert heard_by(calls, "outer") == TASK_STATES
    assert store_states(runtime) == (TASK_STATES, TASK_STATES)
    assert failures(plugin_errors) == [
        "wfkit plugin 'bad-wrapper' failed in wfkit_task_run_state_changed; the run goes on"
    ] * len(TASK_STATES)
    assert errors(plugin_errors) == [f"RuntimeError('wrap exploded {when} yield')"] * 3


def test_the_failing_instance_of_a_plugin_class_is_named(
    runtime: Runtime, pm: pluggy.PluginManager, plugin_errors: pytest.LogCaptureFixture
) -> None:
    calls: list[tuple[str, str]] = []
    quiet, loud = RaisingPlugin("quiet", calls), RaisingPlugin("loud", calls)
    wfkit.register_plugin(quiet, name="quiet")
    wfkit.register_plugin(loud, name="loud")
    wfkit.register_plugin(Wrapper("wrap", calls))

    run_one_task()

    # the same function raised in both; each failure is blamed on its own instance
    names = [m.split("'")[1] for m in failures(plugin_errors)]
    assert names == ["loud", "quiet"] * len(TASK_STATES)
    assert heard_by(calls, "quiet") == heard_by(calls, "loud") == TASK_STATES


class Catching(Listener):
    """A wrapper catching the RuntimeError of an implementation inside it, and raising
    another exception from it (``translate``) or returning as if nothing had happened."""

    translate = True

    @wfkit.hookimpl(wrapper=True)
    def wfkit_task_run_state_changed(self) -> Generator[None, Any, Any]:
        try:
            return (yield)
        except RuntimeError as exc:
            if self.translate:
                raise LookupError("translated") from exc
            return []


def run_with_catching_wrapper(translate: bool) -> list[tuple[str, str]]:
    """Run a task with a raising plugin inside a :class:`Catching` wrapper and a plain
    plugin called after the raising one; return what each heard."""
    calls: list[tuple[str, str]] = []
    catching = Catching("catching", calls)
    catching.translate = translate
    wfkit.register_plugin(Listener("after-bad", calls))
    wfkit.register_plugin(RaisingPlugin("bad", calls), name="bad-plugin")
    wfkit.register_plugin(catching)
    run_one_task()
    return calls


def test_failure_with_an_exception_chain_is_blamed_on_its_origin(
    runtime: Runtime, pm: pluggy.PluginManager, plugin_errors: pytest.LogCaptureFixture
) -> None:
    calls = run_with_catching_wrapper(translate=True)

    assert {m.split("'")[1] for m in failures(plugin_errors)} == {"bad-plugin"}
    assert errors(plugin_errors) == ["LookupError('translated')"] * len(TASK_STATES)
    assert heard_by(calls, "after-bad") == TASK_STATES
    assert store_states(runtime) == (TASK_STATES, TASK_STATES)


def test_a_wrapper_that_swallows_an_exception_has_handled_it(
    runtime: Runtime, pm: pluggy.PluginManager, plugin_errors: pytest.LogCaptureFixture
) -> None:
    calls = run_with_catching_wrapper(translate=False)

    # documented in wfkit.hookspecs: pluggy stopped at the exception and the wrapper took it
    assert failures(plugin_errors) == []
    assert heard_by(calls, "bad") == TASK_STATES
    assert heard_by(calls, "after-bad") == []


def test_wrapper_that_does_not_yield_is_logged(
    runtime: Runtime, pm: pluggy.PluginManager, plugin_errors: pytest.LogCaptureFixture
) -> None:
    class NoYield:
        @wfkit.hookimpl(wrapper=True)
        def wfkit_task_run_state_changed(self, new_state: Any) -> Generator[None, Any, Any]:
            if new_state is not None:
                return None
            yield  # pragma: no cover - never reached

    wfkit.register_plugin(NoYield())

    assert run_one_task() == 1
    assert len(failures(plugin_errors)) == len(TASK_STATES)
    assert all("did not yield" in error for error in errors(plugin_errors))


def test_log_hook_failure_is_isolated(
    runtime: Runtime, pm: pluggy.PluginManager, plugin_errors: pytest.LogCaptureFixture
) -> None:
    class BadLogSink:
        @wfkit.hookimpl
        def wfkit_log(self, record: Any) -> None:
            raise RuntimeError("sink exploded")

    wfkit.register_plugin(BadLogSink(), name="bad-sink")

    wfkit.flow(lambda: wfkit.get_run_logger().info("kept"), name="logs")()

    assert "kept" in [entry.message for entry in runtime.store.logs()]
    assert "wfkit plugin 'bad-sink' failed in wfkit_log; the run goes on" in failures(plugin_errors)


def test_isolation_holds_while_the_engine_handles_a_failing_task(
    runtime: Runtime, pm: pluggy.PluginManager, plugin_errors: pytest.LogCaptureFixture
) -> None:
    # the engine publishes AwaitingRetry and Failed while handling the task's exception,
    # which the plugin's exception then carries as its context
    calls: list[tuple[str, str]] = []
    wfkit.register_plugin(Listener("after-bad", calls))
    wfkit.register_plugin(RaisingPlugin("bad", calls), name="bad-plugin")
    wfkit.register_plugin(Wrapper("wrap", calls))

    def fails() -> None:
        raise ValueError("the task failed")

    step = wfkit.task(fails, name="fails", retries=1)
    state = wfkit.flow(lambda: step(), name="outer")(return_state=True)

    states = ["Pending", "Running", "AwaitingRetry", "Retrying", "Failed"]
    assert state.is_failed()
    assert [r.state_names for r in runtime.store.task_runs()] == [states]
    assert heard_by(calls, "after-bad") == heard_by(calls, "wrap") == states
    assert {m.split("'")[1] for m in failures(plugin_errors)} == {"bad-plugin"}
