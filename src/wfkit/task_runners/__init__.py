"""Task runners: where submitted task runs execute.

A task runner is anything with the three methods of :class:`TaskRunner`: it receives
:class:`TaskRunCall` objects (one per ``task.submit``, prepared and recorded Pending by the
engine) and returns a future for each; it can be duplicated (each flow run uses its own
copy) and shut down (when the flow run ends, waiting for its work).

``ThreadPoolTaskRunner`` (the default) runs task runs in a thread pool of this process;
``ProcessPoolTaskRunner`` in worker processes. Async tasks run concurrently on one event
loop per flow run, in a helper thread. ``DaskTaskRunner`` / ``RayTaskRunner`` live in
``wfkit.task_runners.dask`` / ``.ray`` (extras ``dask`` / ``ray``), imported by name only. A runner of your own can be checked with
:class:`wfkit.testing.runner_conformance.RunnerConformance`.
"""

from __future__ import annotations

from wfkit.task_runners._pools import ProcessPoolTaskRunner, ThreadPoolTaskRunner
from wfkit.task_runners._protocol import (
    RemoteTaskRun,
    TaskRunCall,
    TaskRunFuture,
    TaskRunner,
    resolve_task_runner,
)

__all__ = [
    "ProcessPoolTaskRunner",
    "RemoteTaskRun",
    "TaskRunCall",
    "TaskRunFuture",
    "TaskRunner",
    "ThreadPoolTaskRunner",
    "resolve_task_runner",
]
