"""Define a workflow and run it: a flow is a plain function call.

Adapted from Prefect 3's "How to write and run a workflow" (Define a workflow).
"""

from wfkit import flow


@flow
def my_workflow() -> str:
    return "Hello, world!"


if __name__ == "__main__":
    # Calling the flow creates a flow run, records it in the run store and returns the
    # function's return value.
    print(my_workflow())
