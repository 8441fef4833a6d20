"""Registering and unregistering plugins: mistakes fail at once, with a message saying what
to do, and leave nothing half registered."""

from __future__ import annotations

from typing import Any

import pluggy
import pytest

import wfkit
from wfkit._plugins import unregister_plugin
from wfkit.context import Runtime

from ._support import Listener, run_one_task


class Misspelt:
    """Implements ``wfkit_task_run_state_change`` (no final ``d``), which is not a hook."""

    def __init__(self) -> None:
        self.calls: list[Any] = []

    @wfkit.hookimpl
    def wfkit_task_run_state_change(self, new_state: Any) -> None:
        self.calls.append(new_state)  # pragma: no cover - never called


class WrongArgument:
    @wfkit.hookimpl
    def wfkit_log(self, entry: Any) -> None:  # the hook passes ``record``
        pass  # pragma: no cover - never called


def test_registering_twice_says_how_to_fix_it(pm: pluggy.PluginManager) -> None:
    plugin = Listener("twice", [])
    wfkit.register_plugin(plugin, name="twice")

    with pytest.raises(ValueError) as info:
        wfkit.register_plugin(plugin)

    message = str(info.value)
    assert repr(plugin) in message
    assert "already registered as 'twice'" in message
    assert "unregister it first" in message


def test_registering_under_a_taken_name_names_both(pm: pluggy.PluginManager) -> None:
    first, second = Listener("first", []), Listener("second", [])
    wfkit.register_plugin(first, name="taken")

    with pytest.raises(ValueError) as info:
        wfkit.register_plugin(second, name="taken")

    message = str(info.value)
    assert "'taken' is already taken by" in message
    assert repr(first) in message and repr(second) in message
    assert not pm.is_registered(second)


@pytest.mark.parametrize("how", ["register_plugin", "plugin_manager().register"])
def test_misspelt_hook_name_fails_at_registration(
    runtime: Runtime, pm: pluggy.PluginManager, how: str
) -> None:
    plugin = Misspelt()
    register = wfkit.register_plugin if how == "register_plugin" else pm.register

    with pytest.raises(pluggy.PluginValidationError) as info:
        register(plugin, name="misspelt")

    message = str(info.value)
    assert "'misspelt' implements 'wfkit_task_run_state_change', which is not a wfkit hook" in (
        message
    )
    assert "wfkit_task_run_state_changed" in message  # the hooks are listed
    assert "optionalhook=True" in message
    assert not pm.is_registered(plugin)
    run_one_task()
    pm.check_pending()  # nothing unknown was left behind


def test_optional_hook_may_name_an_unknown_hook(pm: pluggy.PluginManager) -> None:
    class Optional:
        @wfkit.hookimpl(optionalhook=True)
        def wfkit_declared_elsewhere(self) -> None:
            pass  # pragma: no cover - never called

    plugin = Optional()

    assert wfkit.register_plugin(plugin, name="optional") == "optional"
    assert pm.is_registered(plugin)


def test_implementation_asking_for_an_unknown_argument_fails(pm: pluggy.PluginManager) -> None:
    plugin = WrongArgument()

    with pytest.raises(pluggy.PluginValidationError, match="entry"):
        wfkit.register_plugin(plugin)

    assert not pm.is_registered(plugin)


def test_unregistering_what_is_not_registered_is_an_error(pm: pluggy.PluginManager) -> None:
    stranger = Listener("stranger", [])

    with pytest.raises(ValueError) as by_object:
        unregister_plugin(stranger)
    with pytest.raises(ValueError) as by_name:
        unregister_plugin(name="no-such-plugin")

    assert f"plugin={stranger!r}" in str(by_object.value)
    assert "name='no-such-plugin'" in str(by_name.value)
    for info in (by_object, by_name):
        assert "it is not registered" in str(info.value)
        assert "'wfkit.store_writer'" in str(info.value)  # the registered ones are listed


def test_unregister_plugin_needs_an_argument() -> None:
    with pytest.raises(ValueError, match="the plugin object or its name"):
        unregister_plugin()


def test_unregister_plugin_twice_is_an_error(pm: pluggy.PluginManager) -> None:
    plugin = Listener("once", [])
    wfkit.register_plugin(plugin)
    unregister_plugin(plugin)

    with pytest.raises(ValueError, match="not registered"):
        unregister_plugin(plugin)
