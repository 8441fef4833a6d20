"""Cancel a workflow that runs for too long with ``timeout_seconds``.

The flow below sleeps for 5 s under a 1 s timeout. wfkit interrupts the sleep at the
deadline (a sync body on the main thread is interrupted with SIGALRM), so the run ends
``TimedOut`` after about one second and the line after the sleep never runs. Calling the
flow normally would raise ``FlowRunTimeoutError`` (a ``TimeoutError``); here we ask for the
final state instead.

Adapted from Prefect 3's "How to write and run a workflow" (Cancel a workflow if it runs for
too long).
"""

import time

from wfkit import flow


@flow(timeout_seconds=1, log_prints=True)
def show_timeouts():
    print("I will execute")
    time.sleep(5)
    print("I will not execute")


if __name__ == "__main__":
    started = time.monotonic()
    state = show_timeouts(return_state=True)
    print(f"final state: {state.name} (type {state.type.value})")
    print(f"message: {state.message}")
    print(f"returned after {time.monotonic() - started:.1f}s")
