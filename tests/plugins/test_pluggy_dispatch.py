"""Every hook is called with pluggy's semantics: wrappers (new and old style), tryfirst and
trylast, firstresult, monitoring, and plugins however they are (un)registered."""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

import pluggy
import pytest

import wfkit
from wfkit._plugins import unregister_plugin
from wfkit.context import Runtime

from ._support import Listener, marked_listener, run_one_task, store_states

TASK_STATES = ["Pending", "Running", "Completed"]


class NewStyleWrapper(Listener):
    """A ``wrapper=True`` implementation noting each call before and after its ``yield``,
    and what the implementations inside it returned."""

    @wfkit.hookimpl(wrapper=True)
    def wfkit_task_run_state_changed(self, new_state: Any) -> Generator[None, Any, Any]:
        self.calls.append((f"{self.label}:before", new_state.name))
        results = yield
        self.calls.append((f"{self.label}:after", f"{new_state.name} {results!r}"))
        return results


class OldStyleWrapper(Listener):
    """A ``hookwrapper=True`` implementation: ``yield`` gives it pluggy's outcome object."""

    @wfkit.hookimpl(hookwrapper=True)
    def wfkit_task_run_state_changed(self, new_state: Any) -> Generator[None, Any, None]:
        self.calls.append((f"{self.label}:before", new_state.name))
        outcome = yield
        self.calls.append((f"{self.label}:after", f"{new_state.name} {outcome.get_result()!r}"))


First = marked_listener(tryfirst=True)
Last = marked_listener(trylast=True)


class StoreProbe:
    """Notes, at each task state change, the states the store has recorded for the run."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.seen: list[list[str]] = []

    def look(self, task_run: Any) -> None:
        [recorded] = [r for r in self.runtime.store.task_runs() if r.id == task_run.id] or [None]
        self.seen.append(recorded.state_names if recorded else [])

    @wfkit.hookimpl
    def wfkit_task_run_state_changed(self, task_run: Any) -> None:
        self.look(task_run)


class LastStoreProbe(StoreProbe):
    @wfkit.hookimpl(trylast=True)
    def wfkit_task_run_state_changed(self, task_run: Any) -> None:
        self.look(task_run)


@pytest.mark.parametrize("wrapper_class", [NewStyleWrapper, OldStyleWrapper])
def test_a_wrapper_runs_around_every_call(
    runtime: Runtime, pm: pluggy.PluginManager, wrapper_class: type[Listener]
) -> None:
    calls: list[tuple[str, str]] = []
    wfkit.register_plugin(wrapper_class("wrap", calls))
    wfkit.register_plugin(Listener("plain", calls))

    assert run_one_task() == 1

    expected = []
    for name in TASK_STATES:
        # the implementations inside return None, which pluggy leaves out of the results
        expected += [("wrap:before", name), ("plain", name), ("wrap:after", f"{name} []")]
    assert calls == expected
    assert store_states(runtime) == (TASK_STATES, TASK_STATES)


def test_tryfirst_and_trylast_order_the_calls(runtime: Runtime, pm: pluggy.PluginManager) -> None:
    calls: list[tuple[str, str]] = []
    # registered in the reverse of the order the marks ask for: pluggy would otherwise
    # call the last registered first
    wfkit.register_plugin(First("first", calls))
    wfkit.register_plugin(Listener("middle", calls))
    wfkit.register_plugin(Last("last", calls))

    run_one_task()

    assert [label for label, name in calls if name == "Running"] == ["first", "middle", "last"]


def test_plain_plugins_hear_before_the_store_records_trylast_ones_after(
    runtime: Runtime, pm: pluggy.PluginManager
) -> None:
    plain, last = StoreProbe(runtime), LastStoreProbe(runtime)
    wfkit.register_plugin(last)
    wfkit.register_plugin(plain)

    run_one_task()

    assert plain.seen == [[], ["Pending"], ["Pending", "Running"]]
    assert last.seen == [TASK_STATES[:1], TASK_STATES[:2], TASK_STATES]


def test_without_plugins_the_registration_order_decides(
    runtime: Runtime, pm: pluggy.PluginManager
) -> None:
    calls: list[tuple[str, str]] = []
    for label in ("a", "b", "c"):
        wfkit.register_plugin(Listener(label, calls))

    run_one_task()

    assert [label for label, name in calls if name == "Pending"] == ["c", "b", "a"]


# -- registration through pluggy's own API -------------------------------------------------------
def test_plugin_registered_on_the_manager_is_called(
    runtime: Runtime, pm: pluggy.PluginManager
) -> None:
    calls: list[tuple[str, str]] = []
    run_one_task()  # the hooks have been called (and planned) before the registration

    pm.register(Listener("direct", calls))
    run_one_task()

    assert calls == [("direct", name) for name in TASK_STATES]


def test_plugin_unregistered_on_the_manager_is_not_called(
    runtime: Runtime, pm: pluggy.PluginManager
) -> None:
    calls: list[tuple[str, str]] = []
    plugin = Listener("gone", calls)
    wfkit.register_plugin(plugin)
    run_one_task()
    del calls[:]

    pm.unregister(plugin)
    run_one_task()

    assert calls == []


def test_unregister_plugin_by_name(runtime: Runtime, pm: pluggy.PluginManager) -> None:
    calls: list[tuple[str, str]] = []
    name = wfkit.register_plugin(Listener("named", calls), name="my-listener")

    unregister_plugin(name=name)
    run_one_task()

    assert name == "my-listener"
    assert calls == []


def test_blocked_name_is_not_registered(runtime: Runtime, pm: pluggy.PluginManager) -> None:
    calls: list[tuple[str, str]] = []
    pm.set_blocked("unwanted")
    try:
        with pytest.raises(ValueError, match="'unwanted' is blocked"):
            wfkit.register_plugin(Listener("blocked", calls), name="unwanted")
        run_one_task()
    finally:
        pm.unblock("unwanted")

    assert calls == []


# -- monitoring and tracing ----------------------------------------------------------------------
def test_hook_call_monitoring_sees_wfkit_calls_until_undone(
    runtime: Runtime, pm: pluggy.PluginManager
) -> None:
    monitored: list[str] = []
    run_one_task()

    undo = pm.add_hookcall_monitoring(
        lambda hook_name, impls, kwargs: monitored.append(hook_name),
        lambda outcome, hook_name, impls, kwargs: None,
    )
    run_one_task()
    undo()
    during = list(monitored)
    run_one_task()

    assert during.count("wfkit_task_run_state_changed") == len(TASK_STATES)
    assert during.count("wfkit_flow_run_state_changed") == len(TASK_STATES)
    assert monitored == during


def test_enable_tracing_traces_wfkit_calls(runtime: Runtime, pm: pluggy.PluginManager) -> None:
    traced: list[str] = []
    pm.trace.root.setwriter(traced.append)
    undo = pm.enable_tracing()
    try:
        run_one_task()
    finally:
        undo()
        pm.trace.root.setwriter(None)

    assert any("wfkit_task_run_state_changed" in line for line in traced)


def test_snapshots_handed_to_a_wrapper_are_immutable(
    runtime: Runtime, pm: pluggy.PluginManager
) -> None:
    kept: list[Any] = []

    class Keeper:
        @wfkit.hookimpl(wrapper=True)
        def wfkit_task_run_state_changed(self, task_run: Any) -> Generator[None, Any, Any]:
            kept.append(task_run)
            return (yield)

    wfkit.register_plugin(Keeper())
    run_one_task()

    assert [snapshot.state.name for snapshot in kept] == TASK_STATES
    assert {snapshot.id for snapshot in kept} == {r.id for r in runtime.store.task_runs()}
    with pytest.raises(AttributeError):
        kept[0].state = None
    with pytest.raises(TypeError):
        kept[0].parameters["x"] = 1


# -- the direct path -----------------------------------------------------------------------------
def test_direct_calls_only_when_they_are_what_pluggy_would_do(pm: pluggy.PluginManager) -> None:
    hook = "wfkit_task_run_state_changed"
    calls: list[tuple[str, str]] = []

    def direct() -> bool:
        return isinstance(pm._plan_for(hook), tuple)  # type: ignore[attr-defined]

    assert direct()
    for plugin in (NewStyleWrapper("w", calls), OldStyleWrapper("o", calls), First("f", calls)):
        wfkit.register_plugin(plugin)
        assert not direct(), plugin
        unregister_plugin(plugin)
        assert direct(), plugin
    undo = pm.add_hookcall_monitoring(lambda *args: None, lambda *args: None)
    assert not direct()
    undo()
    assert direct()


def test_plans_are_dropped_on_every_change(pm: pluggy.PluginManager) -> None:
    hook = "wfkit_task_run_state_changed"
    plans = pm._plans  # type: ignore[attr-defined]
    pm._plan_for(hook)  # type: ignore[attr-defined]
    assert hook in pm._plans  # type: ignore[attr-defined]

    plugin = Listener("x", [])
    pm.register(plugin)
    assert pm._plans == {} and pm._plans is not plans  # type: ignore[attr-defined]
    pm._plan_for(hook)  # type: ignore[attr-defined]
    pm.unregister(plugin)
    assert pm._plans == {}  # type: ignore[attr-defined]
