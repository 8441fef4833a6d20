"""The hooks a wfkit plugin can implement, and how wfkit calls them.

Writing and registering a plugin
    A plugin is an object (or module) with functions named like the specs below and marked
    with ``@wfkit.hookimpl``. It implements only the arguments it needs
    (``def wfkit_log(record): ...`` is fine). Register it with
    :func:`wfkit.register_plugin` (or ``wfkit._plugins.plugin_manager().register``), or
    publish it in the ``wfkit`` entry-point group, which is loaded when wfkit first needs
    its plugins (entry points one by one, in name order; one that fails to import or to
    validate is logged and skipped)::

        # pyproject.toml of your plugin
        [project.entry-points.wfkit]
        myplugin = "mypackage.wfkit_plugin"

    Every registration is validated at once: a ``@wfkit.hookimpl`` function whose name is
    not a hook below (``wfkit_task_run_state_change``), or that asks for an argument its
    hook does not pass, raises :class:`pluggy.PluginValidationError` and nothing is
    registered. ``@wfkit.hookimpl(optionalhook=True)`` opts out of the name check.
    Registering a plugin twice, or a second plugin under a taken name, raises ``ValueError``;
    so does ``wfkit._plugins.unregister_plugin`` for a plugin or name not registered.

Dispatch and order
    wfkit calls every hook with pluggy's semantics, so everything pluggy offers applies:
    ``@wfkit.hookimpl(wrapper=True)`` and old-style ``hookwrapper=True`` wrappers,
    ``tryfirst``/``trylast``, ``firstresult`` (:func:`wfkit_make_store`),
    ``plugin_manager().enable_tracing()`` and ``add_hookcall_monitoring``. The order is
    pluggy's: wrappers first (outermost; ``tryfirst`` ones outside the others), then the
    plain implementations, ``tryfirst`` ones first, then the most recently registered first,
    ``trylast`` ones last. wfkit's own store writing is a plugin registered before all
    others (``"wfkit.store_writer"``), so a plain implementation sees a state change before
    the store records it, unless it is marked ``trylast``.

    Notification hooks (``*_state_changed``, ``wfkit_log``) run synchronously, in the
    thread of the run, before the engine goes on. Their arguments are immutable snapshots,
    so a plugin may keep them. (When a hook has only plain implementations without
    ``tryfirst``/``trylast`` and no monitoring is on, wfkit calls them itself in that same
    order instead of through ``pm.hook``: the outcome is the same, at a fraction of the cost.)

Failures
    A notification hook never breaks a run. When an implementation raises (a plain one, or
    a wrapper before or after its ``yield``), the exception is logged on the
    ``wfkit.plugins`` logger as ``wfkit plugin 'name' failed in wfkit_...; the run goes on``
    with its traceback, naming the plugin whose code raised it. pluggy stops calling
    implementations at an exception and hands it to the wrappers around them, as usual;
    wfkit then calls the plain implementations pluggy had not reached (all of them if a
    wrapper raised before its ``yield``), in order, each isolated the same way, outside
    the wrappers (which have finished by then). So a failing
    plugin keeps neither the store writer nor another plugin from seeing the event.
    A wrapper that catches an exception from the implementations inside it has handled it:
    it is not logged, and the implementations after the failing one are not called for
    that event. An error pluggy raises itself (a wrapper that does not ``yield``) is logged
    too, and nothing more is called. :func:`wfkit_make_store` is not isolated: an exception
    there propagates from ``open_store``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from wfkit.states import State
    from wfkit.stores import FlowRunSnapshot, LogEntry, RunStore, TaskRunSnapshot

hookspec = pluggy.HookspecMarker("wfkit")
hookimpl = pluggy.HookimplMarker("wfkit")


@hookspec
def wfkit_flow_run_state_changed(
    flow_run: FlowRunSnapshot, old_state: State | None, new_state: State
) -> None:
    """A flow run entered a new state.

    Fires once per transition, in order, before the engine goes on. The first call of a run
    has ``old_state=None`` (the run was just created, in ``Pending``).

    :param flow_run: the flow run as it is now; ``flow_run.state is new_state``.
    :param old_state: the state it left, or ``None``.
    :param new_state: the state it entered.

    The return value is ignored.
    """


@hookspec
def wfkit_task_run_state_changed(
    task_run: TaskRunSnapshot, old_state: State | None, new_state: State
) -> None:
    """A task run entered a new state.

    Same contract as :func:`wfkit_flow_run_state_changed`, for task runs.

    :param task_run: the task run as it is now; ``task_run.state is new_state``.
    :param old_state: the state it left, or ``None`` for a new run.
    :param new_state: the state it entered.
    """


@hookspec
def wfkit_log(record: LogEntry) -> None:
    """A run logged a line (through ``get_run_logger()`` or ``log_prints``).

    :param record: the log entry, with the flow/task run ids, level, logger name, message
        and a timestamp taken from the run's clock.
    """


@hookspec(firstresult=True)
def wfkit_make_store(url: str) -> RunStore | Any | None:
    """Open a run store for ``url``, or return ``None`` to let another plugin or wfkit try.

    Called by :func:`wfkit.stores.open_store` before the built-in schemes, so a plugin can
    add schemes (``redis://...``) or take over built-in ones. The first non-``None`` result
    wins.

    :param url: the store URL as given by the user or ``WFKIT_STORE``.
    """
