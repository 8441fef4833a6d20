"""``wf runs retry``: find a recorded run's flow again and run it with the same parameters.

The flow is found through the import path recorded with the run (``module:qualname``, the
module imported with the current directory on ``sys.path``, as ``python -m`` does), or
through ``--entrypoint path/to/file.py:flow_name``. A flow defined in a script run as
``__main__`` has no importable path: the error says to use ``--entrypoint``.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import inspect
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from wfkit._plugins import register_plugin, unregister_plugin
from wfkit.context import use_runtime
from wfkit.flows import Flow
from wfkit.hookspecs import hookimpl

if TYPE_CHECKING:
    from wfkit.states import State
    from wfkit.stores import FlowRunSnapshot, RunStore
    from wfkit.stores.records import FlowRun

__all__ = ["load_flow", "rerun"]


def rerun(store: RunStore, run: FlowRun, entrypoint: str | None) -> FlowRunSnapshot:
    """Run ``run``'s flow again with its recorded parameters, recording in ``store``; the
    new top-level flow run as it ended."""
    flow = load_flow(run, entrypoint)
    watcher = _NewRun()
    register_plugin(watcher)
    try:
        with use_runtime(store=store):
            outcome: Any = flow(**run.parameters, return_state=True)
            if inspect.iscoroutine(outcome):
                outcome = asyncio.run(outcome)
    finally:
        unregister_plugin(watcher)
    if watcher.run is None:  # (the engine always records a run; this says so if it did not)
        raise click.ClickException(f"The flow {flow.name!r} ran, but no flow run was recorded.")
    return watcher.run


class _NewRun:
    """A plugin that keeps the latest snapshot of the first top-level flow run it sees."""

    def __init__(self) -> None:
        self.run: FlowRunSnapshot | None = None

    @hookimpl
    def wfkit_flow_run_state_changed(
        self, flow_run: FlowRunSnapshot, old_state: State | None, new_state: State
    ) -> None:
        if flow_run.parent_flow_run_id is None and flow_run.parent_task_run_id is None:
            if self.run is None or self.run.id == flow_run.id:
                self.run = flow_run


def load_flow(run: FlowRun, entrypoint: str | None) -> Flow[Any, Any]:
    """The flow that ``run`` ran, from ``entrypoint`` or from its recorded import path.

    Raises:
        click.UsageError: ``entrypoint`` is malformed or names no file.
        click.ClickException: the flow cannot be found or imported (the message says why and
            what to do).
    """
    if entrypoint is not None:
        found, where = _from_entrypoint(entrypoint), f"--entrypoint {entrypoint!r}"
    else:
        found, where = _from_import_path(run), f"the import path {run.flow_path!r}"
    if not isinstance(found, Flow):
        raise click.ClickException(
            f"{where} names a {type(found).__qualname__}, not a wfkit flow: point it at a "
            "function decorated with @flow."
        )
    return found


def _from_import_path(run: FlowRun) -> Any:
    hint = (
        f"Give the file and the flow's name instead: wf runs retry {run.id} "
        f"--entrypoint path/to/file.py:{_function_name(run)}"
    )
    if run.flow_path is None:
        raise click.ClickException(
            f"The flow run {run.name!r} was recorded before wfkit recorded where flows are "
            f"defined, so its flow {run.flow_name!r} cannot be found. {hint}"
        )
    module_name, _, qualname = run.flow_path.partition(":")
    if module_name == "__main__":
        raise click.ClickException(
            f"The flow {run.flow_name!r} of run {run.name!r} was defined in a script run "
            f"directly (module __main__), which cannot be imported by name. {hint}"
        )
    if "<locals>" in qualname:
        raise click.ClickException(
            f"The flow {run.flow_name!r} of run {run.name!r} was defined inside a function "
            f"({run.flow_path}), so it cannot be imported. {hint}"
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as `python -m` would find the module
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception as exc:
        raise click.ClickException(
            f"Cannot import the flow {run.flow_path!r} of run {run.name!r}: "
            f"{type(exc).__name__}: {exc}. Run wf where that module can be imported (its "
            f"project directory, or with PYTHONPATH set), or: {hint}"
        ) from exc
    return found


def _function_name(run: FlowRun) -> str:
    if run.flow_path and ":" in run.flow_path:
        return run.flow_path.rpartition(":")[2].rpartition(".")[2]
    return run.flow_name.replace("-", "_")


def _from_entrypoint(entrypoint: str) -> Any:
    path_text, sep, name = entrypoint.rpartition(":")
    if not sep or not path_text or not name:
        raise click.UsageError(
            f"--entrypoint {entrypoint!r} is not FILE.py:FLOW: give a Python file and the "
            "name of the flow in it, for example --entrypoint flows/etl.py:nightly."
        )
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise click.UsageError(
            f"--entrypoint {entrypoint!r}: there is no file {path_text!r} (relative paths "
            f"start at {os.getcwd()!r})."
        )
    module_name = f"wfkit_entrypoint_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise click.UsageError(f"--entrypoint {entrypoint!r}: {path_text!r} is not a Python file.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # (dataclasses and pickling look modules up by name)
    sys.path.insert(0, str(path.resolve().parent))  # its own imports, as `python file.py`
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise click.ClickException(
            f"Running {path_text!r} to find the flow failed: {type(exc).__name__}: {exc}."
        ) from exc
    found = getattr(module, name, None)
    if found is None:  # the flow's name (`@flow(name=...)`) rather than its variable's
        found = next(
            (v for v in vars(module).values() if isinstance(v, Flow) and v.name == name), None
        )
    if found is None:
        flows = sorted(k for k, v in vars(module).items() if isinstance(v, Flow))
        raise click.ClickException(
            f"--entrypoint {entrypoint!r}: {path_text!r} has no flow {name!r}; its flows are "
            f"{', '.join(flows) or 'none'}."
        )
    return found
