"""wfkit in one script: run a flow with a task, then read back where and how it was recorded.

Run it with ``python examples/quickstart.py``. Runs are recorded in the configured store:
SQLite at ``$WFKIT_HOME/wfkit.db`` (``~/.wfkit/wfkit.db`` by default), or ``WFKIT_STORE``.
"""

from wfkit import flow, task
from wfkit.stores import open_store


@task
def greet(name: str) -> str:
    return f"Hello, {name}!"


@flow
def hello_world(name: str = "world") -> str:
    return greet(name)


if __name__ == "__main__":
    result = hello_world()
    print(f"result: {result}")

    # Every run is written to the run store before the call returns; read it back.
    store = open_store()
    run = store.flow_runs(flow_name="hello-world")[-1]
    print(f"store: {store.url}")
    print(f"flow run: {run.name} (flow {run.flow_name!r}, parameters {run.parameters})")
    print(f"flow run states: {run.state_names}")
    for task_run in store.task_runs(flow_run_id=run.id):
        print(f"task run: {task_run.name} states: {task_run.state_names}")
