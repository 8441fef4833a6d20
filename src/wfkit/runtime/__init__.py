"""Information about the current run, read live from the run context.

``wfkit.runtime.flow_run.id``, ``wfkit.runtime.task_run.run_count``, ... Outside a run the
attributes hold neutral values (``None``, ``{}``, ``[]``, ``0``).
``wfkit.runtime.deployment`` has Prefect's deployment attributes (wfkit has no deployments).
"""

from wfkit.runtime import deployment, flow_run, task_run

__all__ = ["deployment", "flow_run", "task_run"]
