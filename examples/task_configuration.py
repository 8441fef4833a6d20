"""Configure a task through the decorator: here a name and a description.

The name is what the task's runs are recorded under (the default is the function's name);
the description defaults to the docstring.

Adapted from Prefect 3's "How to write and run a workflow" (Task configuration).
"""

from wfkit import flow, task
from wfkit.stores import open_store


@task(name="say-hello", description="Prints a greeting from a task.")
def greeting_task() -> None:
    print("Hello from a task")


@flow
def configured() -> None:
    greeting_task()


if __name__ == "__main__":
    configured()
    print(f"task name: {greeting_task.name}")
    print(f"task description: {greeting_task.description}")
    recorded = open_store().task_runs(task_name="say-hello")[-1]
    print(f"recorded task run: {recorded.name} ({recorded.state.name})")
