"""Give each task run a name built from its parameters with ``task_run_name``.

The template uses Python's format syntax, including format specs such as ``{date:%A}``.

Adapted from Prefect 3's "How to write and run a workflow" (Task configuration).
"""

import datetime

from wfkit import flow, runtime, task


@task(
    name="Templated Task",
    description="A task whose run names come from its parameters.",
    task_run_name="hello-{name}-on-{date:%A}",
)
def templated(name: str, date: datetime.datetime) -> str:
    return runtime.task_run.name


@flow
def templated_names() -> str:
    # a run named like "hello-ford-on-Thursday"
    return templated(name="ford", date=datetime.datetime(2024, 5, 2, tzinfo=datetime.UTC))


if __name__ == "__main__":
    print(f"task run name: {templated_names()}")
