"""``task_run_name`` can also be a function returning a string. It may take no arguments
(and read ``wfkit.runtime`` for details about the run) or take a ``parameters`` argument,
which receives the task run's parameters as a dict.

Adapted from Prefect 3's "How to write and run a workflow" (Task configuration).
"""

import datetime

from wfkit import flow, task
from wfkit.runtime import flow_run, task_run


def weekday_name() -> str:
    date = datetime.datetime.now(datetime.UTC)
    return f"{date:%A}-is-a-lovely-day"


def from_runtime() -> str:
    # Called when the task run starts: wfkit.runtime describes that run.
    params = task_run.parameters
    return f"{flow_run.flow_name}-{task_run.task_name}-with-{params['name']}-and-{params['limit']}"


def from_parameters(parameters: dict) -> str:
    return f"fetch-{parameters['name']}-x{parameters['limit']}"


@task(name="weekday-task", task_run_name=weekday_name)
def weekday_task(name: str) -> str:
    return task_run.name


@task(name="runtime-task", task_run_name=from_runtime)
def runtime_task(name: str, limit: int = 100) -> str:
    return task_run.name


@task(name="parameters-task", task_run_name=from_parameters)
def parameters_task(name: str, limit: int = 10) -> str:
    return task_run.name


@flow
def named_runs() -> None:
    print(f"no-argument function: {weekday_task(name='trillian')}")
    print(f"function reading wfkit.runtime: {runtime_task(name='marvin')}")
    print(f"function with parameters: {parameters_task(name='zaphod', limit=3)}")


if __name__ == "__main__":
    named_runs()
