"""The plugin manager: hookspecs, the built-in plugins, entry points and safe notification."""

from __future__ import annotations

import logging
import threading
from typing import Any

import pluggy

from wfkit import hookspecs
from wfkit.context import _runtime, current_store, default_runtime
from wfkit.hookspecs import hookimpl

__all__ = [
    "notify",
    "plugin_manager",
    "publish_state_change",
    "register_plugin",
    "unregister_plugin",
]

_log = logging.getLogger("wfkit.plugins")
_lock = threading.Lock()
_pm: pluggy.PluginManager | None = None
# hook name -> [(function, argnames, plugin name)], in call order; rebuilt on (un)registration.
_impl_cache: dict[str, list[tuple[Any, tuple[str, ...], str]]] = {}
# state-change hook name -> [(callable taking (run, old_state, new_state), plugin name)]
_state_callers: dict[str, list[tuple[Any, str]]] = {}
_STATE_HOOK_ARGS = {
    "wfkit_flow_run_state_changed": ("flow_run", "old_state", "new_state"),
    "wfkit_task_run_state_changed": ("task_run", "old_state", "new_state"),
}


class StoreWriter:
    """Built-in plugin: records every state change and log line in the current run store."""

    # (Taking every argument of the spec lets publish_state_change call these directly; the
    # runtime is looked up inline, as current_store() does, since every state change asks.)
    @hookimpl
    def wfkit_flow_run_state_changed(self, flow_run: Any, old_state: Any, new_state: Any) -> None:
        rt = _runtime.get() or default_runtime()
        (rt._store or rt.store).record_flow_run(flow_run)

    @hookimpl
    def wfkit_task_run_state_changed(self, task_run: Any, old_state: Any, new_state: Any) -> None:
        rt = _runtime.get() or default_runtime()
        (rt._store or rt.store).record_task_run(task_run)

    @hookimpl
    def wfkit_log(self, record: Any) -> None:
        current_store().record_log(record)


def plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager, created (and entry points loaded) on first use."""
    global _pm
    if _pm is None:
        with _lock:
            if _pm is None:
                pm = pluggy.PluginManager("wfkit")
                pm.add_hookspecs(hookspecs)
                pm.register(StoreWriter(), name="wfkit.store_writer")
                try:
                    pm.load_setuptools_entrypoints("wfkit")
                except Exception:  # a broken third-party plugin must not break wfkit
                    _log.exception("Loading plugins from the 'wfkit' entry-point group failed")
                _pm = pm
    return _pm


def register_plugin(plugin: object, name: str | None = None) -> str:
    """Register a plugin object or module; returns the name it was registered under.

    Raises:
        ValueError: the plugin (or its name) is already registered, or it implements a
            hook that does not exist or with arguments the spec does not have.
    """
    pm = plugin_manager()
    registered = pm.register(plugin, name=name)
    if registered is None:
        raise ValueError(f"plugin {plugin!r} is blocked from registration")
    pm.check_pending()
    _forget_impls()
    return registered


def unregister_plugin(plugin: object | None = None, name: str | None = None) -> None:
    """Unregister a plugin registered with :func:`register_plugin`."""
    plugin_manager().unregister(plugin=plugin, name=name)
    _forget_impls()


def _forget_impls() -> None:
    _impl_cache.clear()
    _state_callers.clear()


def _impls(hook_name: str) -> list[tuple[Any, tuple[str, ...], str]]:
    impls = _impl_cache.get(hook_name)
    if impls is None:
        caller = getattr(plugin_manager().hook, hook_name)
        # pluggy calls the last registered implementation first; keep that order.
        impls = [
            (i.function, tuple(i.argnames), i.plugin_name) for i in reversed(caller.get_hookimpls())
        ]
        _impl_cache[hook_name] = impls
    return impls


def notify(hook_name: str, **kwargs: Any) -> None:
    """Call every implementation of a notification hook, isolating their failures."""
    for function, argnames, plugin_name in _impls(hook_name):
        try:
            function(*[kwargs[a] for a in argnames])
        except Exception:
            _log.exception("wfkit plugin %r failed in %s; the run goes on", plugin_name, hook_name)


def _state_caller(function: Any, argnames: tuple[str, ...], order: tuple[str, ...]) -> Any:
    """``function`` as a callable of (run, old_state, new_state), passing only the
    arguments the implementation asks for (pluggy lets it ask for fewer)."""
    if argnames == order:
        return function
    picks = tuple(order.index(a) for a in argnames)
    return lambda *args: function(*[args[i] for i in picks])


def _callers_of(hook_name: str) -> list[tuple[Any, str]]:
    callers = _state_callers.get(hook_name)
    if callers is None:
        order = _STATE_HOOK_ARGS[hook_name]
        callers = [
            (_state_caller(function, argnames, order), plugin_name)
            for function, argnames, plugin_name in _impls(hook_name)
        ]
        _state_callers[hook_name] = callers
    return callers


def publish_state_change(hook_name: str, run: Any, old_state: Any, new_state: Any) -> None:
    """Call every implementation of a state-change hook (``wfkit_flow_run_state_changed``
    or ``wfkit_task_run_state_changed``) with the run's snapshot, isolating failures.

    The same as :func:`notify`, specialised for the one call every state change makes."""
    for caller, plugin_name in _state_callers.get(hook_name) or _callers_of(hook_name):
        try:
            caller(run, old_state, new_state)
        except Exception:
            _log.exception("wfkit plugin %r failed in %s; the run goes on", plugin_name, hook_name)
