"""A flow written as a generator streams each value to the caller as soon as it is yielded;
the flow run completes when the generator is exhausted.

Adapted from Prefect 3's "How to write and run a workflow" (Define a workflow).
"""

from wfkit import flow


@flow
def count_up(limit: int = 5):
    for i in range(limit):
        print(f"yielding {i}")
        yield i


if __name__ == "__main__":
    # The lines interleave: each value reaches the loop before the next one is produced.
    for value in count_up(3):
        print(f"received {value}")
