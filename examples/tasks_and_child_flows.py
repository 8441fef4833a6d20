"""Organise a workflow into tasks and child flows; each one is its own recorded run.

Adapted from Prefect 3's "How to write and run a workflow" (Create tasks and child workflows).
"""

import random

from wfkit import flow, task
from wfkit.stores import open_store


@task
def pick_a_number() -> int:
    return random.randint(0, 100)


@flow
def is_even(number: int) -> bool:
    return number % 2 == 0


@flow
def even_or_odd() -> int:
    number = pick_a_number()  # a task run
    if is_even(number):  # a child flow run, linked to this flow run
        print(f"{number} is even")
    else:
        print(f"{number} is odd")
    return number


if __name__ == "__main__":
    even_or_odd()

    store = open_store()
    parent = store.flow_runs(flow_name="even-or-odd")[-1]
    children = [
        r for r in store.flow_runs(flow_name="is-even") if r.parent_flow_run_id == parent.id
    ]
    tasks = store.task_runs(flow_run_id=parent.id)
    print(f"parent flow run {parent.name}: {parent.state_names}")
    print(f"child flow runs: {[(c.flow_name, c.state.name) for c in children]}")
    print(f"task runs: {[(t.task_name, t.state.name) for t in tasks]}")
