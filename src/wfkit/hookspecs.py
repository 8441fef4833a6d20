"""The hooks a wfkit plugin can implement.

Plugins are objects (or modules) with functions named like the specs below and marked with
``@wfkit.hookimpl``. They are registered with :func:`wfkit.register_plugin` or found through
the ``wfkit`` entry-point group::

    # pyproject.toml of your plugin
    [project.entry-points.wfkit]
    myplugin = "mypackage.wfkit_plugin"

A plugin implements only the arguments it needs: ``def wfkit_log(record): ...`` is fine.
Every argument is an immutable snapshot, so a plugin may keep it.

Notification hooks (``*_state_changed``, ``wfkit_log``) run synchronously, in the thread
of the run, in the order pluggy gives (last registered first). A plugin that raises is
reported on the ``wfkit.plugins`` logger and skipped; the run and the other plugins go on.
wfkit's own store writing is a plugin implementing these same hooks.
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
