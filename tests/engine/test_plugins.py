"""Plugins (SPEC §7): the hooks see every state change in order; a failing plugin never
breaks a run; ``wfkit_make_store`` adds store schemes."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

import wfkit
from wfkit import task
from wfkit._plugins import unregister_plugin
from wfkit.context import Runtime, use_runtime
from wfkit.exceptions import ConfigurationError
from wfkit.stores import open_store
from wfkit.stores.memory import MemoryStore

from ._support import flaky, only_run


class Recording:
    """A plugin recording every notification it receives."""

    def __init__(self) -> None:
        self.flow_changes: list[tuple[str, str | None, str]] = []
        self.task_changes: list[tuple[str, str | None, str]] = []
        self.flow_snapshots: list[Any] = []
        self.logs: list[Any] = []

    @wfkit.hookimpl
    def wfkit_flow_run_state_changed(self, flow_run: Any, old_state: Any, new_state: Any) -> None:
        self.flow_snapshots.append((flow_run, new_state))
        self.flow_changes.append(
            (flow_run.id, old_state.name if old_state else None, new_state.name)
        )

    @wfkit.hookimpl
    def wfkit_task_run_state_changed(self, task_run: Any, old_state: Any, new_state: Any) -> None:
        self.task_changes.append(
            (task_run.id, old_state.name if old_state else None, new_state.name)
        )

    @wfkit.hookimpl
    def wfkit_log(self, record: Any) -> None:
        self.logs.append(record)


class Exploding:
    """A plugin that raises in every hook it implements."""

    @wfkit.hookimpl
    def wfkit_flow_run_state_changed(self, flow_run: Any, old_state: Any, new_state: Any) -> None:
        raise RuntimeError("flow hook exploded")

    @wfkit.hookimpl
    def wfkit_task_run_state_changed(self, task_run: Any) -> None:
        raise RuntimeError("task hook exploded")

    @wfkit.hookimpl
    def wfkit_log(self, record: Any) -> None:
        raise RuntimeError("log hook exploded")


class CustomStores:
    """A plugin that opens ``custom://`` stores."""

    def __init__(self) -> None:
        self.store = MemoryStore("custom://x")
        self.asked: list[str] = []

    @wfkit.hookimpl
    def wfkit_make_store(self, url: str) -> Any:
        self.asked.append(url)
        return self.store if url.startswith("custom://") else None


@pytest.fixture
def register() -> Iterator[Any]:
    """``register(plugin)`` registers a plugin for this test only."""
    registered: list[Any] = []

    def register(plugin: Any) -> Any:
        wfkit.register_plugin(plugin)
        registered.append(plugin)
        return plugin

    yield register
    for plugin in registered:
        unregister_plugin(plugin)


def history(
    changes: list[tuple[str, str | None, str]], run_id: str
) -> list[tuple[str | None, str]]:
    return [(old, new) for rid, old, new in changes if rid == run_id]


def test_state_changes_match_the_store_history(runtime: Runtime, mode: Any, register: Any) -> None:
    plugin = register(Recording())
    step = task(flaky(failures=1), retries=1)

    mode.call(mode.flow(lambda: step()))

    flow_run, task_run = only_run(runtime, "flow"), only_run(runtime, "task")
    flow_calls = history(plugin.flow_changes, flow_run.id)
    task_calls = history(plugin.task_changes, task_run.id)
    assert [new for _, new in flow_calls] == flow_run.state_names
    assert [new for _, new in task_calls] == task_run.state_names
    assert task_run.state_names == ["Pending", "Running", "AwaitingRetry", "Retrying", "Completed"]
    for calls in (flow_calls, task_calls):
        assert calls[0][0] is None
        assert [old for old, _ in calls[1:]] == [new for _, new in calls[:-1]]


def test_snapshots_carry_the_new_state(runtime: Runtime, mode: Any, register: Any) -> None:
    plugin = register(Recording())

    mode.call(mode.flow(lambda x: x, name="snap"), 5)

    for snapshot, new_state in plugin.flow_snapshots:
        assert snapshot.state is new_state
        assert snapshot.flow_name == "snap"
        assert dict(snapshot.parameters) == {"x": 5}
    with pytest.raises(TypeError):
        plugin.flow_snapshots[0][0].parameters["x"] = 6  # immutable
    with pytest.raises(AttributeError):
        plugin.flow_snapshots[0][0].name = "other"  # type: ignore[misc]


def test_log_hook_receives_run_logs(runtime: Runtime, mode: Any, register: Any) -> None:
    plugin = register(Recording())

    mode.call(mode.flow(lambda: wfkit.get_run_logger().info("to the plugin")))

    [record] = [r for r in plugin.logs if r.message == "to the plugin"]
    assert record.flow_run_id == only_run(runtime, "flow").id
    assert record.timestamp == runtime.clock.now()


def test_plugin_implementing_fewer_arguments(runtime: Runtime, mode: Any, register: Any) -> None:
    names: list[str] = []

    class Minimal:
        @wfkit.hookimpl
        def wfkit_flow_run_state_changed(self, new_state: Any) -> None:
            names.append(new_state.name)

    register(Minimal())

    mode.call(mode.flow(lambda: None))

    assert names == ["Pending", "Running", "Completed"]


def test_exploding_plugin_never_breaks_a_run(
    runtime: Runtime, mode: Any, register: Any, caplog: pytest.LogCaptureFixture
) -> None:
    register(Exploding())
    step = task(lambda: wfkit.get_run_logger().info("still logged") or 2)

    with caplog.at_level(logging.ERROR, logger="wfkit.plugins"):
        assert mode.call(mode.flow(lambda: step() + 1)) == 3

    assert only_run(runtime, "flow").state_names == ["Pending", "Running", "Completed"]
    assert only_run(runtime, "task").state_names == ["Pending", "Running", "Completed"]
    assert "still logged" in [log.message for log in runtime.store.logs()]
    plugin_errors = [r for r in caplog.records if r.name == "wfkit.plugins"]
    hooks = {r.getMessage().split(" in ")[-1].split(";")[0] for r in plugin_errors}
    assert {"wfkit_flow_run_state_changed", "wfkit_task_run_state_changed", "wfkit_log"} <= hooks
    assert all(r.exc_info for r in plugin_errors)


def test_exploding_plugin_does_not_stop_other_plugins(
    runtime: Runtime, mode: Any, register: Any
) -> None:
    recording = register(Recording())
    register(Exploding())

    mode.call(mode.flow(lambda: None))

    assert [new for _, _, new in recording.flow_changes] == ["Pending", "Running", "Completed"]


def test_unregistered_plugin_hears_nothing(runtime: Runtime, mode: Any) -> None:
    plugin = Recording()
    wfkit.register_plugin(plugin)
    unregister_plugin(plugin)

    mode.call(mode.flow(lambda: None))

    assert plugin.flow_changes == []


def test_registering_twice_is_an_error(register: Any) -> None:
    plugin = register(Recording())

    with pytest.raises(ValueError):
        wfkit.register_plugin(plugin)


# -- wfkit_make_store ---------------------------------------------------------------------------
def test_make_store_plugin_provides_a_scheme(register: Any) -> None:
    plugin = register(CustomStores())

    assert open_store("custom://x") is plugin.store
    assert plugin.asked == ["custom://x"]


def test_make_store_takes_the_first_result(register: Any) -> None:
    earlier = register(CustomStores())
    later = register(CustomStores())  # pluggy asks the last registered first

    assert open_store("custom://x") is later.store
    assert (later.asked, earlier.asked) == (["custom://x"], [])  # firstresult: asked no further
    assert isinstance(open_store("memory://"), MemoryStore)
    assert (later.asked, earlier.asked) == (["custom://x", "memory://"], ["memory://"])


def test_make_store_plugin_declining_leaves_builtins(register: Any) -> None:
    register(CustomStores())

    assert isinstance(open_store("memory://"), MemoryStore)


def test_runs_go_to_the_plugin_store(register: Any, mode: Any) -> None:
    plugin = register(CustomStores())

    with use_runtime(store="custom://x") as rt:
        mode.call(mode.flow(lambda: None, name="into-custom"))

    assert rt.store is plugin.store
    assert [r.flow_name for r in plugin.store.flow_runs()] == ["into-custom"]


def test_unknown_scheme_without_plugin_names_the_url() -> None:
    with pytest.raises(ConfigurationError) as info:
        open_store("custom://x")

    assert "'custom://x'" in str(info.value)
    assert "wfkit_make_store" in str(info.value)


def test_store_url_must_be_a_string() -> None:
    with pytest.raises(ConfigurationError, match="42"):
        open_store(42)  # type: ignore[arg-type]
