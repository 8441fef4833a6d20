"""Fixtures for the plugin tests: ``pm`` is wfkit's plugin manager, cleaned up after the test."""

from __future__ import annotations

from collections.abc import Iterator

import pluggy
import pytest

from wfkit._plugins import plugin_manager


@pytest.fixture
def pm() -> Iterator[pluggy.PluginManager]:
    """wfkit's process-wide plugin manager. Every plugin the test registers, whichever way
    (``wfkit.register_plugin``, ``pm.register``), is unregistered after it."""
    manager = plugin_manager()
    before = {name for name, _ in manager.list_name_plugin()}
    yield manager
    for name, plugin in manager.list_name_plugin():
        if name not in before and plugin is not None:
            manager.unregister(name=name)
