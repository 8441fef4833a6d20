"""Chains of submissions, each passed the previous one's future, for the runners' tests
(tests/runners, tests/cluster): its tasks are at module level, so that worker processes
import them by name."""

from __future__ import annotations

import contextvars
import dataclasses
import sys
import threading
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wfkit import flow, task
from wfkit.cache_policies import INPUTS
from wfkit.testing.runner_conformance import wait_for_gate

# Links: several times Python's default recursion limit (1000 frames) divided by the ~10
# frames a run took on the stack, so the old nesting fails at any pool size.
LINKS = 300
BOUND_SECONDS = 60  # (each chain takes a few seconds at most; a hang fails after this)


@task
def inc(x: int) -> int:
    return x + 1


@task(cache_policy=INPUTS)
def cached_inc(x: int) -> int:
    return x + 1


@task(tags=["chain-link"])
def tagged_inc(x: int) -> int:
    return x + 1


@dataclasses.dataclass
class Boxed:
    value: Any


@task
def unbox_inc(box: Boxed) -> int:
    return box.value + 1  # type: ignore[no-any-return]


@task
def stack_depth(*upstream: Any) -> int:
    """How many frames are on the stack of the thread running it (``upstream``: ignored,
    the futures it waits for)."""
    frame, depth = sys._getframe(), 0
    while frame is not None:
        frame, depth = frame.f_back, depth + 1  # type: ignore[assignment]
    return depth


# How each link is submitted, given the previous link's future.
SHAPES: dict[str, Callable[[Any], Any]] = {
    "plain": lambda previous: inc.submit(previous),
    "cache policy": lambda previous: cached_inc.submit(previous),
    "tag limit": lambda previous: tagged_inc.submit(previous),
    "future in a dataclass": lambda previous: unbox_inc.submit(Boxed(previous)),
}


def run_chain(runner: Any, link: Callable[[Any], Any], links: int, gate: Path) -> int:
    """Run a flow submitting ``links`` links, the first held by ``gate`` until all are
    submitted (so the rest are queued behind it); the last link's result.

    Raises:
        AssertionError: the flow did not end within BOUND_SECONDS (the stacks of its threads
            are in the message).
    """

    @flow(task_runner=runner)
    def chain() -> int:
        held = wait_for_gate.submit(str(gate))
        future = inc.submit(0, wait_for=[held])
        for _ in range(links - 1):
            future = link(future)
        gate.touch()
        return future.result()  # type: ignore[no-any-return]

    return finish_within(BOUND_SECONDS, contextvars.copy_context().run, chain)  # type: ignore[no-any-return]


def finish_within(seconds: float, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` in a daemon thread; its result, or a failure naming what every thread
    is doing if it takes longer than ``seconds`` (a hang fails the test, not the CI run)."""
    box: dict[str, Any] = {}

    def call() -> None:
        try:
            box["value"] = fn(*args)
        except BaseException as exc:  # handed to the test
            box["error"] = exc

    thread = threading.Thread(target=call, daemon=True, name="bounded")
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        stacks = "\n".join(
            f"--- thread {ident}\n{''.join(traceback.format_stack(frame)[-12:])}"
            for ident, frame in sys._current_frames().items()
        )
        raise AssertionError(f"still running after {seconds} s (a hang?):\n{stacks}")
    if "error" in box:
        raise box["error"]
    return box["value"]
