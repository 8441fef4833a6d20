"""Loggers for runs known by their records, as in Prefect's ``prefect.logging.loggers``:
``flow_run_logger(flow_run, flow)`` and ``task_run_logger(task_run, task)``, for code that
has a run but is not inside it (a state hook, say); inside a run, use
:func:`~wfkit.logging.get_run_logger`.

Their lines carry the run's ids, so they are recorded with that run in the current store.
"""

from __future__ import annotations

import logging
from typing import Any

from wfkit.logging import RunLoggerAdapter, base_logger, get_run_logger, setup_logging

__all__ = ["flow_run_logger", "get_logger", "get_run_logger", "task_run_logger"]


def flow_run_logger(
    flow_run: Any = None, flow: Any = None, flow_run_id: str | None = None, **extra: Any
) -> RunLoggerAdapter:
    """A logger for the flow run ``flow_run`` (a live run, a snapshot or a store record:
    anything with ``id`` and ``name``), or for the run with id ``flow_run_id``.

    ``flow`` is accepted for Prefect's signature (its name is added to the records as
    ``flow_name``); ``extra`` keyword arguments are added to every record.

    Raises:
        ValueError: neither ``flow_run`` nor ``flow_run_id`` was given.
    """
    if flow_run is None and flow_run_id is None:
        raise ValueError(
            "flow_run_logger() needs the flow run: pass flow_run=<the run> (as a state hook "
            "receives it) or flow_run_id=<its id>."
        )
    run_id = str(flow_run.id) if flow_run is not None else str(flow_run_id)
    name = getattr(flow_run, "name", None) or "<unknown>"
    setup_logging()
    return RunLoggerAdapter(
        base_logger("flow"),
        {
            "wf_flow_run_id": run_id,
            "wf_task_run_id": None,
            "wf_label": f"Flow run {name!r}",
            "flow_name": getattr(flow, "name", None) or "<unknown>",
            **extra,
        },
    )


def task_run_logger(
    task_run: Any, task: Any = None, flow_run: Any = None, flow: Any = None, **extra: Any
) -> RunLoggerAdapter:
    """A logger for the task run ``task_run`` (anything with ``id``, ``name`` and
    ``flow_run_id``); ``task``, ``flow_run`` and ``flow`` are accepted for Prefect's
    signature; ``extra`` keyword arguments are added to every record."""
    setup_logging()
    return RunLoggerAdapter(
        base_logger("task"),
        {
            "wf_flow_run_id": getattr(task_run, "flow_run_id", None),
            "wf_task_run_id": str(task_run.id),
            "wf_label": f"Task run {task_run.name!r}",
            "task_name": getattr(task, "name", None) or "<unknown>",
            **extra,
        },
    )


def get_logger(name: str | None = None) -> logging.Logger:
    """The ``wfkit`` logger, or its child ``wfkit.<name>``."""
    return logging.getLogger("wfkit" if name is None else f"wfkit.{name}")
